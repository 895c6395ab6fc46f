package collector_test

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanferry/spanferry/collector"
)

// printExporter stands in for an OTLP exporter in these examples so that
// their output can be checked; any sdktrace.SpanExporter works.
type printExporter struct{}

func (printExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	fmt.Printf("export: %d spans in one call\n", len(spans))
	for _, s := range spans {
		fmt.Printf("  %s trace=%s parent=%v\n", s.Name(), s.SpanContext().TraceID(), s.Parent().IsValid())
	}
	return nil
}

func (printExporter) Shutdown(context.Context) error { return nil }

// Batch collection: ordinary OTel spans started while the context carries a
// collector are queued in it, and leave in one export call.
func Example_batchCollection() {
	tp := sdktrace.NewTracerProvider(collector.TracerProviderOptions(nil)...)
	defer tp.Shutdown(context.Background())
	tracer := tp.Tracer("example")

	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	c, _ := collector.New(traceID, printExporter{})
	defer c.Close()

	ctx := collector.ContextWithCollector(context.Background(), c)
	ctx, run := tracer.Start(ctx, "run")
	for _, step := range []string{"plan", "act"} {
		_, s := tracer.Start(ctx, step)
		s.End()
	}
	run.End()

	_ = c.Export(context.Background())
	// Output:
	// export: 3 spans in one call
	//   plan trace=4bf92f3577b34da6a3ce929d0e0e4736 parent=true
	//   act trace=4bf92f3577b34da6a3ce929d0e0e4736 parent=true
	//   run trace=4bf92f3577b34da6a3ce929d0e0e4736 parent=false
}

// Spans created after execution: the work ran without tracing; its timings
// are known afterwards and become spans with explicit times and parents.
func Example_spansAfterExecution() {
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	c, _ := collector.New(traceID, printExporter{})
	defer c.Close()

	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	root, _ := c.CreateSpan(collector.Span{
		Name: "support-agent", Start: start, End: start.Add(2350 * time.Millisecond),
	})
	_, _ = c.CreateSpan(collector.Span{
		Name: "answer", Parent: root,
		Start: start.Add(120 * time.Millisecond), End: start.Add(1020 * time.Millisecond),
		Attributes: []attribute.KeyValue{attribute.String("gen_ai.request.model", "gpt-4o")},
	})

	_ = c.Export(context.Background())
	// Output:
	// export: 2 spans in one call
	//   support-agent trace=4bf92f3577b34da6a3ce929d0e0e4736 parent=false
	//   answer trace=4bf92f3577b34da6a3ce929d0e0e4736 parent=true
}

// Inspection before export: look at what was collected, drop it or send it.
func Example_inspectBeforeExport() {
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	c, _ := collector.New(traceID, printExporter{})

	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	_, _ = c.CreateSpan(collector.Span{Name: "draft", Start: start, End: start.Add(time.Second)})
	fmt.Println("collected:", c.Len())
	for _, s := range c.Spans() {
		fmt.Println("inspect:", s.Name(), s.EndTime().Sub(s.StartTime()))
	}
	fmt.Println("cleared:", c.Clear())

	_, _ = c.CreateSpan(collector.Span{Name: "final", Start: start, End: start.Add(time.Second)})
	fmt.Println("discarded on close:", c.Close())
	// Output:
	// collected: 1
	// inspect: draft 1s
	// cleared: 1
	// discarded on close: 1
}

// Recycling on a hot path: every span's attributes are cut from the
// collector's attribute space, and once the spans are exported (by an
// exporter that keeps none of them) the collector's memory goes back to be
// reused by the next collectors.
func Example_recycle() {
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for _, run := range []string{"run-1", "run-2"} {
		c, _ := collector.New(traceID, printExporter{}, collector.WithCapacity(2))
		space := c.AttributeSpace(2)
		for _, step := range []string{"plan", "act"} {
			n := len(space)
			space = append(space, attribute.String("run", run))
			_, _ = c.CreateSpan(collector.Span{
				Name: step, Start: start, End: start.Add(time.Second),
				Attributes: space[n:len(space):len(space)], // no spare room into the next span's
			})
		}
		_ = c.Export(context.Background())
		c.Recycle() // the spans must not be read after this
	}
	// Output:
	// export: 2 spans in one call
	//   plan trace=4bf92f3577b34da6a3ce929d0e0e4736 parent=false
	//   act trace=4bf92f3577b34da6a3ce929d0e0e4736 parent=false
	// export: 2 spans in one call
	//   plan trace=4bf92f3577b34da6a3ce929d0e0e4736 parent=false
	//   act trace=4bf92f3577b34da6a3ce929d0e0e4736 parent=false
}
