package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/internal/otlptest"
)

// replay runs `worker replay args…` and returns its stdout and stderr.
func replay(t *testing.T, cfg config.Config, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := replayCmd(t.Context(), cfg, append([]string{"--progress", "lines"}, args...), &out, &errOut, slog.New(slog.DiscardHandler))
	return out.String(), errOut.String(), err
}

// spanDigest renders every span the receiver accepted, sorted, so that two
// exports can be compared field by field.
func spanDigest(recv *otlptest.Receiver) []string {
	var out []string
	for _, s := range recv.Spans() {
		keys := make([]string, 0, len(s.Attributes))
		for k := range s.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var attrs []string
		for _, k := range keys {
			attrs = append(attrs, fmt.Sprintf("%s=%v", k, s.Attributes[k]))
		}
		out = append(out, fmt.Sprintf("%s %s %s %q %d-%d %v %q %s res=%v",
			s.TraceID, s.SpanID, s.ParentSpanID, s.Name, s.Start.UnixNano(), s.End.UnixNano(),
			s.StatusCode, s.StatusMessage, strings.Join(attrs, ","), s.Resource["service.name"]))
	}
	slices.Sort(out)
	return out
}

func TestReplayRangeTwiceIsIdenticalAndLeavesTheDurableAlone(t *testing.T) {
	srv := natstest.Start(t)
	recv := otlptest.StartT(t)
	createStream(t, srv.JS)
	ids := publishResults(t, srv.JS, "r", 40) // stream seqs 1..40
	bad := nats.NewMsg("workflows.results.test")
	bad.Data = []byte(`{"id":"broken","steps":[{"name":"no workflow name"}]}`) // seq 41
	if _, err := srv.JS.PublishMsg(t.Context(), bad); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, publishResults(t, srv.JS, "s", 10)...) // seqs 42..51

	cfg := testConfig(t, srv.ClientURL())
	withReceiver(t, &cfg, recv)
	w := runWorker(t, cfg)
	await(t, "run exported everything", func() bool { return len(roots(recv)) == len(ids) })
	awaitSettled(t, srv.JS)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	firstExport := spanDigest(recv)
	durable := consumerInfo(t, srv.JS)
	dlq := len(srv.StreamMsgs(t, "WORKFLOW_DLQ"))
	if dlq != 1 {
		t.Fatalf("run dead-lettered %d messages, want 1", dlq)
	}

	// Sequences 31..45: results r-30…r-39, the broken one, s-0…s-3.
	want := map[string]bool{}
	for i := 30; i < 40; i++ {
		want[fmt.Sprintf("r-%d", i)] = true
	}
	for i := range 4 {
		want[fmt.Sprintf("s-%d", i)] = true
	}
	var digests [][]string
	for range 2 {
		recv.Reset()
		out, progress, err := replay(t, cfg, "--from-seq", "31", "--to-seq", "45")
		if err != nil {
			t.Fatalf("replay: %v\n%s", err, progress)
		}
		if !strings.Contains(out, "exported 14, dead-lettered 0, skipped 1 results") {
			t.Errorf("summary = %q", out)
		}
		if !strings.Contains(progress, "replay: 15/15 results (100%)") {
			t.Errorf("progress = %q", progress)
		}
		got := roots(recv)
		if len(got) != len(want) {
			t.Errorf("replay exported %d results, want %d: %v", len(got), len(want), got)
		}
		for id, n := range got {
			if !want[id] || n != 1 {
				t.Errorf("replay exported %s %d times", id, n)
			}
		}
		digests = append(digests, spanDigest(recv))
	}
	if !slices.Equal(digests[0], digests[1]) {
		t.Errorf("two replays of one range differ:\n%s\n---\n%s", strings.Join(digests[0], "\n"), strings.Join(digests[1], "\n"))
	}
	if first := digestOf(firstExport, want); !slices.Equal(first, digests[0]) {
		t.Errorf("replayed spans differ from the first export:\n%s\n---\n%s", strings.Join(first, "\n"), strings.Join(digests[0], "\n"))
	}
	if len(digests[0]) != 4*len(want) {
		t.Errorf("replay exported %d spans, want %d", len(digests[0]), 4*len(want))
	}

	after := consumerInfo(t, srv.JS)
	if after.Delivered.Stream != durable.Delivered.Stream || after.AckFloor.Stream != durable.AckFloor.Stream || after.NumPending != 0 {
		t.Errorf("the durable consumer moved: delivered %d → %d, ack floor %d → %d, pending %d",
			durable.Delivered.Stream, after.Delivered.Stream, durable.AckFloor.Stream, after.AckFloor.Stream, after.NumPending)
	}
	if n := len(srv.StreamMsgs(t, "WORKFLOW_DLQ")); n != dlq {
		t.Errorf("replay added %d dead letters (it skips by default)", n-dlq)
	}
	stream, err := srv.JS.Stream(t.Context(), "WORKFLOW_RESULTS")
	if err != nil {
		t.Fatal(err)
	}
	names := stream.ConsumerNames(t.Context())
	var consumers []string
	for n := range names.Name() {
		consumers = append(consumers, n)
	}
	if !slices.Equal(consumers, []string{"spanferry"}) {
		t.Errorf("consumers after the replays: %v, want only the durable", consumers)
	}
}

