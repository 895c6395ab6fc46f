package faulttest

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestReplicasTakeOver: two, then three workers share the durable consumer
// under load, and one is killed (-9) while the receiver holds its export
// requests unanswered. The batches it held must not go to another worker
// while it lives (its InProgress keeps them, even past AckWait), must come
// back after AckWait once it is dead, and must then be exported by a
// survivor; everything else is delivered too.
func TestReplicasTakeOver(t *testing.T) {
	for _, replicas := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d-workers", replicas), func(t *testing.T) {
			if !fullSize {
				t.Parallel() // mostly waiting out AckWait: the two overlap well
			}
			testReplicasTakeOver(t, replicas)
		})
	}
}

func testReplicasTakeOver(t *testing.T, replicas int) {
	n := size(3000, 20000)
	const ackWait = 5 * time.Second
	// Longer than AckWait, shorter than the exporter's 10s timeout: the
	// victim's InProgress must keep its batches while it is alive.
	holdBeforeKill := 7 * time.Second
	s := startNATS(t)
	k := newSink(t)
	k.setDelay(10 * time.Millisecond)
	h := newHolder(t, "w1")
	k.setAnswer(h.answer)
	s.createStream()
	msgs, want := goodResults(fmt.Sprintf("replicas%d", replicas), n)

	var ws []*worker
	for i := range replicas {
		ws = append(ws, startWorker(t, s, k, fmt.Sprintf("w%d", i+1), map[string]string{"WORKER_ACK_WAIT": ackWait.String()}))
	}
	// Published once every worker is ready and waiting on its fetches, so
	// that each gets batches of it: a backlog published before would be
	// drained by the first worker while the others start.
	s.publish(msgs[:n/2])
	victim := ws[0]
	await(t, 2*time.Minute, "every worker exporting", func() bool {
		by := k.exportsBy()
		for _, w := range ws {
			if by[w.name] == 0 {
				return false
			}
		}
		return true
	})
	h.start()
	// The rest of the backlog, so that the victim's slots fill while the
	// others keep working.
	s.publish(msgs[n/2:])
	await(t, time.Minute, "both export slots of the victim held", func() bool { reqs, _ := h.held(); return reqs >= 2 })
	heldAt := time.Now()
	holdFault(holdBeforeKill)
	_, held := h.held()
	inflight := victim.metrics(t)[mInflight]
	victim.kill9(t)
	killed := time.Now()
	h.finish(false)

	k.awaitAll(t, want, 3*time.Minute)
	s.awaitSettled(time.Minute)
	c := k.check(t, want)

	// Whoever exported a held result, and when.
	var early, byVictim int
	var lastHeld time.Time
	for id := range held {
		d, ok := k.get(id)
		if !ok {
			continue // reported by check
		}
		if slices.Contains(d.workers, victim.name) {
			byVictim++
		}
		if d.first.Before(killed) {
			early++
		}
		lastHeld = later(lastHeld, d.first)
	}
	if len(held) == 0 {
		t.Fatal("the victim held nothing when it was killed")
	}
	if early > 0 {
		t.Errorf("%d of the %d results the victim held were exported before it was killed, %s after it took them: InProgress did not keep them", early, len(held), holdBeforeKill)
	}
	if byVictim > 0 {
		t.Errorf("%d held results counted as exported by the victim", byVictim)
	}
	takeover := lastHeld.Sub(killed)
	// They come back after AckWait (counted from the victim's last
	// InProgress, at most AckWait/3 before the kill), on a busy machine
	// later: the bound is loose.
	if takeover < ackWait/2 || takeover > 60*time.Second {
		t.Errorf("the held results were all exported %s after the kill, want about AckWait (%s)", takeover, ackWait)
	}
	for _, w := range ws[1:] {
		if w.exited() {
			t.Errorf("%s exited", w.name)
		}
	}
	if dl := s.streamMsgs(dlqStream); dl != 0 {
		t.Errorf("%d dead letters, want none", dl)
	}
	report(t, "n=%d, %d workers, WORKER_ACK_WAIT %s; the victim held %d results (%v in flight) unanswered for %s, then was killed; none went elsewhere meanwhile; all were exported by the survivors %s after the kill; all delivered %s after the kill; %s; by worker %v",
		n, replicas, ackWait, len(held), inflight, killed.Sub(heldAt).Round(time.Millisecond), takeover.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond), c, k.exportsBy())
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
