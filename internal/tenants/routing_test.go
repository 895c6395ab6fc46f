package tenants_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/logtest"
	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/internal/tenants"
	"github.com/spanferry/spanferry/mapping"
)

// Secrets of the routing test: none may reach a log line or another
// tenant's destination.
const (
	platformKey = "platform-secret-4f1c"
	acmeKey     = "acme-secret-9a7e"
	globexKey   = "globex-secret-2b3d"
)

// TestRouting sends mixed batches of three listed tenants, an unlisted one
// and results without an organization, and checks that each destination
// gets exactly its own results, whole, with its own headers and
// compression, that no request mixes tenants, and the metrics.
func TestRouting(t *testing.T) {
	base, acme, globex := otlptest.StartT(t), otlptest.StartT(t), otlptest.StartT(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", base.TracesURL())
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20"+platformKey+",x-platform=1")
	t.Setenv("ACME_API_KEY", acmeKey)
	keyFile := writeFile(t, "globex-key", globexKey+"\n")
	path := writeFile(t, "tenants.yaml", fmt.Sprintf(`
tenants:
  acme:
    endpoint: %s
    headers:
      authorization: "Bearer ${env:ACME_API_KEY}"
    compression: gzip
  globex:
    endpoint: %s
    headers:
      x-api-key: "${file:%s}"
    compression: none
  initech:
    headers:
      X-Platform: initech
      x-tenant: initech
`, acme.TracesURL(), globex.TracesURL(), keyFile))

	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	f, err := tenants.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("tenants loaded", "tenants", f)
	workerExp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithHTTPClient(consumer.HTTPClient(5*time.Second)),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	table, err := tenants.Build(ctx, f, tenants.Base{Exporter: workerExp, OTLP: true, Timeout: 5 * time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	tm := consumer.NewTenantMetrics(nil)
	reg := consumer.NewTenants(table, true, tm)

	srv := natstest.Start(t)
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := consumer.Config{
		Stream: "WORKFLOW_RESULTS", Subjects: []string{"workflows.results.>"}, Durable: "spanferry",
		CreateStream: true, DLQSubject: "workflows.dlq", DLQStream: "WORKFLOW_DLQ",
		BatchSize: 100, BatchWait: 200 * time.Millisecond, AckWait: 5 * time.Second, Concurrency: 1,
	}
	c, err := consumer.New(srv.JS, m, workerExp, cfg, consumer.WithTenants(reg), consumer.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	// Published before the consumer starts, so that batches mix them all.
	if _, err := srv.JS.CreateStream(ctx, jetstream.StreamConfig{Name: cfg.Stream, Subjects: cfg.Subjects}); err != nil {
		t.Fatal(err)
	}
	orgs := []string{"acme", "globex", "initech", "umbrella", ""}
	const perOrg = 6
	for i := range perOrg {
		for _, org := range orgs {
			body := fmt.Sprintf(`{"id":"%s-%d","name":"wf","started_at":"2026-11-24T10:00:00Z","steps":[{"name":"a","latency_ms":5},{"name":"b","latency_ms":5}]`, label(org), i)
			if org != "" {
				body += fmt.Sprintf(`,"organization":%q`, org)
			}
			msg := nats.NewMsg("workflows.results.test")
			msg.Data = []byte(body + "}")
			msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s-%d", label(org), i))
			if _, err := srv.JS.PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for r, n := range map[*otlptest.Receiver]int{acme: perOrg * 3, globex: perOrg * 3, base: perOrg * 3 * 3} {
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		if err := r.WaitSpans(wctx, n); err != nil {
			t.Fatalf("waiting for %d spans: %v (got %d)", n, err, r.SpanCount())
		}
		wcancel()
	}

	check := func(name string, r *otlptest.Receiver, wantOrgs map[string]bool, want func(req otlptest.Request, org string) string) {
		t.Helper()
		ids := map[string]bool{}
		for _, req := range r.Requests() {
			perTrace := map[string]int{}
			reqOrgs := map[string]bool{}
			for _, s := range otlptest.Spans(req.Body) {
				perTrace[s.TraceID]++
				if s.ParentSpanID == "" {
					org, _ := s.Attributes["keywordsai.metadata.organization"].(string)
					reqOrgs[label(org)] = true
					ids[s.Attributes["spanferry.result.id"].(string)] = true
				}
			}
			for tr, n := range perTrace {
				if n != 3 {
					t.Errorf("%s: a request holds %d of trace %s's 3 spans", name, n, tr)
				}
			}
			if len(reqOrgs) > 1 && !(len(reqOrgs) == 2 && reqOrgs["umbrella"] && reqOrgs["none"]) {
				t.Errorf("%s: a request mixes tenants %v", name, reqOrgs)
			}
			for org := range reqOrgs {
				if !wantOrgs[org] {
					t.Errorf("%s received a result of %s", name, org)
				}
				if msg := want(req, org); msg != "" {
					t.Errorf("%s, request of %s: %s (headers %v)", name, org, msg, redacted(req))
				}
			}
		}
		if len(ids) != perOrg*len(wantOrgs) {
			t.Errorf("%s: %d distinct results, want %d", name, len(ids), perOrg*len(wantOrgs))
		}
	}
	check("acme", acme, map[string]bool{"acme": true}, func(req otlptest.Request, _ string) string {
		switch {
		case req.Header.Get("Authorization") != "Bearer "+acmeKey:
			return "want acme's authorization"
		case req.Header.Get("X-Platform") != "":
			return "the worker's headers reached a tenant's own endpoint"
		case !req.Gzip:
			return "want gzip"
		}
		return ""
	})
	check("globex", globex, map[string]bool{"globex": true}, func(req otlptest.Request, _ string) string {
		switch {
		case req.Header.Get("X-Api-Key") != globexKey:
			return "want globex's key"
		case req.Header.Get("Authorization") != "" || req.Header.Get("X-Platform") != "":
			return "the worker's headers reached a tenant's own endpoint"
		case req.Gzip:
			return "want no compression"
		}
		return ""
	})
	check("the worker's destination", base, map[string]bool{"initech": true, "umbrella": true, "none": true}, func(req otlptest.Request, org string) string {
		if req.Header.Get("Authorization") != "Bearer "+platformKey {
			return "want the worker's authorization"
		}
		if org == "initech" {
			if req.Header.Get("X-Tenant") != "initech" || req.Header.Get("X-Platform") != "initech" {
				return "want initech's headers added to the worker's, replacing x-platform"
			}
			return ""
		}
		if req.Header.Get("X-Tenant") != "" || req.Header.Get("X-Platform") != "1" {
			return "a tenant's headers reached default's requests"
		}
		return ""
	})
	// The receivers record a request before answering it: the counters
	// follow once the answers are in.
	for name, want := range map[string]float64{"acme": 18, "globex": 18, "initech": 18, consumer.DefaultTenant: 36} {
		deadline := time.Now().Add(10 * time.Second)
		for testutil.ToFloat64(tm.Spans.WithLabelValues(name)) != want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := testutil.ToFloat64(tm.Spans.WithLabelValues(name)); got != want {
			t.Errorf("spanferry_tenant_spans_exported_total{tenant=%q} = %v, want %v", name, got, want)
		}
	}
	if n := testutil.CollectAndCount(tm.Spans); n != 4 {
		t.Errorf("%d tenant label values, want 4 (the listed tenants and default)", n)
	}
	for _, s := range []string{platformKey, acmeKey, globexKey} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("a log line holds a secret:\n%s", logs.String())
		}
	}
}

func label(org string) string {
	if org == "" {
		return "none"
	}
	return org
}

// redacted is a request's header names, for messages.
func redacted(req otlptest.Request) []string {
	var names []string
	for k := range req.Header {
		names = append(names, k)
	}
	return names
}

// syncBuffer is a log sink that tests read while the worker writes.
type syncBuffer = logtest.Buffer
