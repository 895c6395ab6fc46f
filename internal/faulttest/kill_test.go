package faulttest

import (
	"testing"
	"time"
)

// TestKillWorkerMidFlight: the worker is killed (-9) while it holds
// batches, with most of the backlog still to do; a new worker takes over.
// Every result reaches the receiver with all its spans; a result exported
// twice (its ack died with the worker) carries identical ids both times.
func TestKillWorkerMidFlight(t *testing.T) {
	n := size(3000, 20000)
	s := startNATS(t)
	k := newSink(t)
	k.setDelay(20 * time.Millisecond) // a slowish receiver: batches in flight at any time
	s.createStream()
	msgs, want := goodResults("kill", n)
	s.publish(msgs)

	w1 := startWorker(t, s, k, "w1", nil)
	start := time.Now()
	await(t, 2*time.Minute, "a quarter of the results exported", func() bool { return k.distinct() >= n/4 })
	inflight := w1.metrics(t)[mInflight]
	before, _ := s.consumerInfo()
	w1.kill9(t)
	killed := time.Now()
	exportedAtKill := k.distinct()
	if inflight == 0 && before.NumAckPending == 0 {
		t.Errorf("nothing was in flight when the worker was killed: the test did not test a kill mid-flight")
	}

	w2 := startWorker(t, s, k, "w2", nil)
	k.awaitAll(t, want, 3*time.Minute)
	recovered := time.Since(killed)
	s.awaitSettled(time.Minute)
	c := k.check(t, want)

	if dl := s.streamMsgs(dlqStream); dl != 0 {
		t.Errorf("%d dead letters, want none", dl)
	}
	if m := w2.metrics(t); m[mDeadLettered] != 0 {
		t.Errorf("w2 dead-lettered %v messages", m[mDeadLettered])
	}
	report(t, "n=%d; killed after %s with %d results exported, %v in flight in the worker, %d unacked in the consumer; the second worker finished %s after the kill; %s",
		n, killed.Sub(start).Round(time.Millisecond), exportedAtKill, inflight, before.NumAckPending, recovered.Round(time.Millisecond), c)
}
