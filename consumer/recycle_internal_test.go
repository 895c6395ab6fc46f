package consumer

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanferry/spanferry/collector"
	"github.com/spanferry/spanferry/internal/otlpenc"
)

// TestBatchMemory: a batch's collectors are recycled at the last release
// only (handle's, or a late export's after it), and never once its spans
// went to an exporter that may keep them.
func TestBatchMemory(t *testing.T) {
	mk := func() (*batchMemory, *collector.Collector) {
		b := newBatchMemory(1)
		c, err := collector.New(trace.TraceID{1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateSpan(collector.Span{Name: "s", Start: time.Unix(1, 0), End: time.Unix(2, 0)}); err != nil {
			t.Fatal(err)
		}
		b.add(c)
		return b, c
	}
	ours := otlpenc.NewExporter(nil)

	b, c := mk()
	b.exportingTo(ours)
	b.hold() // a late export
	b.release()
	if c.Len() != 1 {
		t.Fatal("recycled while a late export still held the batch")
	}
	b.release()
	if c.Len() != 0 {
		t.Fatal("not recycled at the last release")
	}

	b, c = mk()
	b.exportingTo(ours)
	b.exportingTo(tracetest.NewInMemoryExporter())
	b.release()
	if c.Len() != 1 {
		t.Fatal("recycled after an export to an exporter that keeps spans")
	}

	var none *batchMemory // items made outside handle
	none.exportingTo(ours)
	none.hold()
	none.release()
}
