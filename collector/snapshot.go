package collector

import (
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// snapshot is the ReadOnlySpan of a span made with CreateSpan: what
// tracetest.SpanStub.Snapshot returns, field for field and method for
// method (TestSnapshotMatchesSpanStub compares the two), but used through a
// pointer into a collector's slab. SpanStub's is a value boxed into the
// interface, one allocation of some 400 bytes per span; the slab makes
// that one allocation per collector of known capacity (WithCapacity).
type snapshot struct {
	// The SDK's ReadOnlySpan has an unexported method; embedding the
	// interface provides it, as tracetest's snapshot does. It is never
	// called.
	sdktrace.ReadOnlySpan

	name                 string
	spanContext          trace.SpanContext
	parent               trace.SpanContext
	spanKind             trace.SpanKind
	startTime            time.Time
	endTime              time.Time
	attributes           []attribute.KeyValue
	events               []sdktrace.Event
	links                []sdktrace.Link
	status               sdktrace.Status
	resource             *resource.Resource
	instrumentationScope instrumentation.Scope
}

func (s *snapshot) Name() string                     { return s.name }
func (s *snapshot) SpanContext() trace.SpanContext   { return s.spanContext }
func (s *snapshot) Parent() trace.SpanContext        { return s.parent }
func (s *snapshot) SpanKind() trace.SpanKind         { return s.spanKind }
func (s *snapshot) StartTime() time.Time             { return s.startTime }
func (s *snapshot) EndTime() time.Time               { return s.endTime }
func (s *snapshot) Attributes() []attribute.KeyValue { return s.attributes }
func (s *snapshot) Links() []sdktrace.Link           { return s.links }
func (s *snapshot) Events() []sdktrace.Event         { return s.events }
func (s *snapshot) Status() sdktrace.Status          { return s.status }
func (s *snapshot) DroppedAttributes() int           { return 0 }
func (s *snapshot) DroppedLinks() int                { return 0 }
func (s *snapshot) DroppedEvents() int               { return 0 }
func (s *snapshot) ChildSpanCount() int              { return 0 }
func (s *snapshot) Resource() *resource.Resource     { return s.resource }
func (s *snapshot) InstrumentationScope() instrumentation.Scope {
	return s.instrumentationScope
}

//nolint:staticcheck // part of ReadOnlySpan, kept by the SDK for compatibility
func (s *snapshot) InstrumentationLibrary() instrumentation.Library {
	return s.instrumentationScope
}

// maxSlab bounds the spans of one slab (some 400 bytes each), whatever
// capacity the collector was given: a span kept by the caller keeps its
// slab alive.
const maxSlab = 64

// slot returns room for one more snapshot. c.mu must be held. A slot is
// never reused before Recycle: the spans already handed out (by Spans,
// Take, Export) keep pointing at theirs. A slab holds what is left of the
// capacity, else as many spans as were made so far (at least one), at
// most maxSlab.
func (c *Collector) slot() *snapshot {
	if len(c.slab) == cap(c.slab) {
		n := c.capacity - c.made
		if n <= 0 {
			n = max(c.made, 1)
		}
		// The full slab is left to the spans cut from it; only the
		// latest is recycled (a collector of known capacity has one).
		c.slabMem = snapshotPool.get(min(n, maxSlab))
		c.slab = c.slabMem.s
	}
	c.slab = c.slab[:len(c.slab)+1]
	c.made++
	return &c.slab[len(c.slab)-1]
}
