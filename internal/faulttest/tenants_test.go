package faulttest

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/internal/otlptest"
)

// TestTenantOutageReplicaKilled: two workers with a tenants file share the
// durable consumer (MaxAckPending 300). Tenant B's destination answers 503
// while A and B publish steadily, B's held results passing MaxAckPending
// many times over, and one worker is killed (-9) halfway through. Every
// result of A must be exported meanwhile at its usual latency (except those
// the killed worker held, which come back after AckWait), every result of
// B once its destination is back, nothing dead-lettered, nothing lost.
func TestTenantOutageReplicaKilled(t *testing.T) {
	outage := size(6*time.Second, 30*time.Second)
	const ackWait = 5 * time.Second
	s := startNATS(t)
	a, b := newSink(t), newSink(t)
	s.createStream()
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	err := os.WriteFile(file, fmt.Appendf(nil, "tenants:\n  A:\n    endpoint: %s\n  B:\n    endpoint: %s\n", a.recv.TracesURL(), b.recv.TracesURL()), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	b.setAnswer(func(*coltracepb.ExportTraceServiceRequest, string) otlptest.Response {
		return otlptest.Response{Status: http.StatusServiceUnavailable}
	})
	extra := map[string]string{
		"WORKER_TENANTS_FILE":    file,
		"WORKER_MAX_ACK_PENDING": "300",
		"WORKER_BATCH_SIZE":      "50",
		"WORKER_ACK_WAIT":        ackWait.String(),
	}
	// The worker's own destination (default) is A's sink: no result here
	// follows default, and check would count one as never published.
	w1 := startWorker(t, s, a, "w1", extra)
	w2 := startWorker(t, s, a, "w2", extra)

	// Publish 10 results of A and 50 of B every 50 ms for the outage.
	wantA, wantB := map[string]expect{}, map[string]expect{}
	var mu sync.Mutex
	publishedA := map[string]time.Time{}
	start := time.Now()
	var killed time.Time
	for round := 0; time.Since(start) < outage; round++ {
		var msgs []message
		for i := range 60 {
			org, want := "A", wantA
			if i >= 10 {
				org, want = "B", wantB
			}
			id := fmt.Sprintf("%s-%04d-%02d", org, round, i)
			m, e := goodResult(id, round*60+i)
			m.body = bytes.Replace(m.body, []byte(`{"version":1,`), fmt.Appendf(nil, `{"version":1,"organization":%q,`, org), 1)
			msgs = append(msgs, m)
			want[id] = e
		}
		now := time.Now()
		mu.Lock()
		for _, m := range msgs[:10] {
			publishedA[m.id] = now
		}
		mu.Unlock()
		s.publish(msgs)
		if killed.IsZero() && time.Since(start) > outage/2 {
			w1.kill9(t)
			killed = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.awaitAll(t, wantA, time.Minute)
	aDone := time.Now()
	if got := w2.metrics(t)[`spanferry_tenant_backoff{tenant="B"}`]; got != 1 {
		t.Errorf("w2: spanferry_tenant_backoff{tenant=B} = %v during the outage, want 1", got)
	}
	if !w2.ready() {
		t.Error("w2 not ready while only tenant B is backed off")
	}
	b.setAnswer(nil)
	recovered := time.Now()
	b.awaitAll(t, wantB, 2*time.Minute)
	bDone := time.Now()
	s.awaitSettled(time.Minute)
	ca, cb := a.check(t, wantA), b.check(t, wantB)
	if dl := s.streamMsgs(dlqStream); dl != 0 {
		t.Errorf("%d dead letters, want none", dl)
	}
	await(t, time.Minute, "the park emptied", func() bool { return s.streamMsgs("SPANFERRY_PARK") == 0 })

	// A's latency, apart from what the killed worker held: those wait for
	// AckWait, as any result a dead worker held does (CONTRACT §3).
	var lat []time.Duration
	var nearKill time.Duration
	for id, p := range publishedA {
		d, ok := a.get(id)
		if !ok {
			continue // reported by check
		}
		l := d.first.Sub(p)
		// The victim held results published shortly before its death;
		// later ones only the survivor fetches.
		if p.After(killed.Add(-2*time.Second)) && p.Before(killed.Add(500*time.Millisecond)) {
			nearKill = max(nearKill, l)
			continue
		}
		lat = append(lat, l)
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	if p99 > 2*time.Second {
		t.Errorf("A's p99 publish→export = %v during B's outage, want under 2s", p99)
	}
	if nearKill > ackWait+10*time.Second {
		t.Errorf("A's results around the kill took up to %v, want about AckWait (%v)", nearKill, ackWait)
	}
	requestsB, _ := b.counts()
	report(t, "outage %s, 2 workers (w1 killed -9 %s in), MaxAckPending 300: A %s, p50 %s p99 %s (%d results away from the kill), at most %s around the kill; B %s, all exported %s after recovery; %d requests reached B; all of A in %s",
		outage, killed.Sub(start).Round(time.Millisecond), ca, p50.Round(time.Millisecond), p99.Round(time.Millisecond), len(lat), nearKill.Round(time.Millisecond),
		cb, bDone.Sub(recovered).Round(time.Millisecond), requestsB, aDone.Sub(start).Round(time.Millisecond))
}
