package faulttest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestKillWorkerMidFlight: the worker is killed (-9) while it holds
// batches, with most of the backlog still to do, and a new one started in
// its place, several times over; the last one finishes. Every result
// reaches the receiver with all its spans; a result exported twice (its
// ack died with a worker) carries identical ids both times.
func TestKillWorkerMidFlight(t *testing.T) {
	n := size(3000, 20000)
	kills := size(2, 4)
	s := startNATS(t)
	k := newSink(t)
	k.setDelay(20 * time.Millisecond) // a slowish receiver: batches in flight at any time
	s.createStream()
	msgs, want := goodResults("kill", n)
	s.publish(msgs)

	start := time.Now()
	var at []string
	var lastKill time.Time
	for i := 1; i <= kills; i++ {
		w := startWorker(t, s, k, fmt.Sprintf("w%d", i), nil)
		target := n * i / (kills + 1)
		await(t, 2*time.Minute, fmt.Sprintf("%d results exported", target), func() bool { return k.distinct() >= target })
		inflight := w.metrics(t)[mInflight]
		info, err := s.consumerInfo()
		if err != nil {
			t.Fatal(err)
		}
		w.kill9(t)
		lastKill = time.Now()
		if inflight == 0 && info.NumAckPending == 0 {
			t.Errorf("nothing was in flight when w%d was killed: the test did not test a kill mid-flight", i)
		}
		at = append(at, fmt.Sprintf("%d exported, %v in flight in the worker, %d unacked", k.distinct(), inflight, info.NumAckPending))
	}

	last := startWorker(t, s, k, fmt.Sprintf("w%d", kills+1), nil)
	k.awaitAll(t, want, 3*time.Minute)
	recovered := time.Since(lastKill)
	s.awaitSettled(time.Minute)
	c := k.check(t, want)

	if dl := s.streamMsgs(dlqStream); dl != 0 {
		t.Errorf("%d dead letters, want none", dl)
	}
	if m := last.metrics(t); m[mDeadLettered] != 0 {
		t.Errorf("the last worker dead-lettered %v messages", m[mDeadLettered])
	}
	report(t, "n=%d, WORKER_ACK_WAIT 5s; %d workers killed -9 in turn, at: %s; the last finished %s after the last kill, %s after the start; %s",
		n, kills, strings.Join(at, "; "), recovered.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), c)
}
