package consumer_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/internal/poll"
	"github.com/spanferry/spanferry/mapping"
)

type env struct {
	srv     *natstest.Server
	js      jetstream.JetStream
	recv    *otlptest.Receiver
	metrics *consumer.Metrics
	cfg     consumer.Config
}

// start runs a consumer against an embedded JetStream server and a real
// OTLP/HTTP receiver until the test ends.
func start(t *testing.T, batchSize int) *env {
	t.Helper()
	recv := otlptest.StartT(t)
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(recv.TracesURL()),
		otlptracehttp.WithHTTPClient(consumer.HTTPClient(5*time.Second)),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	e := startWith(t, exp, batchSize)
	e.recv = recv
	return e
}

// startWith is start with another exporter, and no receiver.
func startWith(t *testing.T, exp sdktrace.SpanExporter, batchSize int) *env {
	t.Helper()
	srv := natstest.Start(t)
	js := srv.JS
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := consumer.Config{
		Stream: "WORKFLOW_RESULTS", Subjects: []string{"workflows.results.>"}, Durable: "spanferry",
		CreateStream: true, DLQSubject: "workflows.dlq", DLQStream: "WORKFLOW_DLQ",
		BatchSize: batchSize, BatchWait: 20 * time.Millisecond, AckWait: 5 * time.Second, Concurrency: 2,
	}
	metrics := consumer.NewMetrics(nil)
	c, err := consumer.New(js, m, exp, cfg, consumer.WithMetrics(metrics))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	e := &env{srv: srv, js: js, metrics: metrics, cfg: cfg}
	e.await(t, "consumer bound", func() bool { return c.Ready() })
	return e
}

func (e *env) publish(t *testing.T, id, body string) {
	t.Helper()
	msg := nats.NewMsg("workflows.results.test")
	msg.Data = []byte(body)
	msg.Header.Set(jetstream.MsgIDHeader, id)
	if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

func result(id string, steps int) string {
	var s []string
	for i := range steps {
		s = append(s, fmt.Sprintf(`{"id":"s%d","name":"step-%d","latency_ms":%d}`, i, i, 10+i))
	}
	return fmt.Sprintf(`{"id":%q,"name":"wf","started_at":"2026-11-24T10:00:00Z","steps":[%s]}`, id, strings.Join(s, ","))
}

// await polls a condition: the states waited on here (stream counters,
// receiver contents) have no notification to wait on.
func (e *env) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 30*time.Second, what, cond)
}

func (e *env) settled(t *testing.T) bool {
	info, err := e.js.Consumer(context.Background(), e.cfg.Stream, e.cfg.Durable)
	if err != nil {
		return false
	}
	ci, err := info.Info(context.Background())
	return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
}

func (e *env) deadLetters(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	return e.srv.StreamMsgs(t, e.cfg.DLQStream)
}

func counter(e *env, outcome string) float64 {
	return testutil.ToFloat64(e.metrics.Messages.WithLabelValues(outcome))
}

func resultIDs(spans []otlptest.Span) map[string]int {
	out := map[string]int{}
	for _, s := range spans {
		if s.ParentSpanID == "" {
			out[s.Attributes["spanferry.result.id"].(string)]++
		}
	}
	return out
}

func TestHappyPathBatchesAndAcks(t *testing.T) {
	e := start(t, 50)
	const n = 40
	for i := range n {
		e.publish(t, fmt.Sprintf("run-%d", i), result(fmt.Sprintf("run-%d", i), 3))
	}
	if err := e.recv.WaitSpans(context.Background(), n*4); err != nil {
		t.Fatal(err)
	}
	e.await(t, "all acked", func() bool { return e.settled(t) })

	ids := resultIDs(e.recv.Spans())
	for i := range n {
		if ids[fmt.Sprintf("run-%d", i)] != 1 {
			t.Fatalf("run-%d exported %d times", i, ids[fmt.Sprintf("run-%d", i)])
		}
	}
	reqs := e.recv.Accepted()
	if len(reqs) >= n {
		t.Errorf("%d requests for %d results: no batching", len(reqs), n)
	}
	// Each result's spans travel whole in one request.
	for _, r := range reqs {
		perResult := map[string]int{}
		for _, s := range otlptest.Spans(r.Body) {
			perResult[s.Attributes["spanferry.result.id"].(string)]++
		}
		for id, count := range perResult {
			if count != 4 {
				t.Errorf("request holds %d of %s's 4 spans", count, id)
			}
		}
	}
	if got := counter(e, consumer.OutcomeAcked); got != n {
		t.Errorf("acked = %v, want %d", got, n)
	}
	if got := testutil.ToFloat64(e.metrics.SpansOut); got != n*4 {
		t.Errorf("spans exported = %v", got)
	}
}

