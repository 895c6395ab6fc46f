package consumer_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/logtest"
	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/internal/poll"
	"github.com/spanferry/spanferry/mapping"
)

// tenantEnv is a JetStream server, a real OTLP receiver per tenant (and
// one for default) and the tenants' routing table.
type tenantEnv struct {
	srv     *natstest.Server
	recv    map[string]*otlptest.Receiver // by tenant, and consumer.DefaultTenant
	tenants *consumer.Tenants
	tm      *consumer.TenantMetrics
	metrics *consumer.Metrics
	cfg     consumer.Config
	logs    *syncBuffer
}

func newTenantEnv(t *testing.T, names []string, deadLetterDefault bool, cfg consumer.Config) *tenantEnv {
	t.Helper()
	e := &tenantEnv{srv: natstest.Start(t), recv: map[string]*otlptest.Receiver{}, cfg: cfg, logs: &syncBuffer{}}
	table := consumer.TenantTable{Tenants: map[string]consumer.TenantRoute{}, DeadLetterDefault: deadLetterDefault}
	for _, name := range append(slices.Clone(names), consumer.DefaultTenant) {
		r := otlptest.StartT(t)
		e.recv[name] = r
		exp := tenantExporter(t, r)
		if name == consumer.DefaultTenant {
			table.Default = exp
		} else {
			table.Tenants[name] = consumer.TenantRoute{Exporter: exp}
		}
	}
	e.tm = consumer.NewTenantMetrics(nil)
	e.metrics = consumer.NewMetrics(nil)
	e.tenants = consumer.NewTenants(table, true, e.tm)
	return e
}

func tenantConfig(maxAckPending int) consumer.Config {
	return consumer.Config{
		Stream: "WORKFLOW_RESULTS", Subjects: []string{"workflows.results.>"}, Durable: "spanferry",
		CreateStream: true, DLQSubject: "workflows.dlq", DLQStream: "WORKFLOW_DLQ",
		BatchSize: 50, BatchWait: 20 * time.Millisecond, AckWait: 3 * time.Second, Concurrency: 2,
		MaxAckPending: maxAckPending,
		// Longer than a healthy export takes on a busy machine under
		// -race: only the test of a hanging destination relies on it.
		TenantParkAfter: 5 * time.Second,
	}
}

// replica runs one consumer (a replica) on a connection of its own until
// the test ends or kill is called, which drops the connection first, as a
// crashed process would.
type replica struct {
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
}

func (e *tenantEnv) startReplica(t *testing.T) *replica {
	t.Helper()
	nc, err := nats.Connect(e.srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := consumer.New(js, m, nil, e.cfg, consumer.WithMetrics(e.metrics), consumer.WithTenants(e.tenants), consumer.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{nc: nc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		r.cancel()
		if err := <-r.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		nc.Close()
	})
	await(t, "consumer bound", c.Ready)
	return r
}

// kill drops the replica's connection without settling what it holds.
func (r *replica) kill() {
	r.nc.Close()
	r.cancel()
}

func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 60*time.Second, what, cond)
}

func tenantResult(id, org string) string {
	o := ""
	if org != "" {
		o = fmt.Sprintf(`"organization":%q,`, org)
	}
	return fmt.Sprintf(`{"id":%q,%s"name":"wf","started_at":"2026-11-24T10:00:00Z","steps":[{"id":"s0","name":"step","latency_ms":5}]}`, id, o)
}

func (e *tenantEnv) publish(t *testing.T, id, org string) {
	t.Helper()
	msg := nats.NewMsg("workflows.results." + strings.ToLower(org+"x"))
	msg.Data = []byte(tenantResult(id, org))
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Header.Set("X-Original", "kept")
	if _, err := e.srv.JS.PublishMsg(context.Background(), msg); err != nil {
		t.Error(err)
	}
}

func (e *tenantEnv) publishAsync(t *testing.T, id, org string) {
	t.Helper()
	msg := nats.NewMsg("workflows.results." + strings.ToLower(org+"x"))
	msg.Data = []byte(tenantResult(id, org))
	msg.Header.Set(jetstream.MsgIDHeader, id)
	if _, err := e.srv.JS.PublishMsgAsync(msg); err != nil {
		t.Error(err)
	}
}

