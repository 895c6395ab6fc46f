package faulttest

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMUnderLoad: SIGTERM reaches the worker while both its export
// slots hold a batch the receiver has not answered yet. The worker must
// stop fetching, report not ready, finish those exports once the receiver
// answers, acknowledge them, and exit 0 within WORKER_SHUTDOWN_TIMEOUT; a
// new worker then delivers the rest. Nothing is lost and, the stop being
// graceful, nothing is exported twice.
func TestSIGTERMUnderLoad(t *testing.T) {
	n := size(3000, 20000)
	const shutdownTimeout = 10 * time.Second
	answerAfter := 2 * time.Second // the held batches' answer comes this long after SIGTERM
	s, k, h, w1, want := holdMidRun(t, "sigterm", n, n/4, shutdownTimeout)
	inflight := w1.metrics(t)[mInflight]
	exportedBefore := k.distinct()

	w1.signal(t, syscall.SIGTERM)
	sent := time.Now()
	await(t, 5*time.Second, "/readyz not ready once stopping", func() bool { return !w1.ready() })
	holdFault(answerAfter)
	if w1.exited() {
		t.Fatalf("w1 exited while the receiver still held its exports: %s", w1.tail(10))
	}
	h.finish(true)
	code := w1.wait(t, shutdownTimeout+5*time.Second)
	took := w1.exitAt.Sub(sent)
	_, heldIDs := h.held()
	info, err := s.consumerInfo()
	if err != nil {
		t.Fatal(err)
	}
	exportedByW1 := k.distinct()
	if code != 0 {
		t.Errorf("w1 exited %d after SIGTERM, want 0", code)
	}
	if took > shutdownTimeout {
		t.Errorf("w1 took %s to exit, more than WORKER_SHUTDOWN_TIMEOUT (%s)", took, shutdownTimeout)
	}
	if info.NumAckPending != 0 {
		t.Errorf("%d messages delivered to w1 and not settled after its graceful exit", info.NumAckPending)
	}
	for id := range heldIDs {
		if d, ok := k.get(id); !ok || d.exports != 1 || d.workers[0] != "w1" {
			t.Errorf("held result %s: %+v, want exported once by w1", id, d)
			break
		}
	}

	w2 := startWorker(t, s, k, "w2", nil)
	k.awaitAll(t, want, 3*time.Minute)
	s.awaitSettled(time.Minute)
	c := k.check(t, want)
	if c.dups() != 0 {
		t.Errorf("%d results exported twice across a graceful restart, want 0", c.dups())
	}
	if dl := s.streamMsgs(dlqStream); dl != 0 {
		t.Errorf("%d dead letters, want none", dl)
	}
	if acked, exported := w2.metrics(t)[mAcked], k.exportsBy()["w2"]; acked != float64(exported) {
		t.Errorf("w2 acked %v messages and exported %d results", acked, exported)
	}
	report(t, "n=%d; SIGTERM with %d results exported and %v in flight (%d held by the receiver for %s after SIGTERM); exit code %d after %s (WORKER_SHUTDOWN_TIMEOUT %s); %d exported by w1 in all, %d unacked after its exit; w2 delivered the rest; %s; by worker %v",
		n, exportedBefore, inflight, len(heldIDs), answerAfter, code, took.Round(time.Millisecond), shutdownTimeout, exportedByW1, info.NumAckPending, c, k.exportsBy())
}

// TestSIGTERMPastTheShutdownTimeout: SIGTERM while the receiver never
// answers. The worker gives up at WORKER_SHUTDOWN_TIMEOUT (exiting non-zero:
// it could not finish) and what it held is redelivered to the next worker
// after AckWait: nothing is lost.
func TestSIGTERMPastTheShutdownTimeout(t *testing.T) {
	n := size(1000, 5000)
	const shutdownTimeout = 3 * time.Second
	s, k, h, w1, want := holdMidRun(t, "sigterm-timeout", n, n/10, shutdownTimeout)
	w1.signal(t, syscall.SIGTERM)
	sent := time.Now()
	code := w1.wait(t, shutdownTimeout+15*time.Second)
	took := w1.exitAt.Sub(sent)
	_, heldIDs := h.held()
	h.finish(false)
	if took < shutdownTimeout {
		t.Errorf("w1 exited %s after SIGTERM, before WORKER_SHUTDOWN_TIMEOUT (%s), with exports unanswered", took, shutdownTimeout)
	}
	// The deadline, then at most 5s to close the exporter and flush acks.
	if limit := shutdownTimeout + 6*time.Second; took > limit {
		t.Errorf("w1 took %s to exit, want at most %s", took, limit)
	}
	if code == 0 {
		t.Errorf("w1 exited 0 without having settled what it held")
	}
	if !strings.Contains(w1.log(), "WORKER_SHUTDOWN_TIMEOUT") {
		t.Errorf("w1's log does not say the shutdown timed out:\n%s", w1.tail(5))
	}

	startWorker(t, s, k, "w2", nil)
	k.awaitAll(t, want, 3*time.Minute)
	s.awaitSettled(time.Minute)
	c := k.check(t, want)
	for id := range heldIDs {
		if d, _ := k.get(id); d.exports != 1 || d.workers[0] != "w2" {
			t.Errorf("held result %s: %+v, want exported once, by w2", id, d)
			break
		}
	}
	report(t, "n=%d; SIGTERM with %d results held unanswered; exit code %d after %s (WORKER_SHUTDOWN_TIMEOUT %s); w2 delivered them and the rest; %s",
		n, len(heldIDs), code, took.Round(time.Millisecond), shutdownTimeout, c)
}

// holdMidRun publishes n results, starts worker w1 with the given shutdown
// timeout and, once exported results reach exportedFirst, holds both of its
// export requests unanswered at the receiver: the state the SIGTERM tests
// signal in.
func holdMidRun(t *testing.T, prefix string, n, exportedFirst int, shutdownTimeout time.Duration) (*natsServer, *sink, *holder, *worker, map[string]expect) {
	t.Helper()
	s := startNATS(t)
	k := newSink(t)
	h := newHolder(t, "w1")
	k.setAnswer(h.answer)
	s.createStream()
	msgs, want := goodResults(prefix, n)
	s.publish(msgs)

	w1 := startWorker(t, s, k, "w1", map[string]string{"WORKER_SHUTDOWN_TIMEOUT": shutdownTimeout.String()})
	await(t, 2*time.Minute, "results exported before the hold", func() bool { return k.distinct() >= exportedFirst })
	h.start()
	await(t, time.Minute, "both export slots of w1 held by the receiver", func() bool { reqs, _ := h.held(); return reqs >= 2 })
	return s, k, h, w1, want
}
