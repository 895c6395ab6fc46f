package collector_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/collector"
	"github.com/spanferry/spanferry/internal/otlptest"
)

// TestExportOverOTLP sends a collector's spans through the real OTLP/HTTP
// exporter to a real receiver: one Export is one request holding every
// span, with ids, parents, times and attributes intact.
func TestExportOverOTLP(t *testing.T) {
	recv := otlptest.StartT(t)
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(recv.TracesURL()),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })

	res := resource.NewSchemaless(attribute.String("service.name", "checkout"))
	c := newCollector(t, exp, collector.WithResource(res))
	root := mustCreate(t, c, collector.Span{
		Name: "workflow", SpanID: trace.SpanID{0xa1, 2, 3, 4, 5, 6, 7, 8},
		Start: t0, End: t0.Add(2350 * time.Millisecond),
		Attributes: []attribute.KeyValue{attribute.String("traceloop.span.kind", "workflow"), attribute.Int64("n", 7)},
	})
	child := mustCreate(t, c, collector.Span{
		Name: "tool", Parent: root, Start: t0.Add(123456789), End: t0.Add(987654321),
		Status: sdktrace.Status{Code: codes.Error, Description: "boom"},
		Events: []sdktrace.Event{{Name: "exception", Time: t0.Add(987654321), Attributes: []attribute.KeyValue{attribute.String("exception.type", "E")}}},
	})
	// A routed span joins the same batch.
	tp := sdktrace.NewTracerProvider(collector.TracerProviderOptions(nil)...)
	_, routed := tp.Tracer("lib").Start(collector.ContextWithCollector(context.Background(), c), "routed")
	routed.End()

	if err := c.Export(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := recv.Requests()
	if len(reqs) != 1 || !reqs[0].Gzip {
		t.Fatalf("%d requests (gzip %v), want exactly one gzip request", len(reqs), len(reqs) > 0 && reqs[0].Gzip)
	}
	spans := recv.Spans()
	if len(spans) != 3 {
		t.Fatalf("receiver got %d spans, want 3", len(spans))
	}
	byName := map[string]otlptest.Span{}
	for _, s := range spans {
		byName[s.Name] = s
		if s.TraceID != traceA.String() {
			t.Errorf("%s: trace %s, want %s", s.Name, s.TraceID, traceA)
		}
	}
	w, tl := byName["workflow"], byName["tool"]
	if w.SpanID != root.SpanID().String() || w.ParentSpanID != "" {
		t.Errorf("workflow ids %s parent %q", w.SpanID, w.ParentSpanID)
	}
	if tl.SpanID != child.SpanID().String() || tl.ParentSpanID != root.SpanID().String() {
		t.Errorf("tool ids %s parent %s", tl.SpanID, tl.ParentSpanID)
	}
	if !w.Start.Equal(t0) || !w.End.Equal(t0.Add(2350*time.Millisecond)) || !tl.Start.Equal(t0.Add(123456789)) || !tl.End.Equal(t0.Add(987654321)) {
		t.Errorf("times: workflow %s..%s tool %s..%s", w.Start, w.End, tl.Start, tl.End)
	}
	if w.Attributes["traceloop.span.kind"] != "workflow" || w.Attributes["n"] != int64(7) || w.Resource["service.name"] != "checkout" {
		t.Errorf("attributes %v resource %v", w.Attributes, w.Resource)
	}
	if tl.StatusMessage != "boom" || len(tl.Events) != 1 || tl.Events[0].Attributes["exception.type"] != "E" {
		t.Errorf("tool status %q events %v", tl.StatusMessage, tl.Events)
	}
	if byName["routed"].Scope != "lib" {
		t.Errorf("routed span scope %q", byName["routed"].Scope)
	}
	if c.Len() != 0 {
		t.Errorf("%d spans left after an accepted export", c.Len())
	}
}

// TestExportOverOTLPKeepsSpansWhenRefused: a receiver answering 503 leaves
// every span queued for the next attempt.
func TestExportOverOTLPKeepsSpansWhenRefused(t *testing.T) {
	recv := otlptest.StartT(t)
	recv.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response { return otlptest.Response{Status: 503} })
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(recv.TracesURL()),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector(t, exp)
	mustCreate(t, c, collector.Span{Name: "a", Start: t0, End: t0})
	if err := c.Export(context.Background()); err == nil {
		t.Fatal("export to a 503 receiver succeeded")
	}
	if c.Len() != 1 {
		t.Fatalf("%d spans kept, want 1", c.Len())
	}
	recv.SetBehavior(nil)
	if err := c.Export(context.Background()); err != nil {
		t.Fatal(err)
	}
	if recv.SpanCount() != 1 || c.Len() != 0 {
		t.Fatalf("receiver has %d spans, %d left", recv.SpanCount(), c.Len())
	}
}
