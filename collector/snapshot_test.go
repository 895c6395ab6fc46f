package collector_test

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanferry/spanferry/collector"
)

// sameSpan fails unless every method of got returns what want's does.
func sameSpan(t *testing.T, got, want sdktrace.ReadOnlySpan) {
	t.Helper()
	if got.Name() != want.Name() {
		t.Errorf("Name %q, want %q", got.Name(), want.Name())
	}
	if !got.SpanContext().Equal(want.SpanContext()) || got.SpanContext().IsRemote() != want.SpanContext().IsRemote() {
		t.Errorf("SpanContext %v, want %v", got.SpanContext(), want.SpanContext())
	}
	if !got.Parent().Equal(want.Parent()) || got.Parent().IsRemote() != want.Parent().IsRemote() {
		t.Errorf("Parent %v, want %v", got.Parent(), want.Parent())
	}
	if got.SpanKind() != want.SpanKind() {
		t.Errorf("SpanKind %v, want %v", got.SpanKind(), want.SpanKind())
	}
	if !got.StartTime().Equal(want.StartTime()) || !got.EndTime().Equal(want.EndTime()) {
		t.Errorf("times %v–%v, want %v–%v", got.StartTime(), got.EndTime(), want.StartTime(), want.EndTime())
	}
	if ga, wa := attribute.NewSet(got.Attributes()...), attribute.NewSet(want.Attributes()...); !ga.Equals(&wa) || len(got.Attributes()) != len(want.Attributes()) {
		t.Errorf("Attributes %v, want %v", got.Attributes(), want.Attributes())
	}
	if len(got.Events()) != len(want.Events()) || len(got.Links()) != len(want.Links()) {
		t.Errorf("%d events, %d links, want %d, %d", len(got.Events()), len(got.Links()), len(want.Events()), len(want.Links()))
	}
	for i := range min(len(got.Events()), len(want.Events())) {
		if g, w := got.Events()[i], want.Events()[i]; g.Name != w.Name || !g.Time.Equal(w.Time) || len(g.Attributes) != len(w.Attributes) {
			t.Errorf("event %d %+v, want %+v", i, g, w)
		}
	}
	for i := range min(len(got.Links()), len(want.Links())) {
		if g, w := got.Links()[i], want.Links()[i]; !g.SpanContext.Equal(w.SpanContext) || len(g.Attributes) != len(w.Attributes) {
			t.Errorf("link %d %+v, want %+v", i, g, w)
		}
	}
	if got.Status() != want.Status() {
		t.Errorf("Status %v, want %v", got.Status(), want.Status())
	}
	if got.DroppedAttributes() != want.DroppedAttributes() || got.DroppedEvents() != want.DroppedEvents() ||
		got.DroppedLinks() != want.DroppedLinks() || got.ChildSpanCount() != want.ChildSpanCount() {
		t.Errorf("dropped %d/%d/%d, children %d; want %d/%d/%d, %d",
			got.DroppedAttributes(), got.DroppedEvents(), got.DroppedLinks(), got.ChildSpanCount(),
			want.DroppedAttributes(), want.DroppedEvents(), want.DroppedLinks(), want.ChildSpanCount())
	}
	if got.Resource() != want.Resource() {
		t.Errorf("Resource %v, want %v", got.Resource(), want.Resource())
	}
	if got.InstrumentationScope() != want.InstrumentationScope() {
		t.Errorf("InstrumentationScope %v, want %v", got.InstrumentationScope(), want.InstrumentationScope())
	}
	if got.InstrumentationLibrary() != want.InstrumentationLibrary() { //nolint:staticcheck // part of ReadOnlySpan
		t.Errorf("InstrumentationLibrary %v, want %v", got.InstrumentationLibrary(), want.InstrumentationLibrary()) //nolint:staticcheck // part of ReadOnlySpan
	}
}

// stubOf is what CreateSpan recorded before its spans were cut from a slab:
// tracetest.SpanStub's snapshot of the same span, the reference.
func stubOf(s collector.Span, sc trace.SpanContext, res *resource.Resource, scope instrumentation.Scope) sdktrace.ReadOnlySpan {
	kind := s.Kind
	if kind == trace.SpanKindUnspecified {
		kind = trace.SpanKindInternal
	}
	return tracetest.SpanStub{
		Name: s.Name, SpanContext: sc, Parent: s.Parent, SpanKind: kind,
		StartTime: s.Start, EndTime: s.End, Attributes: s.Attributes, Events: s.Events, Links: s.Links,
		Status: s.Status, Resource: res, InstrumentationScope: scope,
	}.Snapshot()
}

