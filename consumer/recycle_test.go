package consumer_test

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/spanferry/spanferry/mapping"
)

// TestExporterThatKeepsSpans: the consumer recycles a batch's span memory
// only after exports to exporters that keep no span. One that keeps them
// (the SDK's in-memory exporter, as a library user might pass) must find
// every span whole after later batches were mapped.
func TestExporterThatKeepsSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	e := startWith(t, exp, 5)
	const n = 40
	for i := range n {
		e.publish(t, fmt.Sprintf("run-%d", i), result(fmt.Sprintf("run-%d", i), 3))
	}
	e.await(t, "every result exported and acked", func() bool { return len(exp.GetSpans()) >= n*4 && e.settled(t) })

	spans := exp.GetSpans()
	if len(spans) != n*4 {
		t.Fatalf("%d spans, want %d", len(spans), n*4)
	}
	roots := map[string]bool{}
	for _, s := range spans {
		if !s.SpanContext.TraceID().IsValid() || !s.SpanContext.SpanID().IsValid() || s.Name == "" || len(s.Attributes) == 0 {
			t.Fatalf("a kept span changed after its batch: %q %v, %d attributes", s.Name, s.SpanContext, len(s.Attributes))
		}
		if !s.Parent.IsValid() {
			for _, kv := range s.Attributes {
				if kv.Key == mapping.AttrResultID {
					roots[kv.Value.AsString()] = true
				}
			}
		}
	}
	if len(roots) != n {
		t.Errorf("%d distinct results among the kept root spans, want %d", len(roots), n)
	}
}
