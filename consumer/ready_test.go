package consumer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/internal/natstest"
)

// awaitCond polls cond: readiness and stream state have no notification.
func awaitCond(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func publishN(t *testing.T, js jetstream.JetStream, prefix string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		msg := nats.NewMsg("workflows.results.test")
		msg.Data = []byte(result(id, 2))
		msg.Header.Set(jetstream.MsgIDHeader, id)
		// Retried as a backend would: after an outage the stream may
		// elect its leader after the consumer does.
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := js.PublishMsg(context.Background(), msg)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// leaderOf returns the server that leads the durable consumer (or, with
// cons empty, the stream).
func leaderOf(t *testing.T, cl *natstest.Cluster, stream, cons string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := cl.JS.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	leader := st.CachedInfo().Cluster.Leader
	if cons != "" {
		c, err := st.Consumer(ctx, cons)
		if err != nil {
			t.Fatal(err)
		}
		leader = c.CachedInfo().Cluster.Leader
	}
	for i, s := range cl.Servers {
		if s.Name() == leader {
			return i
		}
	}
	t.Fatalf("no server named %q leads %s %s", leader, stream, cons)
	return -1
}

// TestNotReadyWhileTheDurableHasNoLeader: two of the three servers stop
// mid-run, the durable's leader among them, so that no new leader can be
// elected. The consumer reports not ready until one of them is back and a
// leader answers, then resumes; every result is exported, none
// dead-lettered. (A server shut down in process hands its leadership over
// at once; kill -9 of a leader is internal/faulttest's.)
func TestNotReadyWhileTheDurableHasNoLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a 3-node cluster")
	}
	cl := natstest.StartCluster(t, 3)
	cfg := testConfig()
	cfg.StreamReplicas = 3
	c, recv := runOn(t, cl.JS, cfg)
	const n = 200
	publishN(t, cl.JS, "lead", 0, n/2)
	awaitCond(t, 30*time.Second, "some results exported", func() bool { return recv.SpanCount() > 0 })

	leader := leaderOf(t, cl, "WORKFLOW_RESULTS", "spanferry")
	other := (leader + 1) % 3
	cl.Stop(leader)
	cl.Stop(other)
	awaitCond(t, 30*time.Second, "not ready without a consumer leader", func() bool { return !c.Ready() })
	// No quorum, no leader: it stays not ready, however long.
	time.Sleep(2 * time.Second) // the length of the outage is the scenario, not a synchronisation
	if c.Ready() {
		t.Fatal("ready again while the durable cannot have a leader")
	}
	cl.Restart(t, other)
	back := time.Now()
	awaitCond(t, 60*time.Second, "ready on the new leader", c.Ready)
	t.Logf("ready again %s after the quorum was back", time.Since(back).Round(time.Millisecond))

	publishN(t, cl.JS, "lead", n/2, n)
	awaitCond(t, 60*time.Second, "every result exported", func() bool { return len(resultIDs(recv.Spans())) == n })
	if msgs := streamMsgs(t, cl.JS, "WORKFLOW_DLQ"); msgs != 0 {
		t.Errorf("%d dead letters, want none", msgs)
	}
}

// streamMsgs returns the messages stored in a stream, asking until the
// stream answers: after an outage its leader may come back last.
func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	var msgs uint64
	awaitCond(t, 30*time.Second, "stream "+name+" answering", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, name)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		if err != nil {
			return false
		}
		msgs = info.State.Msgs
		return true
	})
	return msgs
}
