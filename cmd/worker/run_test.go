package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/logtest"
	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/internal/poll"
	"github.com/spanferry/spanferry/mapping"
)

// syncBuffer is a log sink that tests read while the worker writes.
type syncBuffer = logtest.Buffer

// testConfig is the default configuration with test-sized timings, a free
// HTTP port and a private data directory.
func testConfig(t *testing.T, natsURL string) config.Config {
	t.Helper()
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg.NATSURL = natsURL
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.BatchWait = 20 * time.Millisecond
	cfg.AckWait = 5 * time.Second
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.LogLevel = "debug"
	return cfg
}

// withReceiver points the OTLP exporter at recv, through the standard
// variable the worker honours.
func withReceiver(t *testing.T, cfg *config.Config, recv *otlptest.Receiver) {
	t.Helper()
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", recv.TracesURL())
	cfg.Exporter = config.ExporterOTLP
}

// testWorker is a worker running in process until stop or the test's end.
type testWorker struct {
	*worker
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func runWorker(t *testing.T, cfg config.Config) *testWorker {
	t.Helper()
	logs := &syncBuffer{}
	log := newLogger(cfg, logs)
	w, err := startWorker(t.Context(), cfg, log, io.Discard)
	if err != nil {
		t.Fatalf("startWorker: %v\nlogs:\n%s", err, logs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tw := &testWorker{worker: w, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { tw.done <- w.run(ctx) }()
	t.Cleanup(func() {
		if err := tw.stop(); err != nil {
			t.Errorf("worker run: %v", err)
		}
		if t.Failed() {
			t.Logf("worker logs:\n%s", logs)
		}
	})
	return tw
}

// stop is SIGTERM for an in-process worker: it returns run's result.
func (tw *testWorker) stop() error {
	tw.cancel()
	select {
	case err := <-tw.done:
		tw.done <- err // stop may be called again by the cleanup
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("worker did not stop within 30s")
	}
}

func (tw *testWorker) get(path string) (int, string) {
	return httpGet("http://" + tw.httpLn.Addr().String() + path)
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// await polls cond: stream counters, HTTP endpoints and receiver contents
// have no notification to wait on.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 60*time.Second, what, cond)
}

func testResult(id string, steps int) []byte {
	var s []string
	for i := range steps {
		s = append(s, fmt.Sprintf(`{"id":"s%d","name":"step-%d","latency_ms":%d}`, i, i, 10+i))
	}
	return fmt.Appendf(nil, `{"id":%q,"name":"wf","started_at":"2026-11-24T10:00:00Z","steps":[%s]}`, id, strings.Join(s, ","))
}

// publishResults publishes n results of 3 steps with ids prefix-0… and
// returns their ids.
func publishResults(t *testing.T, js jetstream.JetStream, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
		msg := nats.NewMsg("workflows.results.test")
		msg.Data = testResult(ids[i], 3)
		msg.Header.Set(jetstream.MsgIDHeader, ids[i])
		if _, err := js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func createStream(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	_, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: "WORKFLOW_RESULTS", Subjects: []string{"workflows.results.>"}, Storage: jetstream.FileStorage,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// roots counts the root spans the receiver accepted, by result id.
func roots(recv *otlptest.Receiver) map[string]int {
	out := map[string]int{}
	for _, s := range recv.Spans() {
		if s.ParentSpanID == "" {
			out[s.Attributes[string(mapping.AttrResultID)].(string)]++
		}
	}
	return out
}

// assertExactlyOnce checks that every id arrived exactly once, with all of
// its spans (a root and 3 steps), and nothing else did.
func assertExactlyOnce(t *testing.T, recv *otlptest.Receiver, ids []string) {
	t.Helper()
	got := roots(recv)
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("result %s arrived %d times, want 1", id, got[id])
		}
	}
	if len(got) != len(ids) {
		t.Errorf("receiver holds %d results, want %d", len(got), len(ids))
	}
	if n := recv.SpanCount(); n != 4*len(ids) {
		t.Errorf("receiver holds %d spans, want %d", n, 4*len(ids))
	}
}

// awaitSettled waits until the durable consumer has nothing pending and
// nothing unacknowledged.
func awaitSettled(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	await(t, "every message acknowledged", func() bool {
		info := consumerInfo(t, js)
		return info.NumPending == 0 && info.NumAckPending == 0
	})
}

func consumerInfo(t *testing.T, js jetstream.JetStream) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.Consumer(t.Context(), "WORKFLOW_RESULTS", "spanferry")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestRunEmbeddedDefaults is the README's walkthrough: a worker on its
// embedded defaults, `worker publish` from "a second terminal", and the
// example's trace in data/traces.jsonl.
func TestRunEmbeddedDefaults(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.EmbeddedAddr = "127.0.0.1:0"
	if cfg.Exporter != config.ExporterFile {
		t.Fatalf("default exporter = %q, want file", cfg.Exporter)
	}
	w := runWorker(t, cfg)
	await(t, "ready", func() bool { code, _ := w.get("/readyz"); return code == http.StatusOK })
	if code, body := w.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}

	pubCfg := cfg
	pubCfg.EmbeddedAddr = w.embedded.Addr().String()
	var out bytes.Buffer
	example := filepath.Join("..", "..", "examples", "agent-tools.json")
	if err := publishCmd(t.Context(), pubCfg, []string{example}, nil, &out, io.Discard, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("publish: %v", err)
	}

	want := exampleSpanIDs(t, example)
	tracesPath := filepath.Join(cfg.DataDir, "traces.jsonl")
	var got map[string]string
	await(t, "the example's spans in traces.jsonl", func() bool {
		got = fileSpanIDs(t, tracesPath)
		return len(got) >= len(want)
	})
	for id, trace := range want {
		if got[id] != trace {
			t.Errorf("span %s: trace %q in the file, want %q", id, got[id], trace)
		}
	}
	if len(got) != len(want) {
		t.Errorf("file holds %d spans, want %d", len(got), len(want))
	}
	await(t, "the ack counted", func() bool {
		_, m := w.get("/metrics")
		return strings.Contains(m, `spanferry_messages_total{outcome="acked"} 1`)
	})
	_, metrics := w.get("/metrics")
	for _, name := range []string{"spanferry_spans_exported_total " + fmt.Sprint(len(want)), "spanferry_export_duration_seconds_count 1", "spanferry_inflight_results 0", "spanferry_consumer_pending", "spanferry_attribute_truncations_total 0", "go_goroutines"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}

	if err := w.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if code, _ := w.get("/healthz"); code != 0 {
		t.Errorf("/healthz still answers %d after stop", code)
	}
}

// mapBody maps a message body (with its traceparent header, if any) as the
// worker does, and returns its spans.
func mapBody(t *testing.T, body []byte, traceparent string) []sdktrace.ReadOnlySpan {
	t.Helper()
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.Decode(body, mapping.Source{Traceparent: traceparent})
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.NewCollector(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Map(c, d); err != nil {
		t.Fatal(err)
	}
	return c.Spans()
}

// exampleSpanIDs maps an example the way the worker does: span id → trace id.
func exampleSpanIDs(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range mapBody(t, data, "") {
		out[s.SpanContext().SpanID().String()] = s.SpanContext().TraceID().String()
	}
	return out
}

// fileSpanIDs reads OTLP/JSON lines: span id → trace id.
func fileSpanIDs(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var req coltracepb.ExportTraceServiceRequest
		if err := otlptest.UnmarshalJSON(sc.Bytes(), &req); err != nil {
			t.Fatalf("%s: not an OTLP/JSON line: %v", path, err)
		}
		for _, s := range otlptest.Spans(&req) {
			out[s.SpanID] = s.TraceID
		}
	}
	return out
}

// TestRunTwoWorkersOneDurable: replicas share the durable consumer, so each
// result is exported by exactly one of them.
func TestRunTwoWorkersOneDurable(t *testing.T) {
	srv := natstest.Start(t)
	recv := otlptest.StartT(t)
	createStream(t, srv.JS)
	ids := publishResults(t, srv.JS, "two", 400)

	cfg := testConfig(t, srv.ClientURL())
	cfg.BatchSize = 10
	withReceiver(t, &cfg, recv)
	w1, w2 := runWorker(t, cfg), runWorker(t, cfg)

	await(t, "every result exported", func() bool { return len(roots(recv)) == len(ids) })
	awaitSettled(t, srv.JS)
	if info := consumerInfo(t, srv.JS); info.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered: a result may have been exported twice", info.NumRedelivered)
	}
	assertExactlyOnce(t, recv, ids)
	for i, w := range []*testWorker{w1, w2} {
		_, m := w.get("/metrics")
		t.Logf("worker %d: %s", i+1, metricLine(m, `spanferry_messages_total{outcome="acked"}`))
	}
}

func metricLine(metrics, name string) string {
	for line := range strings.Lines(metrics) {
		if strings.HasPrefix(line, name) {
			return strings.TrimSpace(line)
		}
	}
	return name + " (absent)"
}

// TestRunSurvivesNATSRestart: the server goes away with work in flight and
// comes back on the same store; the worker reports not ready meanwhile,
// reconnects on its own and delivers everything.
func TestRunSurvivesNATSRestart(t *testing.T) {
	srv := natstest.Start(t)
	recv := otlptest.StartT(t)
	createStream(t, srv.JS)
	first := publishResults(t, srv.JS, "before", 200)

	cfg := testConfig(t, srv.ClientURL())
	cfg.BatchSize = 10
	cfg.AckWait = 2 * time.Second // acks lost with the server come back sooner
	withReceiver(t, &cfg, recv)
	// A slow receiver, so that batches are in flight when the server stops.
	recv.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
		time.Sleep(5 * time.Millisecond)
		return otlptest.Response{}
	})
	w := runWorker(t, cfg)
	await(t, "some results exported", func() bool { return len(roots(recv)) >= 20 })

	srv.Stop()
	await(t, "/readyz not ready while the server is down", func() bool {
		code, _ := w.get("/readyz")
		return code == http.StatusServiceUnavailable
	})
	if code, _ := w.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d while nats is down, want 200 (the process is alive)", code)
	}
	srv.Restart(t)
	await(t, "/readyz ready after the restart", func() bool {
		code, _ := w.get("/readyz")
		return code == http.StatusOK
	})
	await(t, "the test's own connection back", srv.Conn.IsConnected)
	second := publishResults(t, srv.JS, "after", 50)

	all := append(first, second...)
	await(t, "every result exported", func() bool { return len(roots(recv)) == len(all) })
	got := roots(recv)
	dups := 0
	for _, id := range all {
		if got[id] == 0 {
			t.Errorf("result %s lost", id)
		}
		dups += got[id] - 1
	}
	// Acks lost with the server are redelivered: at-least-once, reported.
	t.Logf("%d results, %d duplicates after the restart", len(all), dups)
	awaitSettled(t, srv.JS)
}