// digestOf keeps the digest lines of the given results' traces.
func digestOf(lines []string, ids map[string]bool) []string {
	byTrace := map[string]bool{}
	for _, line := range lines {
		for id := range ids {
			if strings.Contains(line, "spanferry.result.id="+id+",") {
				byTrace[strings.Fields(line)[0]] = true
			}
		}
	}
	var out []string
	for _, line := range lines {
		if byTrace[strings.Fields(line)[0]] {
			out = append(out, line)
		}
	}
	return out
}

// TestReplayByTimeAndSubject: a time range and a subject, by one process
// and by a fleet (whose end is the last message stored at --until).
func TestReplayByTimeAndSubject(t *testing.T) {
	for _, fleet := range []bool{false, true} {
		t.Run(fmt.Sprintf("fleet=%v", fleet), func(t *testing.T) { testReplayByTimeAndSubject(t, fleet) })
	}
}

func testReplayByTimeAndSubject(t *testing.T, fleet bool) {
	srv := natstest.Start(t)
	recv := otlptest.StartT(t)
	createStream(t, srv.JS)
	publishResults(t, srv.JS, "a", 30)
	other := nats.NewMsg("workflows.results.other")
	other.Data = testResult("other-0", 3)
	if _, err := srv.JS.PublishMsg(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	publishResults(t, srv.JS, "b", 30)

	stored := srv.StreamMsgs(t, "WORKFLOW_RESULTS")
	since, until := stored[10].Time, stored[45].Time
	want := map[string]bool{}
	for _, m := range stored {
		if !m.Time.Before(since) && !m.Time.After(until) && m.Subject == "workflows.results.test" {
			want[m.Header.Get(jetstream.MsgIDHeader)] = true
		}
	}

	cfg := testConfig(t, srv.ClientURL())
	withReceiver(t, &cfg, recv)
	args := []string{"--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano), "--subject", "workflows.results.test"}
	if fleet {
		args = append(args, "--name", "by-time")
	}
	out, progress, err := replay(t, cfg, args...)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, progress)
	}
	got := roots(recv)
	if len(got) != len(want) {
		t.Errorf("replayed %d results, want %d", len(got), len(want))
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("result %s replayed %d times, want 1", id, got[id])
		}
	}
	if !strings.Contains(out, fmt.Sprintf("exported %d,", len(want))) || (fleet && !strings.Contains(out, fmt.Sprintf("%d of %d settled", len(want), len(want)))) {
		t.Errorf("summary = %q", out)
	}
}

func TestReplayBesideRun(t *testing.T) {
	srv := natstest.Start(t)
	runRecv, replayRecv := otlptest.StartT(t), otlptest.StartT(t)
	createStream(t, srv.JS)
	first := publishResults(t, srv.JS, "first", 200)

	cfg := testConfig(t, srv.ClientURL())
	cfg.BatchSize = 20
	withReceiver(t, &cfg, runRecv)
	runWorker(t, cfg)
	await(t, "run exported the first results", func() bool { return len(roots(runRecv)) == len(first) })

	// The replay's exporter reads the endpoint when it is created; the
	// running worker keeps its own.
	withReceiver(t, &cfg, replayRecv)
	done := make(chan error, 1)
	go func() {
		_, _, err := replay(t, cfg, "--from-seq", "1", "--to-seq", "200")
		done <- err
	}()
	second := publishResults(t, srv.JS, "second", 200)
	if err := <-done; err != nil {
		t.Fatalf("replay: %v", err)
	}

	await(t, "run exported the second results", func() bool { return len(roots(runRecv)) == len(first)+len(second) })
	awaitSettled(t, srv.JS)
	assertExactlyOnce(t, runRecv, append(first, second...))
	if info := consumerInfo(t, srv.JS); info.NumRedelivered != 0 {
		t.Errorf("run redelivered %d messages while the replay ran", info.NumRedelivered)
	}
	assertExactlyOnce(t, replayRecv, first)
}

func TestReplayRefusals(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(t, srv.ClientURL())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give --since or --from-seq"},
		{[]string{"--since", "yesterday"}, `--since "yesterday" is not an RFC 3339 time`},
		{[]string{"--from-seq", "5", "--to-seq", "2"}, "before its first"},
		{[]string{"--from-seq", "1", "--since", "2026-11-24T10:00:00Z"}, "not both"},
		{[]string{"--from-seq", "1", "--progress", "fancy"}, `--progress "fancy"`},
		{[]string{"--from-seq", "1"}, "stream WORKFLOW_RESULTS"}, // no stream on this server
	} {
		_, _, err := replay(t, cfg, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("replay %v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

// TestReplayWaitsOutAnOutage: results nak'd while the receiver fails are
// redelivered to the ephemeral consumer, and the replay ends only once
// they are exported.
func TestReplayWaitsOutAnOutage(t *testing.T) {
	srv := natstest.Start(t)
	recv := otlptest.StartT(t)
	createStream(t, srv.JS)
	ids := publishResults(t, srv.JS, "o", 30)
	var failures atomic.Int32
	recv.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
		if failures.Add(1) <= 2 {
			return otlptest.Response{Status: 503}
		}
		return otlptest.Response{}
	})

	cfg := testConfig(t, srv.ClientURL())
	cfg.BatchSize = 10
	withReceiver(t, &cfg, recv)
	out, progress, err := replay(t, cfg, "--from-seq", "1")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, progress)
	}
	assertExactlyOnce(t, recv, ids)
	if !strings.Contains(out, "exported 30, dead-lettered 0, skipped 0") || strings.Contains(out, " 0 retries") {
		t.Errorf("summary = %q, want 30 exported after some retries", out)
	}
}
