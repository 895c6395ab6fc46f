package consumer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/internal/poll"
	"github.com/spanferry/spanferry/mapping"
)

// parkEnv is a consumer with tenants A and B, each with a real OTLP
// receiver, on a JetStream server configured by configure; before, when
// not nil, runs before the consumer does.
type parkEnv struct {
	srv  *natstest.Server
	recv map[string]*otlptest.Receiver
	c    *Consumer
	cfg  Config
}

func newParkEnv(t *testing.T, before func(*natstest.Server), configure ...func(*server.Options)) *parkEnv {
	t.Helper()
	e := &parkEnv{srv: natstest.Start(t, configure...), recv: map[string]*otlptest.Receiver{}}
	if before != nil {
		before(e.srv)
	}
	table := TenantTable{Tenants: map[string]TenantRoute{}}
	for _, name := range []string{"A", "B", DefaultTenant} {
		r := otlptest.StartT(t)
		e.recv[name] = r
		exp, err := otlptracehttp.New(context.Background(),
			otlptracehttp.WithEndpointURL(r.TracesURL()),
			otlptracehttp.WithHTTPClient(HTTPClient(5*time.Second)),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
		if name == DefaultTenant {
			table.Default = exp
		} else {
			table.Tenants[name] = TenantRoute{Exporter: exp}
		}
	}
	e.cfg = Config{
		Stream: "WORKFLOW_RESULTS", Subjects: []string{"workflows.results.>"}, Durable: "spanferry",
		CreateStream: true, DLQSubject: "workflows.dlq", DLQStream: "WORKFLOW_DLQ",
		BatchSize: 50, BatchWait: 20 * time.Millisecond, AckWait: 5 * time.Second, Concurrency: 2,
		TenantParkAfter: 5 * time.Second,
	}
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	e.c, err = New(e.srv.JS, m, nil, e.cfg, WithTenants(NewTenants(table, true, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, "consumer bound", e.c.Ready)
	return e
}

func (e *parkEnv) publish(t *testing.T, id, org, output string) {
	t.Helper()
	msg := nats.NewMsg("workflows.results." + strings.ToLower(org))
	msg.Data = fmt.Appendf(nil, `{"id":%q,"organization":%q,"name":"wf","started_at":"2026-11-24T10:00:00Z","output":%q,"steps":[{"id":"s0","name":"step","latency_ms":5}]}`, id, org, output)
	msg.Header.Set(jetstream.MsgIDHeader, id)
	if _, err := e.srv.JS.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 60*time.Second, what, cond)
}

func rootIDs(r *otlptest.Receiver) map[string]int {
	out := map[string]int{}
	for _, s := range r.Spans() {
		if s.ParentSpanID == "" {
			out[s.Attributes["spanferry.result.id"].(string)]++
		}
	}
	return out
}

// TestUnparkableResultStallsNoOne checks results just under the server's
// max_payload, whose parked copy (the park's headers added) would exceed
// it, while their tenant's destination is down: they can never be
// parked, so they wait nak'd in the results stream with their tenant's
// backoff — without slowing the worker's fetching for other tenants,
// without a dead letter, and exported once the destination is back.
//
// The other case of a copy too large: the park stream's MaxMsgSize, which
// JetStream enforces (the client does not know it).
func TestUnparkableResultStallsNoOne(t *testing.T) {
	const limit = 16 << 10
	pad := strings.Repeat("x", limit-300) // the body ends ~150 bytes under the limit
	t.Run("max_payload", func(t *testing.T) {
		testUnparkable(t, newParkEnv(t, nil, func(o *server.Options) { o.MaxPayload = limit }), pad)
	})
	t.Run("MaxMsgSize", func(t *testing.T) {
		testUnparkable(t, newParkEnv(t, func(srv *natstest.Server) {
			if _, err := srv.JS.CreateStream(context.Background(), jetstream.StreamConfig{
				Name: DefaultParkStream, Subjects: []string{"spanferry.park.>"}, Retention: jetstream.WorkQueuePolicy,
				MaxMsgSize: limit,
			}); err != nil {
				t.Fatal(err)
			}
		}), pad)
	})
}

func testUnparkable(t *testing.T, e *parkEnv, pad string) {
	e.recv["B"].SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
		return otlptest.Response{Status: 503}
	})
	const big = 8
	for i := range big {
		e.publish(t, fmt.Sprintf("big-%d", i), "B", pad)
	}
	retried := func() float64 { return testutil.ToFloat64(e.c.metrics.retried) }
	waitFor(t, "the large results nak'd", func() bool { return retried() >= big })

	// Each of them failed to park: none may pause the fetching of A's.
	for i := range 3 {
		id := fmt.Sprintf("a-%d", i)
		published := time.Now()
		e.publish(t, id, "A", "")
		waitFor(t, id+" exported", func() bool { return rootIDs(e.recv["A"])[id] > 0 })
		if took := time.Since(published); took > 2*time.Second {
			t.Errorf("%s exported %v after it was published, want well under the worker's 4–5 s fetch backoff", id, took)
		}
	}
	if e.c.gate.failing() {
		t.Error("the worker's fetch gate is failing after results of one tenant could not be parked")
	}

	e.recv["B"].SetBehavior(nil)
	waitFor(t, "every large result exported once B is back", func() bool { return len(rootIDs(e.recv["B"])) == big })
	waitFor(t, "settled", func() bool {
		cons, err := e.srv.JS.Consumer(context.Background(), e.cfg.Stream, e.cfg.Durable)
		if err != nil {
			return false
		}
		ci, err := cons.Info(context.Background())
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
	if msgs := e.srv.StreamMsgs(t, e.cfg.DLQStream); len(msgs) != 0 {
		t.Errorf("%d dead letters, want none: a valid result waits for its destination", len(msgs))
	}
	if n := testutil.ToFloat64(e.c.tenants.metrics.Parked.WithLabelValues("B")); n != 0 {
		t.Errorf("spanferry_tenant_parked_total{tenant=B} = %v, want 0 (they cannot be parked)", n)
	}
}
