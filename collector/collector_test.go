package collector_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanferry/spanferry/collector"
)

var (
	traceA = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	traceB = trace.TraceID{0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	t0     = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
)

// recordingExporter is a SpanExporter that keeps every call, and fails while
// err is set. The wire itself is tested in otlp_test.go against a real
// OTLP/HTTP receiver.
type recordingExporter struct {
	mu    sync.Mutex
	calls [][]sdktrace.ReadOnlySpan
	err   error
	// entered and block, when set, make ExportSpans signal that it has
	// been called and then wait to be released.
	entered, block chan struct{}
}

func (e *recordingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.entered != nil {
		e.entered <- struct{}{}
		<-e.block
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, spans)
	return e.err
}

func (e *recordingExporter) Shutdown(context.Context) error { return nil }

func (e *recordingExporter) setErr(err error) {
	e.mu.Lock()
	e.err = err
	e.mu.Unlock()
}

func (e *recordingExporter) numCalls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.calls)
}

func newCollector(t *testing.T, exp sdktrace.SpanExporter, opts ...collector.Option) *collector.Collector {
	t.Helper()
	c, err := collector.New(traceA, exp, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustCreate(t *testing.T, c *collector.Collector, s collector.Span) trace.SpanContext {
	t.Helper()
	sc, err := c.CreateSpan(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestCreateSpanRecordsEverything(t *testing.T) {
	res := resource.NewSchemaless(attribute.String("service.name", "checkout"))
	c := newCollector(t, nil, collector.WithResource(res))
	root := mustCreate(t, c, collector.Span{
		Name: "workflow", SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		Start: t0, End: t0.Add(2 * time.Second),
		Attributes: []attribute.KeyValue{attribute.String("k", "v")},
	})
	ev := sdktrace.Event{Name: "exception", Time: t0.Add(time.Second), Attributes: []attribute.KeyValue{attribute.String("exception.type", "E")}}
	child := mustCreate(t, c, collector.Span{
		Name: "step", Parent: root, Start: t0.Add(time.Millisecond), End: t0.Add(time.Second),
		Status: sdktrace.Status{Code: codes.Error, Description: "boom"}, Events: []sdktrace.Event{ev},
	})

	if root.TraceID() != traceA || child.TraceID() != traceA {
		t.Fatalf("trace ids %s %s, want %s", root.TraceID(), child.TraceID(), traceA)
	}
	if root.SpanID() != (trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("explicit span id not kept: %s", root.SpanID())
	}
	if !child.SpanID().IsValid() || child.SpanID() == root.SpanID() {
		t.Fatalf("generated span id %s", child.SpanID())
	}
	spans := c.Spans()
	if len(spans) != 2 || c.Len() != 2 {
		t.Fatalf("got %d spans (Len %d), want 2", len(spans), c.Len())
	}
	r, s := spans[0], spans[1]
	if r.Name() != "workflow" || s.Name() != "step" {
		t.Fatalf("order/names: %q %q", r.Name(), s.Name())
	}
	if r.Parent().IsValid() {
		t.Fatalf("root has parent %v", r.Parent())
	}
	if s.Parent().SpanID() != root.SpanID() {
		t.Fatalf("child parent %s, want %s", s.Parent().SpanID(), root.SpanID())
	}
	if !r.StartTime().Equal(t0) || !r.EndTime().Equal(t0.Add(2*time.Second)) {
		t.Fatalf("root times %s..%s", r.StartTime(), r.EndTime())
	}
	if r.SpanKind() != trace.SpanKindInternal {
		t.Fatalf("kind %v, want internal", r.SpanKind())
	}
	if got := r.Attributes(); len(got) != 1 || got[0] != attribute.String("k", "v") {
		t.Fatalf("attributes %v", got)
	}
	if s.Status().Code != codes.Error || s.Status().Description != "boom" {
		t.Fatalf("status %+v", s.Status())
	}
	if len(s.Events()) != 1 || s.Events()[0].Name != "exception" || !s.Events()[0].Time.Equal(ev.Time) {
		t.Fatalf("events %+v", s.Events())
	}
	if r.Resource() != res {
		t.Fatalf("resource %v", r.Resource())
	}
	if r.InstrumentationScope().Name != collector.ScopeName {
		t.Fatalf("scope %q", r.InstrumentationScope().Name)
	}
}

func TestCreateSpanErrors(t *testing.T) {
	c := newCollector(t, nil)
	foreign := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceB, SpanID: trace.SpanID{9}})
	if _, err := c.CreateSpan(collector.Span{Name: "x", Parent: foreign, Start: t0, End: t0}); !errors.Is(err, collector.ErrForeignParent) {
		t.Errorf("foreign parent: err = %v", err)
	}
	if _, err := c.CreateSpan(collector.Span{Name: "x", Start: t0, End: t0.Add(-time.Nanosecond)}); !errors.Is(err, collector.ErrInvalidTimes) {
		t.Errorf("end before start: err = %v", err)
	}
	if c.Len() != 0 {
		t.Fatalf("refused spans were kept: %d", c.Len())
	}
	if _, err := collector.New(trace.TraceID{}, nil); !errors.Is(err, collector.ErrInvalidTraceID) {
		t.Errorf("zero trace id: err = %v", err)
	}
	if _, err := collector.New(traceA, nil, collector.WithResource(nil)); !errors.Is(err, collector.ErrInvalidOption) {
		t.Errorf("nil resource: err = %v", err)
	}
	if err := c.Export(context.Background()); !errors.Is(err, collector.ErrNoExporter) {
		t.Errorf("export without exporter: err = %v", err)
	}
}

func TestExportSendsOneBatchAndClearsOnSuccess(t *testing.T) {
	exp := &recordingExporter{}
	c := newCollector(t, exp)
	if err := c.Export(context.Background()); err != nil {
		t.Fatal(err)
	}
	if exp.numCalls() != 0 {
		t.Fatalf("empty collector made %d export calls", exp.numCalls())
	}
	for i := range 5 {
		mustCreate(t, c, collector.Span{Name: "s", Start: t0, End: t0.Add(time.Duration(i))})
	}
	if err := c.Export(context.Background()); err != nil {
		t.Fatal(err)
	}
	if exp.numCalls() != 1 || len(exp.calls[0]) != 5 {
		t.Fatalf("calls %d, want 1 call with 5 spans", exp.numCalls())
	}
	if c.Len() != 0 {
		t.Fatalf("%d spans left after a successful export", c.Len())
	}
}

func TestExportKeepsSpansOnFailure(t *testing.T) {
	exp := &recordingExporter{err: errors.New("503")}
	c := newCollector(t, exp)
	mustCreate(t, c, collector.Span{Name: "a", Start: t0, End: t0})
	mustCreate(t, c, collector.Span{Name: "b", Start: t0, End: t0})
	err := c.Export(context.Background())
	if err == nil || !errors.Is(err, exp.err) {
		t.Fatalf("err = %v, want the exporter's error wrapped", err)
	}
	if c.Len() != 2 {
		t.Fatalf("failed export dropped spans: %d left", c.Len())
	}
	exp.setErr(nil)
	if err := c.Export(context.Background()); err != nil {
		t.Fatal(err)
	}
	if exp.numCalls() != 2 || len(exp.calls[1]) != 2 || c.Len() != 0 {
		t.Fatalf("retry: calls %d, left %d", exp.numCalls(), c.Len())
	}
}

func TestExportKeepsSpansAddedMeanwhile(t *testing.T) {
	exp := &recordingExporter{entered: make(chan struct{}), block: make(chan struct{})}
	c := newCollector(t, exp)
	mustCreate(t, c, collector.Span{Name: "first", Start: t0, End: t0})
	done := make(chan error)
	go func() { done <- c.Export(context.Background()) }()
	<-exp.entered // the export has taken its snapshot
	mustCreate(t, c, collector.Span{Name: "late", Start: t0, End: t0})
	close(exp.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := names(exp.calls[0]); len(n) != 1 || n[0] != "first" {
		t.Fatalf("exported %v, want [first]", n)
	}
	if n := names(c.Spans()); len(n) != 1 || n[0] != "late" {
		t.Fatalf("kept %v, want [late]", n)
	}
}

func TestClearDuringExportIsNotUndone(t *testing.T) {
	exp := &recordingExporter{entered: make(chan struct{}), block: make(chan struct{})}
	c := newCollector(t, exp)
	mustCreate(t, c, collector.Span{Name: "a", Start: t0, End: t0})
	done := make(chan error)
	go func() { done <- c.Export(context.Background()) }()
	<-exp.entered
	c.Clear()
	mustCreate(t, c, collector.Span{Name: "b", Start: t0, End: t0})
	close(exp.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := names(c.Spans()); len(n) != 1 || n[0] != "b" {
		t.Fatalf("kept %v, want [b]: the export must not remove spans added after a Clear", n)
	}
}

func TestClearAndTake(t *testing.T) {
	c := newCollector(t, nil)
	mustCreate(t, c, collector.Span{Name: "a", Start: t0, End: t0})
	mustCreate(t, c, collector.Span{Name: "b", Start: t0, End: t0})
	if n := c.Clear(); n != 2 || c.Len() != 0 {
		t.Fatalf("Clear = %d, Len = %d", n, c.Len())
	}
	mustCreate(t, c, collector.Span{Name: "c", Start: t0, End: t0})
	got := c.Take()
	if len(got) != 1 || got[0].Name() != "c" || c.Len() != 0 {
		t.Fatalf("Take = %v, Len = %d", got, c.Len())
	}
}

func TestCloseReportsDiscardedSpans(t *testing.T) {
	var reported []int
	c := newCollector(t, nil, collector.WithDiscardHandler(func(n int) { reported = append(reported, n) }))
	mustCreate(t, c, collector.Span{Name: "a", Start: t0, End: t0})
	mustCreate(t, c, collector.Span{Name: "b", Start: t0, End: t0})
	if n := c.Close(); n != 2 {
		t.Fatalf("Close = %d, want 2", n)
	}
	if n := c.Close(); n != 0 {
		t.Fatalf("second Close = %d, want 0", n)
	}
	if _, err := c.CreateSpan(collector.Span{Name: "late", Start: t0, End: t0}); !errors.Is(err, collector.ErrClosed) {
		t.Fatalf("CreateSpan after Close: %v", err)
	}
	if len(reported) != 2 || reported[0] != 2 || reported[1] != 1 {
		t.Fatalf("reported %v, want [2 1]", reported)
	}
}

type errorHandler func(error)

func (h errorHandler) Handle(err error) { h(err) }

func TestCloseDefaultsToTheOTelErrorHandler(t *testing.T) {
	var got []error
	otel.SetErrorHandler(errorHandler(func(err error) { got = append(got, err) }))
	t.Cleanup(func() { otel.SetErrorHandler(errorHandler(func(error) {})) })

	c := newCollector(t, nil)
	mustCreate(t, c, collector.Span{Name: "a", Start: t0, End: t0})
	c.Close()
	if len(got) != 1 || !errors.Is(got[0], collector.ErrDiscarded) {
		t.Fatalf("errors handled: %v", got)
	}
	// An empty collector closes without a report.
	newCollector(t, nil).Close()
	if len(got) != 1 {
		t.Fatalf("empty Close reported: %v", got)
	}
}

// newProvider returns a tracer provider routing into collectors, with a
// normal chain that records into the returned in-memory exporter.
func newProvider(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	chain := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(collector.TracerProviderOptions(sdktrace.NewSimpleSpanProcessor(chain))...)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, chain
}

func TestRoutingSendsCollectorSpansToTheCollector(t *testing.T) {
	tp, chain := newProvider(t)
	tr := tp.Tracer("test")
	c := newCollector(t, nil)
	ctx := collector.ContextWithCollector(context.Background(), c)

	ctx1, parent := tr.Start(ctx, "parent")
	_, child := tr.Start(ctx1, "child")
	child.End()
	parent.End()
	_, plain := tr.Start(context.Background(), "plain")
	plain.End()

	spans := c.Spans()
	if len(spans) != 2 || spans[0].Name() != "child" || spans[1].Name() != "parent" {
		t.Fatalf("collector spans %v", names(spans))
	}
	for _, s := range spans {
		if s.SpanContext().TraceID() != traceA {
			t.Fatalf("%s has trace %s, want the collector's %s", s.Name(), s.SpanContext().TraceID(), traceA)
		}
	}
	if spans[0].Parent().SpanID() != spans[1].SpanContext().SpanID() {
		t.Fatal("child is not under parent")
	}
	if spans[1].Parent().IsValid() {
		t.Fatal("parent should be a root span")
	}
	got := chain.GetSpans()
	if len(got) != 1 || got[0].Name != "plain" {
		t.Fatalf("chain got %v, want only plain", got)
	}
	if got[0].SpanContext.TraceID() == traceA {
		t.Fatal("a span outside the collector took its trace id")
	}
}

func TestRoutingInnermostCollectorWins(t *testing.T) {
	tp, chain := newProvider(t)
	tr := tp.Tracer("test")
	outer := newCollector(t, nil)
	inner, err := collector.New(traceB, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := collector.ContextWithCollector(context.Background(), outer)
	ctx, o := tr.Start(ctx, "outer-span")
	innerCtx := collector.ContextWithCollector(ctx, inner)
	_, i := tr.Start(innerCtx, "inner-span")
	i.End()
	o.End()

	if n := names(inner.Spans()); len(n) != 1 || n[0] != "inner-span" {
		t.Fatalf("inner got %v", n)
	}
	if n := names(outer.Spans()); len(n) != 1 || n[0] != "outer-span" {
		t.Fatalf("outer got %v (double capture?)", n)
	}
	s := inner.Spans()[0]
	if s.SpanContext().TraceID() != traceB || s.Parent().IsValid() {
		t.Fatalf("inner span trace %s parent %v: want a root of the inner trace", s.SpanContext().TraceID(), s.Parent())
	}
	if len(chain.GetSpans()) != 0 {
		t.Fatalf("chain got %d spans", len(chain.GetSpans()))
	}
}

func TestRoutingAfterCloseDiscardsVisibly(t *testing.T) {
	tp, chain := newProvider(t)
	var reported int
	c := newCollector(t, nil, collector.WithDiscardHandler(func(n int) { reported += n }))
	_, s := tp.Tracer("test").Start(collector.ContextWithCollector(context.Background(), c), "late")
	c.Close()
	s.End()
	if reported != 1 || len(chain.GetSpans()) != 0 {
		t.Fatalf("reported %d, chain %d: a span ending after Close must be reported, not leaked", reported, len(chain.GetSpans()))
	}
}

func TestConcurrentUse(t *testing.T) {
	tp, chain := newProvider(t)
	tr := tp.Tracer("test")
	exp := &recordingExporter{}
	c := newCollector(t, exp)
	ctx := collector.ContextWithCollector(context.Background(), c)

	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if (w+i)%2 == 0 {
					mustCreate(t, c, collector.Span{Name: "created", Start: t0, End: t0})
				} else {
					_, s := tr.Start(ctx, "routed")
					s.End()
				}
			}
		}()
	}
	stop := make(chan struct{})
	var inspector sync.WaitGroup
	inspector.Add(1)
	go func() {
		defer inspector.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = c.Spans()
				_ = c.Len()
				if err := c.Export(context.Background()); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	inspector.Wait()
	if err := c.Export(context.Background()); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, call := range exp.calls {
		total += len(call)
	}
	if total != workers*each || c.Len() != 0 {
		t.Fatalf("exported %d spans, %d left, want %d exported exactly once", total, c.Len(), workers*each)
	}
	if len(chain.GetSpans()) != 0 {
		t.Fatalf("chain got %d spans", len(chain.GetSpans()))
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name()
	}
	return out
}
