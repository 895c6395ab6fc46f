// Package collector provides a scoped span collector: a local queue of
// finished spans that all belong to one trace, exported together in a single
// batch when the caller decides, instead of one by one as a span processor
// would.
//
// A Collector serves two kinds of spans:
//
//   - spans created after the fact with CreateSpan, for work that ran without
//     any tracing context (explicit times, parents, ids, attributes);
//   - ordinary OTel spans started through a tracer whose provider uses
//     NewRoutingProcessor and NewIDGenerator, while the context carries the
//     collector (ContextWithCollector).
//
// The spans can be inspected (Spans, Len), dropped (Clear) or exported in one
// ExportSpans call (Export). Close ends the scope and reports how many spans
// it discarded, so that nothing is lost silently.
//
// A Collector is safe for concurrent use.
package collector

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Span describes a finished span to record with CreateSpan.
type Span struct {
	// Name is the span name.
	Name string
	// Parent is the parent span: another span of the collector, or a remote
	// span of the same trace. The zero value makes a root span.
	Parent trace.SpanContext
	// SpanID is the span's id. The zero value draws a random one.
	SpanID trace.SpanID
	// Kind is the span kind; the zero value is recorded as Internal.
	Kind trace.SpanKind
	// Start and End are the span's times. End must not be before Start.
	Start, End time.Time
	// Attributes are recorded as given; the slice is kept, not copied.
	Attributes []attribute.KeyValue
	// Status is the span status.
	Status sdktrace.Status
	// Events are recorded as given; the slice is kept, not copied.
	Events []sdktrace.Event
	// Links are recorded as given; the slice is kept, not copied.
	Links []sdktrace.Link
}

// Collector holds the finished spans of one trace until they are exported,
// cleared or discarded. Create one with New.
type Collector struct {
	traceID  trace.TraceID
	exporter sdktrace.SpanExporter
	resource *resource.Resource
	scope    instrumentation.Scope
	discard  func(int)

	mu     sync.Mutex
	spans  []sdktrace.ReadOnlySpan
	gen    uint64 // incremented by Clear, so an Export that ran meanwhile clears nothing it did not send
	closed bool
	// slab is where CreateSpan's spans are cut from (snapshot.go); made
	// counts them, capacity is WithCapacity's.
	slab     []snapshot
	made     int
	capacity int
	// slabMem is the pooled slice slab is cut from, and space and spaces
	// the attribute spaces lent by AttributeSpace (the first, and any
	// more): what Recycle gives back (recycle.go).
	slabMem pooled[snapshot]
	space   pooled[attribute.KeyValue]
	spaces  []pooled[attribute.KeyValue]
	// unended counts the spans routed here (see NewRoutingProcessor) that
	// started while the collector was open and have not ended, so that
	// Close can count them as discarded.
	unended int
}

// New returns a collector for the trace traceID that exports to exporter.
// exporter may be nil for a collector that is only inspected; Export then
// returns ErrNoExporter. It returns ErrInvalidTraceID for the zero trace id.
func New(traceID trace.TraceID, exporter sdktrace.SpanExporter, opts ...Option) (*Collector, error) {
	if !traceID.IsValid() {
		return nil, ErrInvalidTraceID
	}
	cfg := config{
		resource: resource.Default(),
		scope:    instrumentation.Scope{Name: ScopeName},
		discard:  defaultDiscard,
	}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	return &Collector{
		traceID:  traceID,
		exporter: exporter,
		resource: cfg.resource,
		scope:    cfg.scope,
		discard:  cfg.discard,
		spans:    make([]sdktrace.ReadOnlySpan, 0, cfg.capacity),
		capacity: cfg.capacity,
	}, nil
}

// TraceID returns the trace id of every span of the collector.
func (c *Collector) TraceID() trace.TraceID { return c.traceID }

