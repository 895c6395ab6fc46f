package consumer_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/otlptest"
)

// isolation is one outage of tenant B's destination while A and B publish.
type isolation struct {
	failure  string        // "503", "401", "refused" or "hang" (no answer until recovery)
	outage   time.Duration // how long B fails while both publish
	replicas int           // consumers sharing the durable consumer and the park
	kill     bool          // kill one replica halfway through the outage
}

// The consumer's MaxAckPending in these tests: B's held results pass it
// many times over during the outage.
const isolationMaxAckPending = 300

// Publishing rates: per 10 ms tick (and the time the publishes take), one
// result of A and twenty of B.
const (
	tick     = 10 * time.Millisecond
	bPerTick = 20
)

func TestTenantIsolation(t *testing.T) {
	for _, c := range []isolation{
		{failure: "503", outage: 2 * time.Second, replicas: 1},
		{failure: "401", outage: 2 * time.Second, replicas: 1},
		{failure: "refused", outage: 2 * time.Second, replicas: 1},
		{failure: "hang", outage: 3 * time.Second, replicas: 1},
		{failure: "503", outage: 3 * time.Second, replicas: 2, kill: true},
	} {
		t.Run(c.name(), func(t *testing.T) { testIsolation(t, c) })
	}
}

func (c isolation) name() string {
	name := fmt.Sprintf("%s/%dreplicas", c.failure, c.replicas)
	if c.kill {
		name += "/kill"
	}
	return name
}