func TestPoisonGoesToTheDeadLetterSubject(t *testing.T) {
	e := start(t, 10)
	bad := map[string]string{
		"bad-json":    `{"id":"bad-json","name":`,
		"bad-field":   `{"id":"bad-field","name":"wf","steps":[{"name":"a"},{"kind":"llm"}]}`,
		"bad-version": `{"version":2,"id":"bad-version","name":"wf"}`,
	}
	for i := range 6 {
		e.publish(t, fmt.Sprintf("good-%d", i), result(fmt.Sprintf("good-%d", i), 1))
		if i < 3 {
			id := []string{"bad-json", "bad-field", "bad-version"}[i]
			e.publish(t, id, bad[id])
		}
	}
	if err := e.recv.WaitSpans(context.Background(), 6*2); err != nil {
		t.Fatal(err)
	}
	e.await(t, "all settled", func() bool { return e.settled(t) && len(e.deadLetters(t)) == 3 })

	for _, dl := range e.deadLetters(t) {
		h := dl.Header
		id := h.Get(jetstream.MsgIDHeader)
		if string(dl.Data) != bad[id] {
			t.Errorf("dead letter %s body %q, want the original", id, dl.Data)
		}
		if h.Get(consumer.HeaderStream) != "WORKFLOW_RESULTS" || h.Get(consumer.HeaderSubject) != "workflows.results.test" ||
			h.Get(consumer.HeaderStreamSeq) == "" || h.Get(consumer.HeaderDeliveries) != "1" {
			t.Errorf("dead letter %s headers %v", id, h)
		}
		want := map[string]string{"bad-json": "invalid JSON", "bad-field": "steps[1].name: required", "bad-version": "version: unsupported version 2"}[id]
		if !strings.Contains(h.Get(consumer.HeaderError), want) {
			t.Errorf("dead letter %s reason %q, want it to contain %q", id, h.Get(consumer.HeaderError), want)
		}
	}
	if got := counter(e, consumer.OutcomeDeadLettered); got != 3 {
		t.Errorf("dead_lettered = %v", got)
	}
	if got := counter(e, consumer.OutcomeAcked); got != 6 {
		t.Errorf("acked = %v", got)
	}
}

func TestReceiverOutageLosesNothing(t *testing.T) {
	e := start(t, 10)
	var refused atomic.Int64
	e.recv.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
		if refused.Add(1) <= 3 {
			return otlptest.Response{Status: 503}
		}
		return otlptest.Response{}
	})
	const n = 15
	for i := range n {
		e.publish(t, fmt.Sprintf("run-%d", i), result(fmt.Sprintf("run-%d", i), 2))
	}
	if err := e.recv.WaitSpans(context.Background(), n*3); err != nil {
		t.Fatal(err)
	}
	e.await(t, "all acked", func() bool { return e.settled(t) })
	ids := resultIDs(e.recv.Spans())
	if len(ids) != n {
		t.Fatalf("%d results arrived, want %d", len(ids), n)
	}
	if len(e.deadLetters(t)) != 0 {
		t.Fatal("a transient failure dead-lettered a message")
	}
	if counter(e, consumer.OutcomeRetried) == 0 {
		t.Error("no delivery counted as retried")
	}
}

func TestRejectedResultIsIsolatedAndDeadLettered(t *testing.T) {
	e := start(t, 20)
	// The receiver refuses, with 400, any request holding the result "poison".
	e.recv.SetBehavior(func(req *coltracepb.ExportTraceServiceRequest) otlptest.Response {
		for _, s := range otlptest.Spans(req) {
			if s.Attributes["spanferry.result.id"] == "poison" {
				return otlptest.Response{Status: 400, ErrorMessage: "bad span"}
			}
		}
		return otlptest.Response{}
	})
	for i := range 9 {
		e.publish(t, fmt.Sprintf("run-%d", i), result(fmt.Sprintf("run-%d", i), 1))
		if i == 4 {
			e.publish(t, "poison", result("poison", 1))
		}
	}
	if err := e.recv.WaitSpans(context.Background(), 9*2); err != nil {
		t.Fatal(err)
	}
	e.await(t, "settled", func() bool { return e.settled(t) && len(e.deadLetters(t)) == 1 })
	dls := e.deadLetters(t)
	if id := dls[0].Header.Get(jetstream.MsgIDHeader); id != "poison" {
		t.Fatalf("dead-lettered %s, want poison only", id)
	}
	if !strings.Contains(dls[0].Header.Get(consumer.HeaderError), "status 400") {
		t.Errorf("reason %q", dls[0].Header.Get(consumer.HeaderError))
	}
	if ids := resultIDs(e.recv.Spans()); len(ids) != 9 || ids["poison"] != 0 {
		t.Fatalf("receiver holds %v", ids)
	}
}