// TestRunNATSAuth: the right user/password work; wrong ones fail at start
// with an error naming the cause, and no password reaches the logs.
func TestRunNATSAuth(t *testing.T) {
	const password = "s3cret-Pa55word"
	srv := natstest.Start(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "spanferry", Password: password}}
	})
	recv := otlptest.StartT(t)

	cfg := testConfig(t, srv.ClientURL())
	cfg.NATSUser, cfg.NATSPassword = "spanferry", password
	withReceiver(t, &cfg, recv)
	w := runWorker(t, cfg)
	await(t, "ready with the right credentials", func() bool { code, _ := w.get("/readyz"); return code == http.StatusOK })
	ids := publishResults(t, srv.JS, "auth", 5)
	await(t, "results exported", func() bool { return len(roots(recv)) == len(ids) })
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(w.logs.String(), password) {
		t.Errorf("the password is in the logs:\n%s", w.logs)
	}

	const wrong = "wr0ng-Pa55word"
	bad := cfg
	bad.NATSPassword = wrong
	bad.NATSURL = strings.Replace(srv.ClientURL(), "nats://", "nats://spanferry:"+wrong+"@", 1)
	var logs syncBuffer
	_, err := startWorker(t.Context(), bad, newLogger(bad, &logs), io.Discard)
	if err == nil {
		t.Fatal("startWorker with a wrong password succeeded")
	}
	if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("error does not name the cause: %v", err)
	}
	for _, secret := range []string{wrong, password} {
		if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("a password leaked:\nerror: %v\nlogs:\n%s", err, logs.String())
		}
	}
	t.Logf("error: %v", err)
}
