package faulttest

import (
	"testing"
	"time"
)

// TestNATSServerKill9: the nats-server process is killed (-9) mid-run and
// started again on the same port and store. The worker, never restarted,
// reports not ready while the server is gone, reconnects on its own and
// finishes; results published before and after the crash all arrive.
func TestNATSServerKill9(t *testing.T) {
	n := size(3000, 20000)
	down := size(3*time.Second, 10*time.Second)
	s := startNATS(t)
	k := newSink(t)
	k.setDelay(20 * time.Millisecond)
	s.createStream()
	msgs, want := goodResults("natskill", n)
	s.publish(msgs[:n/2])

	w := startWorker(t, s, k, "w1", nil)
	pid := w.pid()
	await(t, 2*time.Minute, "some results exported", func() bool { return k.distinct() >= n/8 })
	unacked := 0
	if info, err := s.consumerInfo(); err == nil {
		unacked = info.NumAckPending
	}
	s.kill9()
	killed := time.Now()
	exportedAtKill := k.distinct()
	await(t, 30*time.Second, "/readyz not ready while nats-server is down", func() bool { return !w.ready() })
	notReady := time.Since(killed)
	if code, _ := w.get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d while nats-server is down, want 200 (the process is alive)", code)
	}
	holdFault(down - time.Since(killed))
	if w.exited() {
		t.Fatalf("the worker exited while nats-server was down: %s", w.tail(10))
	}

	_, accepted := k.counts()
	restarted := s.restart()
	await(t, time.Minute, "/readyz ready after the restart", w.ready)
	readyAgain := time.Since(restarted)
	await(t, time.Minute, "an export after the restart", func() bool { _, a := k.counts(); return a > accepted })
	exportAgain := time.Since(restarted)
	s.publish(msgs[n/2:])

	k.awaitAll(t, want, 3*time.Minute)
	finished := time.Since(restarted)
	info := s.awaitSettled(time.Minute)
	c := k.check(t, want)
	if w.exited() || w.pid() != pid {
		t.Errorf("the worker did not survive: exited=%v", w.exited())
	}
	if dl := s.streamMsgs(dlqStream); dl != 0 {
		t.Errorf("%d dead letters, want none", dl)
	}
	if got := s.streamMsgs(streamName); got != uint64(n) {
		t.Errorf("the stream holds %d messages after the crash, want %d", got, n)
	}
	reconnects := countLines(w.log(), `"nats reconnected"`)
	report(t, "n=%d (half published after the restart); nats-server killed with %d exported and %d unacked; /readyz not ready %s after the kill; down %s; ready again %s after the restart (%d reconnect log lines), exporting again after %s; all delivered %s after the restart; the same worker process throughout; consumer redelivered %d; %s",
		n, exportedAtKill, unacked, notReady.Round(time.Millisecond), down, readyAgain.Round(time.Millisecond), reconnects, exportAgain.Round(time.Millisecond), finished.Round(time.Millisecond), info.NumRedelivered, c)
}
