package consumer

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/mapping"
)

// TestParkedCopy checks the move of a result to the park: the copy's id
// makes a repeated move a duplicate JetStream drops (the original
// redelivered after a crash between the PubAck and the ack), and a
// delivery of the copy is seen as the original: its subject, headers,
// stream, sequence and stored time, so it maps to the same spans.
func TestParkedCopy(t *testing.T) {
	srv := natstest.Start(t)
	ctx := context.Background()
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Stream: "WORKFLOW_RESULTS", Subjects: []string{"workflows.results.>"}, Durable: "spanferry",
		CreateStream: true, DLQSubject: "workflows.dlq", BatchSize: 10, BatchWait: 10 * time.Millisecond,
		AckWait: 5 * time.Second, Concurrency: 1,
	}
	c, err := New(srv.JS, m, nil, cfg, WithTenants(NewTenants(TenantTable{Tenants: map[string]TenantRoute{"acme.corp": {}}}, true, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cons, err := c.bind(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.bindPark(ctx); err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg("workflows.results.x")
	msg.Data = []byte(`{"id":"r1","name":"wf","organization":"acme.corp"}`) // no times: it ends when stored
	msg.Header.Set(jetstream.MsgIDHeader, "r1")
	msg.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if _, err := srv.JS.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	orig := fetchOne(t, cons)
	it := item{msg: orig, org: "acme.corp"}
	origCol, _, err := c.mapOne(orig)
	if err != nil {
		t.Fatal(err)
	}
	origSpans := origCol.Take()
	for i := range 2 {
		pm, err := c.parkMsg("acme.corp", it)
		if err != nil {
			t.Fatal(err)
		}
		if pm.Subject != "spanferry.park.spanferry.t.acme%2Ecorp" {
			t.Errorf("park subject %q", pm.Subject)
		}
		ack, err := srv.JS.PublishMsg(ctx, pm)
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate != (i == 1) {
			t.Errorf("move %d: duplicate = %v", i+1, ack.Duplicate)
		}
	}
	pcons, err := c.parkConsumer(ctx, "acme.corp")
	if err != nil {
		t.Fatal(err)
	}
	p := parked(fetchOne(t, pcons))
	om, _ := orig.Metadata()
	pmeta, err := p.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case p.Subject() != orig.Subject():
		t.Errorf("subject %q, want %q", p.Subject(), orig.Subject())
	case pmeta.Stream != om.Stream || pmeta.Sequence.Stream != om.Sequence.Stream || !pmeta.Timestamp.Equal(om.Timestamp):
		t.Errorf("metadata %s/%d at %v, want %s/%d at %v", pmeta.Stream, pmeta.Sequence.Stream, pmeta.Timestamp, om.Stream, om.Sequence.Stream, om.Timestamp)
	case p.Headers().Get(jetstream.MsgIDHeader) != "r1" || p.Headers().Get(HeaderTenant) != "acme.corp" || p.Headers().Get("traceparent") == "":
		t.Errorf("headers %v: want the original's and the tenant", p.Headers())
	case p.Headers().Get(headerParkStored) != "" || p.Headers().Get(HeaderStreamSeq) != "":
		t.Errorf("headers %v: the park's own headers must not show", p.Headers())
	}
	parkedCol, org, err := c.mapOne(p)
	if err != nil || org != "acme.corp" {
		t.Fatalf("mapOne(parked) = org %q, %v", org, err)
	}
	parkedSpans := parkedCol.Take()
	if len(parkedSpans) != len(origSpans) {
		t.Fatalf("%d spans from the parked copy, %d from the original", len(parkedSpans), len(origSpans))
	}
	for i := range origSpans {
		o, q := origSpans[i], parkedSpans[i]
		if !o.SpanContext().Equal(q.SpanContext()) || !o.Parent().Equal(q.Parent()) || !o.EndTime().Equal(q.EndTime()) || !o.StartTime().Equal(q.StartTime()) {
			t.Errorf("span %d differs: %v–%v %v, want %v–%v %v", i, q.StartTime(), q.EndTime(), q.SpanContext(), o.StartTime(), o.EndTime(), o.SpanContext())
		}
	}
}

func fetchOne(t *testing.T, cons jetstream.Consumer) jetstream.Msg {
	t.Helper()
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		return m
	}
	t.Fatalf("no message: %v", batch.Error())
	return nil
}

func TestTenantVerdict(t *testing.T) {
	failed := errors.New("export failed")
	for status, want := range map[int]verdict{
		0: transient, http.StatusUnauthorized: transient, http.StatusForbidden: transient,
		http.StatusRequestTimeout: transient, http.StatusTooManyRequests: transient, 503: transient,
		http.StatusBadRequest: rejected, http.StatusRequestEntityTooLarge: rejected,
	} {
		if got := tenantVerdict(failed, &attempt{status: status}); got != want {
			t.Errorf("status %d: verdict %d, want %d", status, got, want)
		}
	}
	if got := tenantVerdict(nil, &attempt{status: 200}); got != exported {
		t.Errorf("200: verdict %d", got)
	}
}

func TestSubjectToken(t *testing.T) {
	for name, want := range map[string]string{
		"acme": "acme", "a.b": "a%2Eb", "a%2Eb": "a%252Eb", "x y*>": "x%20y%2A%3E", "Ünï": "%C3%9Cn%C3%AF", "a_b-1": "a_b-1",
	} {
		if got := subjectToken(name); got != want {
			t.Errorf("subjectToken(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestStrandedParkIsReported checks that a worker without tenants warns
// of results parked by an earlier run with them.
func TestStrandedParkIsReported(t *testing.T) {
	srv := natstest.Start(t)
	ctx := context.Background()
	if _, err := srv.JS.CreateStream(ctx, jetstream.StreamConfig{Name: DefaultParkStream, Subjects: []string{"spanferry.park.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.JS.Publish(ctx, "spanferry.park.spanferry.t.acme", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	m, _ := mapping.New()
	c, err := New(srv.JS, m, nil, Config{Stream: "S", Durable: "spanferry", DLQSubject: "d", BatchSize: 1, BatchWait: time.Millisecond, AckWait: time.Second, Concurrency: 1},
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.bindPark(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "parked=1") {
		t.Errorf("no warning of the parked result: %q", logs.String())
	}
}