// CreateSpan records a finished span and returns its span context. The
// span's trace id is the collector's; a Parent of another trace is refused
// with ErrForeignParent, an End before Start with ErrInvalidTimes, and a
// closed collector with ErrClosed.
func (c *Collector) CreateSpan(s Span) (trace.SpanContext, error) {
	if s.Parent.IsValid() && s.Parent.TraceID() != c.traceID {
		return trace.SpanContext{}, fmt.Errorf("%w: span %q has parent in trace %s, collector is for %s",
			ErrForeignParent, s.Name, s.Parent.TraceID(), c.traceID)
	}
	if s.End.Before(s.Start) {
		return trace.SpanContext{}, fmt.Errorf("%w: span %q ends %s before it starts",
			ErrInvalidTimes, s.Name, s.Start.Sub(s.End))
	}
	if !s.SpanID.IsValid() {
		s.SpanID = randomSpanID()
	}
	if s.Kind == trace.SpanKindUnspecified {
		s.Kind = trace.SpanKindInternal
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    c.traceID,
		SpanID:     s.SpanID,
		TraceFlags: trace.FlagsSampled,
	})
	// The SDK's own span type can only be made by starting a span, which
	// would stamp the current time and apply limits we need to count
	// ourselves; snapshot is tracetest.SpanStub's, cut from a slab.
	ro := snapshot{
		name:                 s.Name,
		spanContext:          sc,
		parent:               s.Parent,
		spanKind:             s.Kind,
		startTime:            s.Start,
		endTime:              s.End,
		attributes:           s.Attributes,
		events:               s.Events,
		links:                s.Links,
		status:               s.Status,
		resource:             c.resource,
		instrumentationScope: c.scope,
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.reportDiscarded(1)
		return trace.SpanContext{}, ErrClosed
	}
	slot := c.slot()
	*slot = ro
	c.spans = append(c.spans, slot)
	c.mu.Unlock()
	return sc, nil
}

// started records the start of a span routed into the collector. One that
// starts after Close can never be collected: it is counted as discarded now.
func (c *Collector) started() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.reportDiscarded(1)
		return
	}
	c.unended++
	c.mu.Unlock()
}

// ended queues a routed span that has ended. A closed collector has
// counted the span already, at Close or at its start.
func (c *Collector) ended(s sdktrace.ReadOnlySpan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.unended--
	c.spans = append(c.spans, s)
}

// Spans returns the collected spans in the order they were added (for
// routed spans, the order they ended). The slice is a copy; the spans are
// shared and must not be modified.
func (c *Collector) Spans() []sdktrace.ReadOnlySpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.spans)
}

// Len returns the number of collected spans.
func (c *Collector) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.spans)
}

// Clear drops every collected span and returns how many it dropped. Clearing
// is the caller's explicit choice, so it is not reported as a discard.
func (c *Collector) Clear() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.spans)
	c.spans = c.spans[:0:0]
	c.gen++
	return n
}

// Take removes and returns every collected span, for a caller that exports
// the spans of several collectors in one request itself.
func (c *Collector) Take() []sdktrace.ReadOnlySpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	spans := c.spans
	c.spans = nil
	c.gen++
	return spans
}

// Export sends every collected span in exactly one ExportSpans call and,
// when the exporter accepts them, removes them from the collector. On error
// the spans stay, so the caller can retry. An empty collector makes no call.
// Spans added while the export runs stay queued for the next one.
func (c *Collector) Export(ctx context.Context) error {
	if c.exporter == nil {
		return ErrNoExporter
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	spans := slices.Clone(c.spans)
	gen := c.gen
	c.mu.Unlock()
	if len(spans) == 0 {
		return nil
	}
	if err := c.exporter.ExportSpans(ctx, spans); err != nil {
		return fmt.Errorf("collector: export %d spans of trace %s: %w", len(spans), c.traceID, err)
	}
	c.mu.Lock()
	if c.gen == gen {
		// Only spans are ever appended between the snapshot and now, so
		// the exported ones are still the first len(spans).
		c.spans = slices.Delete(c.spans, 0, len(spans))
	}
	c.mu.Unlock()
	return nil
}

// Close ends the collector's scope. Spans still queued, and spans started
// in its context (see NewRoutingProcessor) that have not ended, are
// discarded and their number returned; a non-zero number is also reported
// to the discard handler (WithDiscardHandler), by default the OTel error
// handler, so that a deferred Close never loses spans silently, not even
// those of a forgotten End. Such a span that ends later is dropped, having
// been counted; spans created or started in the collector's context after
// Close are discarded and reported the same way. Close is idempotent; later
// calls return 0.
func (c *Collector) Close() int {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0
	}
	c.closed = true
	n := len(c.spans) + c.unended
	c.spans = nil
	c.unended = 0
	c.mu.Unlock()
	c.reportDiscarded(n)
	return n
}

func (c *Collector) reportDiscarded(n int) {
	if n > 0 {
		c.discard(n)
	}
}

// randomSpanID draws a span id the way the SDK's default generator does:
// from a fast pseudo-random source, since span ids need uniqueness, not
// secrecy.
func randomSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		binary.NativeEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}
