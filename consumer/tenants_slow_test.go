package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/otlptest"
)

// TestSlowTenantDoesNotCapOthers checks that a tenant whose destination
// is slow but working (it answers before WORKER_TENANT_PARK_AFTER) does
// not hold the fetch slots of the batches its results are in: another
// tenant's results keep flowing while its requests are outstanding.
// B's destination answers only once A's has every result of A (or after
// 4 s, under the 5 s park-after): with the slots held by B's requests, A
// would stall until then.
func TestSlowTenantDoesNotCapOthers(t *testing.T) {
	cfg := tenantConfig(0)
	cfg.BatchSize = 10
	e := newTenantEnv(t, []string{"A", "B"}, false, cfg)
	const nA = 300
	var mu sync.Mutex
	var released []bool // per request of B: whether A had everything by then
	e.recv["B"].SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
		deadline := time.Now().Add(4 * time.Second)
		all := false
		for !all && time.Now().Before(deadline) {
			if all = len(acceptedIDs(e.recv["A"])) >= nA; !all {
				time.Sleep(10 * time.Millisecond)
			}
		}
		mu.Lock()
		released = append(released, all)
		mu.Unlock()
		return otlptest.Response{}
	})
	if _, err := e.srv.JS.CreateStream(context.Background(), jetstream.StreamConfig{Name: cfg.Stream, Subjects: cfg.Subjects}); err != nil {
		t.Fatal(err)
	}
	// Two results of B, one per Concurrency slot, in batches with A's.
	for i := range nA {
		e.publishAsync(t, fmt.Sprintf("a-%d", i), "A")
		if i == 25 || i == 145 {
			e.publishAsync(t, fmt.Sprintf("b-%d", i), "B")
		}
	}
	e.publishWait(t)
	e.startReplica(t)
	await(t, "B's results exported", func() bool { return len(acceptedIDs(e.recv["B"])) == 2 })
	await(t, "A's results exported", func() bool { return len(acceptedIDs(e.recv["A"])) == nA })
	mu.Lock()
	defer mu.Unlock()
	for i, ok := range released {
		if !ok {
			t.Errorf("B's request %d of %d was answered before A had all its results: B's slow requests held every fetch slot", i+1, len(released))
		}
	}
	if n := e.streamMsgs(t, consumer.DefaultParkStream); n != 0 {
		t.Errorf("%d results parked, want none: B is slow, not failing", n)
	}
}