func testIsolation(t *testing.T, c isolation) {
	cfg := tenantConfig(isolationMaxAckPending)
	if c.failure == "hang" {
		// Shorter than the default, so that the stall it costs at the
		// outage's start (a backlog to catch up with) fits a slow -race run.
		cfg.TenantParkAfter = 250 * time.Millisecond
	}
	e := newTenantEnv(t, []string{"A", "B"}, false, cfg)
	a, b := e.recv["A"], e.recv["B"]
	release := make(chan struct{})

	// When each of A's results reached its receiver.
	var mu sync.Mutex
	published, exported := map[string]time.Time{}, map[string]time.Time{}
	a.SetBehavior(func(req *coltracepb.ExportTraceServiceRequest) otlptest.Response {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, s := range otlptest.Spans(req) {
			if id, ok := s.Attributes["spanferry.result.id"].(string); ok && s.ParentSpanID == "" {
				if _, seen := exported[id]; !seen {
					exported[id] = now
				}
			}
		}
		return otlptest.Response{}
	})
	switch c.failure {
	case "503":
		b.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
			return otlptest.Response{Status: 503}
		})
	case "401":
		b.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
			return otlptest.Response{Status: 401}
		})
	case "refused":
		if err := b.Stop(); err != nil {
			t.Fatal(err)
		}
	case "hang":
		b.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
			<-release
			return otlptest.Response{Status: 503}
		})
	}

	var replicas []*replica
	for range c.replicas {
		replicas = append(replicas, e.startReplica(t))
	}

	// Publish steadily for the outage; sample the durable consumer's
	// ack-pending count meanwhile.
	var nA, nB int
	maxAckPending := 0
	cons, err := e.srv.JS.Consumer(context.Background(), e.cfg.Stream, e.cfg.Durable)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	killed := false
	for time.Since(start) < c.outage || nB < 5*isolationMaxAckPending {
		id := fmt.Sprintf("a-%d", nA)
		mu.Lock()
		published[id] = time.Now()
		mu.Unlock()
		e.publish(t, id, "A")
		nA++
		for range bPerTick {
			e.publishAsync(t, fmt.Sprintf("b-%d", nB), "B")
			nB++
		}
		e.publishWait(t)
		if nA%20 == 0 {
			if ci, err := cons.Info(context.Background()); err == nil {
				maxAckPending = max(maxAckPending, ci.NumAckPending)
			}
		}
		if c.kill && !killed && time.Since(start) > c.outage/2 {
			replicas[0].kill()
			killed = true
		}
		time.Sleep(tick)
	}
	outageRequests := len(b.Requests())
	// Every result of A arrives while B is still down.
	await(t, "every result of A exported during B's outage", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(exported) >= nA
	})
	if got := testutil.ToFloat64(e.tm.Backoff.WithLabelValues("B")); got != 1 {
		t.Errorf("spanferry_tenant_backoff{tenant=B} = %v during the outage, want 1", got)
	}
	if got := testutil.ToFloat64(e.tm.Backoff.WithLabelValues("A")); got != 0 {
		t.Errorf("spanferry_tenant_backoff{tenant=A} = %v, want 0", got)
	}

	// B recovers.
	switch c.failure {
	case "refused":
		if err := b.Restart(); err != nil {
			t.Fatal(err)
		}
	case "hang":
		b.SetBehavior(nil)
		close(release)
	default:
		b.SetBehavior(nil)
	}
	await(t, "every result of B exported after recovery", func() bool { return len(acceptedIDs(b)) >= nB })
	await(t, "the durable consumer settled", func() bool { return e.consumerSettled(t, e.cfg.Stream, e.cfg.Durable) })
	await(t, "the park emptied", func() bool { return e.streamMsgs(t, consumer.DefaultParkStream) == 0 })

	var lat []time.Duration
	mu.Lock()
	for id, p := range published {
		lat = append(lat, exported[id].Sub(p))
	}
	mu.Unlock()
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	t.Logf("%s, %d replicas: A %d results, p50 %v p99 %v max %v; B %d results, %d requests to B during the outage, max ack pending %d",
		c.failure, c.replicas, nA, lat[len(lat)/2], p99, lat[len(lat)-1], nB, outageRequests, maxAckPending)
	if p99 > 2*time.Second {
		t.Errorf("A's p99 publish→export = %v during B's outage, want under 2s", p99)
	}
	if got := acceptedIDs(a); len(got) != nA {
		t.Errorf("A: %d distinct results exported, want %d", len(got), nA)
	}
	got := acceptedIDs(b)
	for i := range nB {
		if got[fmt.Sprintf("b-%d", i)] == 0 {
			t.Fatalf("B's result b-%d was lost", i)
		}
	}
	for id := range got {
		if !strings.HasPrefix(id, "b-") {
			t.Errorf("B received %s, another tenant's result", id)
		}
	}
	if n := e.streamMsgs(t, e.cfg.DLQStream); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	if maxAckPending >= isolationMaxAckPending {
		t.Errorf("the durable consumer's ack-pending set reached %d, its MaxAckPending", maxAckPending)
	}
	// Backoff: a few attempts per second, not one per result.
	if limit := int(c.outage.Seconds())*5*c.replicas + 10; outageRequests > limit {
		t.Errorf("B's receiver got %d requests during a %v outage, want at most %d", outageRequests, c.outage, limit)
	}
	if got := testutil.ToFloat64(e.tm.Backoff.WithLabelValues("B")); got != 0 {
		t.Errorf("spanferry_tenant_backoff{tenant=B} = %v after recovery, want 0", got)
	}
	if got := testutil.ToFloat64(e.tm.Parked.WithLabelValues("B")); got == 0 {
		t.Error("spanferry_tenant_parked_total{tenant=B} = 0, want B's results parked")
	}
	if got := testutil.ToFloat64(e.tm.Parked.WithLabelValues("A")); got != 0 {
		t.Errorf("spanferry_tenant_parked_total{tenant=A} = %v, want 0", got)
	}
	if got := testutil.ToFloat64(e.tm.Failures.WithLabelValues("B")); got == 0 {
		t.Error("spanferry_tenant_export_failures_total{tenant=B} = 0")
	}
	if c.failure == "401" {
		logs := e.logs.String()
		n := strings.Count(logs, "refuses its credentials")
		if n == 0 || n > 2*c.replicas || !strings.Contains(logs, `"tenant":"B"`) {
			t.Errorf("%d lines say B's credentials are refused, want one per replica (rate-limited) naming the tenant", n)
		}
	}
}
