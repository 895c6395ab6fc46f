package consumer

import (
	"sync/atomic"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spanferry/spanferry/collector"
	"github.com/spanferry/spanferry/internal/otlpenc"
)

// batchMemory is the span memory of one fetched batch: the collectors its
// results were mapped into. Their spans and attributes are most of what
// the worker allocates per result, and all of it dies with the batch, so
// it is recycled (collector.Recycle) for the batches after it instead of
// being left to the garbage collector: 0.36 → 0.31 CPU s per 10k results
// in the bench, the collector's marking and sweeping among the rest.
//
// It is recycled once no export of the batch runs any more (handle's own,
// and a request awaitExport stopped waiting for), and only if every
// exporter the spans went to keeps none of them once ExportSpans returns:
// an exporter that keeps spans, as tracetest.InMemoryExporter does, would
// see them change.
type batchMemory struct {
	refs atomic.Int32
	keep atomic.Bool // set when a span went to an exporter that may keep it
	cols []*collector.Collector
}

// newBatchMemory returns the memory of a batch, held once by its handler.
func newBatchMemory(n int) *batchMemory {
	b := &batchMemory{cols: make([]*collector.Collector, 0, n)}
	b.refs.Store(1)
	return b
}

// add records a collector of the batch. Only the handler calls it, before
// any export.
func (b *batchMemory) add(c *collector.Collector) { b.cols = append(b.cols, c) }

// exportingTo records that the batch's spans go to exp, before they do.
// A nil b (items made outside handle) does nothing.
func (b *batchMemory) exportingTo(exp sdktrace.SpanExporter) {
	if b != nil && !keepsNoSpans(exp) {
		b.keep.Store(true)
	}
}

// hold keeps the memory for one more user, which must release it.
func (b *batchMemory) hold() {
	if b != nil {
		b.refs.Add(1)
	}
}

// release ends a use; the last recycles the collectors.
func (b *batchMemory) release() {
	if b == nil || b.refs.Add(-1) != 0 || b.keep.Load() {
		return
	}
	for _, c := range b.cols {
		c.Recycle()
	}
}

// keepsNoSpans reports whether exp is known to keep none of the spans it
// is given once ExportSpans returns: the exporters NewExporter returns,
// which encode the request before they return. Any other may keep them.
func keepsNoSpans(exp sdktrace.SpanExporter) bool {
	switch exp.(type) {
	case *otlpenc.Exporter, *otlptrace.Exporter:
		return true
	}
	return false
}