// TestSnapshotMatchesSpanStub holds CreateSpan's spans to
// tracetest.SpanStub's snapshot, method for method, at every capacity (the
// slab exactly used, exceeded, unknown), and checks that a span already
// taken is not changed by the ones made after it.
func TestSnapshotMatchesSpanStub(t *testing.T) {
	res := resource.NewSchemaless(attribute.String("service.name", "svc"))
	scope := instrumentation.Scope{Name: "scope", Version: "v1", SchemaURL: "https://example.com/schema"}
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceA, SpanID: trace.SpanID{9, 9}, Remote: true, TraceFlags: trace.FlagsSampled})
	for _, capacity := range []int{0, 1, 3, 200} {
		c, err := collector.New(traceA, nil, collector.WithResource(res), collector.WithScope(scope), collector.WithCapacity(capacity))
		if err != nil {
			t.Fatal(err)
		}
		var want []sdktrace.ReadOnlySpan
		var taken []sdktrace.ReadOnlySpan
		for i := range 150 {
			s := collector.Span{
				Name:       "span " + string(rune('a'+i%26)),
				SpanID:     trace.SpanID{byte(i + 1), 2, 3},
				Kind:       trace.SpanKind(i % 6),
				Start:      t0.Add(time.Duration(i) * time.Millisecond),
				End:        t0.Add(time.Duration(2*i) * time.Millisecond),
				Attributes: []attribute.KeyValue{attribute.Int("i", i), attribute.String("s", "x")},
				Status:     sdktrace.Status{Code: codes.Code(i % 3), Description: "d"},
			}
			if i%2 == 1 {
				s.Parent = remote
				s.Events = []sdktrace.Event{{Name: "e", Time: t0, Attributes: []attribute.KeyValue{attribute.Bool("b", true)}}}
				s.Links = []sdktrace.Link{{SpanContext: remote}}
			}
			sc, err := c.CreateSpan(s)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, stubOf(s, sc, res, scope))
			if i%40 == 39 {
				taken = append(taken, c.Take()...)
			}
		}
		taken = append(taken, c.Take()...)
		if len(taken) != len(want) {
			t.Fatalf("capacity %d: %d spans, want %d", capacity, len(taken), len(want))
		}
		for i := range want {
			sameSpan(t, taken[i], want[i])
		}
	}
}

// FuzzSnapshot compares CreateSpan's span with tracetest.SpanStub's
// snapshot of the same input.
func FuzzSnapshot(f *testing.F) {
	f.Add("root", uint8(1), int64(0), int64(5), "k", "v", uint8(0), "", false, 3)
	f.Add("", uint8(0), int64(-5), int64(5), "", "", uint8(2), "boom", true, 0)
	f.Fuzz(func(t *testing.T, name string, kind uint8, start, end int64, key, value string, code uint8, desc string, parent bool, capacity int) {
		if end < start || capacity < 0 || capacity > 1000 {
			t.Skip()
		}
		scope := instrumentation.Scope{Name: name + "scope"}
		c, err := collector.New(traceB, nil, collector.WithScope(scope), collector.WithCapacity(capacity))
		if err != nil {
			t.Fatal(err)
		}
		s := collector.Span{
			Name: name, Kind: trace.SpanKind(kind % 7),
			Start: time.Unix(0, start), End: time.Unix(0, end),
			Attributes: []attribute.KeyValue{attribute.String(key, value)},
			Status:     sdktrace.Status{Code: codes.Code(code % 3), Description: desc},
		}
		if parent {
			s.Parent = trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceB, SpanID: trace.SpanID{1}, Remote: true})
		}
		var want []sdktrace.ReadOnlySpan
		for range 3 {
			sc, err := c.CreateSpan(s)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, stubOf(s, sc, resource.Default(), scope))
		}
		got := c.Take()
		for i := range want {
			sameSpan(t, got[i], want[i])
		}
	})
}
