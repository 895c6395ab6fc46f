package faulttest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The leaders a cluster test kills: the server leading the results stream
// (the consumer led elsewhere), or the one leading the consumer (the
// stream led elsewhere).
var leaderVictims = []string{"stream-leader", "consumer-leader"}

// TestClusterLeaderKillRun: a worker consumes from an R3 stream on a
// 3-node cluster, with a backend publishing steadily, and the server
// leading the stream or the durable is killed (-9) mid-run. The worker
// never exits, /readyz answers 503 while the durable has no leader, every
// result is exported with identical ids, none is dead-lettered.
func TestClusterLeaderKillRun(t *testing.T) {
	for _, victim := range leaderVictims {
		t.Run(victim, func(t *testing.T) { testLeaderKillRun(t, victim) })
	}
}

func testLeaderKillRun(t *testing.T, victim string) {
	n := size(2000, 20000)
	c := startCluster(t, 3)
	k := newSink(t)
	k.setDelay(5 * time.Millisecond)
	c.createStream()
	msgs, want := goodResults("run-"+victim, n)
	c.publish(msgs[:n/2])

	w := startWorker(t, c.natsServer, k, "w1", map[string]string{"WORKER_STREAM_REPLICAS": "3"})
	pub := publishSteadily(t, c.natsServer, msgs[n/2:], size(2*time.Millisecond, time.Millisecond))
	// Caught up with the backlog: the kill lands on a worker keeping up
	// with live traffic.
	await(t, 2*time.Minute, "the backlog exported", func() bool { return k.distinct() >= n/2+n/20 })
	killLeader(t, c, k, w, victim, want, pub)
}

// TestClusterConsumerLeaderKillBacklog: as TestClusterLeaderKillRun, with
// the worker working through a backlog (full batches held, a slow
// receiver) when the durable's leader dies.
func TestClusterConsumerLeaderKillBacklog(t *testing.T) {
	if !fullSize {
		// TestClusterLeaderKillRun/consumer-leader covers the path in the
		// fast variants; this one's receiver is slow on purpose.
		t.Skip("full size only (-tags fault): a slow receiver holding full batches through an election")
	}
	n := size(3000, 20000)
	c := startCluster(t, 3)
	k := newSink(t)
	k.setDelay(300 * time.Millisecond)
	c.createStream()
	msgs, want := goodResults("backlog", n)
	w := startWorker(t, c.natsServer, k, "w1", map[string]string{"WORKER_STREAM_REPLICAS": "3"})
	c.separateLeaders(durable)
	c.publish(msgs)
	await(t, 2*time.Minute, "a quarter exported", func() bool { return k.distinct() >= n/4 })
	killLeader(t, c, k, w, "consumer-leader", want, nil)
}

// killLeader kills the server leading the stream or the durable (victim),
// waits until every result of want is exported and the durable settled,
// checks and reports. pub, when not nil, is the backend publishing
// through the kill.
func killLeader(t *testing.T, c *natsCluster, k *sink, w *worker, victim string, want map[string]expect, pub *steadyPublisher) {
	t.Helper()
	pid := w.pid()
	streamLeader, consLeader := c.separateLeaders(durable)
	dead := map[string]string{"stream-leader": streamLeader, "consumer-leader": consLeader}[victim]
	ready := watchReadiness(w)
	unacked := 0
	if info, err := c.consumerInfo(); err == nil {
		unacked = info.NumAckPending
	}
	c.kill9(dead)
	killed := time.Now()

	k.awaitAll(t, want, 3*time.Minute)
	drained := time.Since(killed)
	info := c.awaitSettled(time.Minute)
	notReady, back := ready.finish()
	cnt := k.check(t, want)
	if w.exited() || w.pid() != pid {
		t.Fatalf("the worker exited: %s", w.tail(10))
	}
	if dl := c.streamMsgs(dlqStream); dl != 0 {
		t.Errorf("%d dead letters, want none", dl)
	}
	if m := w.metrics(t); m[mDeadLettered] != 0 {
		t.Errorf("the worker dead-lettered %v messages", m[mDeadLettered])
	}
	if victim == "consumer-leader" && (notReady.IsZero() || back.IsZero()) {
		t.Errorf("/readyz did not answer 503 while the durable had no leader (not ready at %v, back at %v)", notReady, back)
	}
	elected := c.elected(durable, killed)
	if victim == "stream-leader" {
		elected = c.elected("", killed)
	}
	gap, resumed := k.longestGapAfter(killed)
	traffic := fmt.Sprintf("a backlog of %d", len(want))
	firstNew := "-"
	if pub != nil {
		traffic = fmt.Sprintf("half a backlog, half published steadily through the kill (%d publish retries)", pub.retries)
		firstNew = since(killed, k.firstExportOf(pub.publishedAfter(killed)))
	}
	resent := countLines(w.log(), `"consumer available again`)
	if os.Getenv("FAULTTEST_DUMP") != "" {
		_ = os.WriteFile(os.Getenv("FAULTTEST_DUMP"), []byte(w.log()), 0o644)
	}
	report(t, "n=%d (%s), WORKER_ACK_WAIT 5s; killed the %s (%s; stream led by %s, consumer by %s) with %d unacked; /readyz %s; new %s leader elected %s after the kill; longest export stall %s, exporting again %s after the election; first export of a result published after the kill %s after it; all delivered %s after the kill; consumer redelivered %d; %d recoveries logged, acks resent %s, results delivered anew and not exported again %s; %s",
		len(want), traffic, victim, dead, streamLeader, consLeader, unacked, readyReport(killed, notReady, back),
		strings.TrimSuffix(victim, "-leader"), since(killed, elected), gap.Round(time.Millisecond), since(elected, resumed), firstNew,
		drained.Round(time.Millisecond), info.NumRedelivered, resent, logValue(w.log(), "acks_resent"), logValue(w.log(), "not_exported_again"), cnt)
}

