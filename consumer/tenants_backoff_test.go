package consumer_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/mapping"
)

// backedOff answers 503 with a Retry-After of 30 s: after its first
// failure, a tenant must not be sent another request during the test.
func backedOff(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
	return otlptest.Response{Status: 503, RetryAfter: "30"}
}

func tenantExporter(t *testing.T, r *otlptest.Receiver) sdktrace.SpanExporter {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(r.TracesURL()),
		otlptracehttp.WithHTTPClient(consumer.HTTPClient(5*time.Second)),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// TestReplayRespectsTenantBackoff checks that a replay (which never
// parks) does not send a request to a backed-off tenant with every batch:
// its results wait out the tenant's backoff, nak'd, while the other
// tenant's are exported.
func TestReplayRespectsTenantBackoff(t *testing.T) {
	cfg := tenantConfig(0)
	cfg.BatchSize = 10
	e := newTenantEnv(t, []string{"A", "B"}, false, cfg)
	e.recv["B"].SetBehavior(backedOff)
	ctx := context.Background()
	if _, err := e.srv.JS.CreateStream(ctx, jetstream.StreamConfig{Name: cfg.Stream, Subjects: cfg.Subjects}); err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		e.publishAsync(t, fmt.Sprintf("a-%d", i), "A")
		e.publishAsync(t, fmt.Sprintf("b-%d", i), "B")
	}
	e.publishWait(t)
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := consumer.New(e.srv.JS, m, nil, cfg, consumer.WithTenants(e.tenants))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var retries atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.Replay(rctx, consumer.Range{}, consumer.WithProgress(10*time.Millisecond, func(s consumer.ReplayStats) { retries.Store(s.Retries) }))
	}()
	// The replay's window (2×batch×concurrency = 40) fills with B's
	// results, four batches' worth of them at least.
	await(t, "B's results nak'd", func() bool { return retries.Load() >= 40 })
	if got := len(e.recv["B"].Requests()); got > cfg.Concurrency {
		t.Errorf("B's receiver got %d requests during its 30 s Retry-After, want at most %d (the batches in flight at its first failure)", got, cfg.Concurrency)
	}
	if got := len(acceptedIDs(e.recv["A"])); got == 0 {
		t.Error("no result of A exported while B was backed off")
	}
	cancel()
	<-done
}

// TestParkedResultsRespectTheirRoutesBackoff checks results parked under
// one route whose organization a reload moved to another: the park loop
// waits for the first route's backoff, but the results go to the second,
// and must wait out that one's, not retry it in a tight loop.
func TestParkedResultsRespectTheirRoutesBackoff(t *testing.T) {
	cfg := tenantConfig(0)
	cfg.BatchSize = 5 // a park fetch returns at once, not after parkFetchWait
	e := newTenantEnv(t, nil, false, cfg)
	def := e.recv[consumer.DefaultTenant]
	def.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response { return otlptest.Response{Status: 503} })
	e.startReplica(t)
	const n = 20
	for i := range n {
		e.publish(t, fmt.Sprintf("x-%d", i), "X") // unlisted: default's route
	}
	await(t, "X's results parked under default", func() bool {
		return testutil.ToFloat64(e.tm.Parked.WithLabelValues(consumer.DefaultTenant)) >= n
	})

	// X gets a destination of its own, backed off after its first failure;
	// default's recovers.
	x := otlptest.StartT(t)
	x.SetBehavior(backedOff)
	e.tenants.Swap(consumer.TenantTable{
		Tenants: map[string]consumer.TenantRoute{"X": {Exporter: tenantExporter(t, x)}},
		Default: tenantExporter(t, def),
	})
	def.SetBehavior(nil)
	await(t, "X's destination tried", func() bool { return len(x.Requests()) > 0 })
	// Default's park loop has nothing else to do: without the backoff of
	// X's route, it would retry X as fast as it can fetch.
	time.Sleep(time.Second)
	if got := len(x.Requests()); got > 2 {
		t.Errorf("X's receiver got %d requests during its 30 s Retry-After, want at most 2", got)
	}
	if got := def.SpanCount(); got != 0 {
		t.Errorf("default's destination got %d spans of X's results, want 0 (X has its own now)", got)
	}
}