func (e *tenantEnv) publishWait(t *testing.T) {
	t.Helper()
	select {
	case <-e.srv.JS.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		t.Fatal("async publishes not acknowledged within 10s")
	}
}

func (e *tenantEnv) consumerSettled(t *testing.T, stream, durable string) bool {
	cons, err := e.srv.JS.Consumer(context.Background(), stream, durable)
	if err != nil {
		return false
	}
	ci, err := cons.Info(context.Background())
	return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
}

func (e *tenantEnv) streamMsgs(t *testing.T, stream string) uint64 {
	t.Helper()
	s, err := e.srv.JS.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// acceptedIDs counts the results (root spans) each receiver accepted.
func acceptedIDs(r *otlptest.Receiver) map[string]int { return resultIDs(r.Spans()) }

// TestTenantRejectionDeadLettersOnlyTheOffender checks that a tenant's
// receiver refusing one result for good (400) dead-letters that result
// alone, with Spanferry-Tenant, while the others of the same batch are
// exported, and that unlisted tenants follow default: dead-letter.
func TestTenantRejectionDeadLettersOnlyTheOffender(t *testing.T) {
	e := newTenantEnv(t, []string{"acme"}, true, tenantConfig(0))
	e.recv["acme"].SetBehavior(func(req *coltracepb.ExportTraceServiceRequest) otlptest.Response {
		for _, s := range otlptest.Spans(req) {
			if s.Attributes["spanferry.result.id"] == "acme-bad" {
				return otlptest.Response{Status: 400}
			}
		}
		return otlptest.Response{}
	})
	e.startReplica(t)
	for i := range 10 {
		e.publish(t, fmt.Sprintf("acme-%d", i), "acme")
	}
	e.publish(t, "acme-bad", "acme")
	e.publish(t, "umbrella-1", "umbrella")
	e.publish(t, "none-1", "")
	await(t, "settled", func() bool { return e.consumerSettled(t, e.cfg.Stream, e.cfg.Durable) })
	await(t, "three dead letters", func() bool { return e.streamMsgs(t, e.cfg.DLQStream) == 3 })

	if got := acceptedIDs(e.recv["acme"]); len(got) != 10 || got["acme-bad"] != 0 {
		t.Errorf("acme accepted %v, want acme-0..9", got)
	}
	if n := e.recv[consumer.DefaultTenant].SpanCount(); n != 0 {
		t.Errorf("default received %d spans, want none (action dead-letter)", n)
	}
	tenant := map[string]string{}
	for _, dl := range e.srv.StreamMsgs(t, e.cfg.DLQStream) {
		id := dl.Header.Get(jetstream.MsgIDHeader)
		tenant[id] = dl.Header.Get(consumer.HeaderTenant)
		if dl.Header.Get("X-Original") != "kept" || dl.Header.Get(consumer.HeaderError) == "" {
			t.Errorf("dead letter %s headers %v: want the original's and the reason", id, dl.Header)
		}
		if id == "umbrella-1" && !strings.Contains(dl.Header.Get(consumer.HeaderError), `tenant "umbrella" is not in the tenants file`) {
			t.Errorf("umbrella's reason %q", dl.Header.Get(consumer.HeaderError))
		}
	}
	want := map[string]string{"acme-bad": "acme", "umbrella-1": "umbrella", "none-1": ""}
	if fmt.Sprint(tenant) != fmt.Sprint(want) {
		t.Errorf("dead letters' Spanferry-Tenant = %v, want %v", tenant, want)
	}
	if got := testutil.ToFloat64(e.tm.Spans.WithLabelValues("acme")); got != 20 {
		t.Errorf("acme spans exported = %v, want 20", got)
	}
	if got := testutil.ToFloat64(e.tm.Failures.WithLabelValues("acme")); got < 1 {
		t.Errorf("acme failures = %v, want the rejected requests counted", got)
	}
}

// syncBuffer is a log sink that tests read while the worker writes.
type syncBuffer = logtest.Buffer