// TestClusterLeaderKillFleetReplay: two `worker replay --name` processes
// share a range on a 3-node cluster, and the server leading the stream or
// the replay consumer is killed (-9) mid-run. Both carry on and exit 0 once
// the whole range is settled; every result is exported with identical ids.
func TestClusterLeaderKillFleetReplay(t *testing.T) {
	for _, victim := range leaderVictims {
		t.Run(victim, func(t *testing.T) { testLeaderKillFleetReplay(t, victim) })
	}
}

func testLeaderKillFleetReplay(t *testing.T, victim string) {
	n := size(4000, 20000)
	c := startCluster(t, 3)
	k := newSink(t)
	k.setDelay(100 * time.Millisecond) // slow enough to kill mid-range
	c.createStream()
	msgs, want := goodResults("fleet-"+victim, n)
	c.publish(msgs)

	bin, _ := binaries(t)
	var fleet []*proc
	for i := range 2 {
		name := fmt.Sprintf("r%d", i+1)
		env := workerEnv(t, c.natsServer, k, name, freePort(t), map[string]string{"WORKER_BATCH_SIZE": "20"})
		fleet = append(fleet, startProc(t, name, bin, []string{"replay", "--name", "fleet", "--from-seq", "1", "--progress", "lines"}, env))
	}
	const cons = "spanferry-replay-fleet"
	await(t, time.Minute, "a quarter of the range exported", func() bool { return k.distinct() >= n/4 })
	streamLeader, consLeader := c.separateLeaders(cons)
	dead := map[string]string{"stream-leader": streamLeader, "consumer-leader": consLeader}[victim]
	c.kill9(dead)
	killed := time.Now()

	for _, p := range fleet {
		if code := p.wait(t, 5*time.Minute); code != 0 {
			t.Fatalf("%s exited %d:\n%s", p.name, code, p.tail(20))
		}
	}
	finished := time.Since(killed)
	for _, p := range fleet {
		t.Logf("%s: %s", p.name, p.tail(4))
	}
	cnt := k.check(t, want)
	if dl := c.streamMsgs(dlqStream); dl != 0 {
		t.Errorf("%d dead letters, want none", dl)
	}
	if _, cl := c.leaders(cons); cl != "" {
		t.Errorf("the replay consumer still exists (led by %s) after the fleet finished", cl)
	}
	gap, _ := k.longestGapAfter(killed)
	var resent, again []string
	for _, p := range fleet {
		resent = append(resent, p.name+":"+logValue(p.log(), "acks_resent"))
		again = append(again, p.name+":"+logValue(p.log(), "not_exported_again"))
	}
	report(t, "n=%d, 2 replay processes (batch 20, a 100ms receiver), WORKER_ACK_WAIT 5s; killed %s (%s; stream led by %s, consumer by %s) with %d exported; longest export stall after the kill %s; both exited 0, %s after the kill; acks resent %v, results delivered anew and not exported again %v; by process %v; %s",
		n, victim, dead, streamLeader, consLeader, n/4, gap.Round(time.Millisecond), finished.Round(time.Millisecond), resent, again, k.exportsBy(), cnt)
}

func since(at, t time.Time) string {
	if t.IsZero() || at.IsZero() {
		return "never"
	}
	return t.Sub(at).Round(time.Millisecond).String()
}

func readyReport(killed, notReady, back time.Time) string {
	if notReady.IsZero() {
		return "stayed 200"
	}
	return fmt.Sprintf("503 from %s to %s after the kill", since(killed, notReady), since(killed, back))
}

// TestFleetReplayProcessKill: three `worker replay --name` processes share
// a range and one is killed (-9) while it holds batches. The two others
// exit 0 once the whole range is settled, the killed one's results among
// them (after AckWait); nothing is missing.
func TestFleetReplayProcessKill(t *testing.T) {
	n := size(3000, 20000)
	s := startNATS(t)
	k := newSink(t)
	k.setDelay(50 * time.Millisecond)
	s.createStream()
	msgs, want := goodResults("fleetkill", n)
	s.publish(msgs)

	bin, _ := binaries(t)
	var fleet []*proc
	for i := range 3 {
		name := fmt.Sprintf("r%d", i+1)
		env := workerEnv(t, s, k, name, freePort(t), map[string]string{"WORKER_BATCH_SIZE": "50"})
		fleet = append(fleet, startProc(t, name, bin, []string{"replay", "--name", "kill", "--from-seq", "1", "--progress", "lines"}, env))
	}
	await(t, time.Minute, "every process exporting", func() bool {
		by := k.exportsBy()
		return by["r1"] > 0 && by["r2"] > 0 && by["r3"] > 0
	})
	fleet[0].kill9(t)
	killed := time.Now()
	for _, p := range fleet[1:] {
		if code := p.wait(t, 5*time.Minute); code != 0 {
			t.Fatalf("%s exited %d:\n%s", p.name, code, p.tail(20))
		}
	}
	finished := time.Since(killed)
	cnt := k.check(t, want)
	if _, err := s.js.Consumer(t.Context(), streamName, "spanferry-replay-kill"); err == nil {
		t.Error("the replay consumer still exists after the fleet finished")
	}
	report(t, "n=%d, 3 replay processes (batch 50, a 50ms receiver), WORKER_ACK_WAIT 5s; r1 killed -9 mid-run; the two others exited 0 %s after the kill; by process %v; %s",
		n, finished.Round(time.Millisecond), k.exportsBy(), cnt)
}
