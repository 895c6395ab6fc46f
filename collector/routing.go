package collector

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sync"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

type ctxKey struct{}

// ContextWithCollector returns a copy of ctx that carries c. Spans started
// from it through a tracer provider set up with TracerProviderOptions are
// routed into c instead of down the processor chain.
//
// An active span of another trace is removed from the returned context, so
// that spans started from it become roots of c's trace rather than children
// of a span c cannot hold. An active span of c's own trace is kept.
func ContextWithCollector(ctx context.Context, c *Collector) context.Context {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && sc.TraceID() != c.traceID {
		ctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	}
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the innermost collector ctx carries, or nil.
func FromContext(ctx context.Context) *Collector {
	c, _ := ctx.Value(ctxKey{}).(*Collector)
	return c
}

// TracerProviderOptions returns the two tracer provider options that route
// spans into the collector found in the start context: the routing processor
// wrapping next (the normal chain, e.g. a batch span processor; nil for
// none) and the id generator that gives root spans the collector's trace id.
//
//	tp := sdktrace.NewTracerProvider(collector.TracerProviderOptions(bsp)...)
func TracerProviderOptions(next sdktrace.SpanProcessor) []sdktrace.TracerProviderOption {
	return []sdktrace.TracerProviderOption{
		sdktrace.WithSpanProcessor(NewRoutingProcessor(next)),
		sdktrace.WithIDGenerator(NewIDGenerator(nil)),
	}
}

type spanKey struct {
	trace trace.TraceID
	span  trace.SpanID
}

// owner is what the routing processor remembers of a routed span.
type owner struct {
	c *Collector
	// cleanup forgets the span if it becomes unreachable before End;
	// End stops it.
	cleanup runtime.Cleanup
}

// routingProcessor sends spans started in a collector's context to that
// collector and every other span to next.
type routingProcessor struct {
	next sdktrace.SpanProcessor
	// owners remembers which collector a started span belongs to: OnEnd
	// gets no context, and the decision must follow the start context.
	// An entry lives as long as its span can still end: End removes it,
	// and so does the cleanup of a span dropped without End (see
	// NewRoutingProcessor for why the span, not Close, bounds it).
	owners sync.Map // spanKey -> *owner
}

var _ sdktrace.SpanProcessor = (*routingProcessor)(nil)

// NewRoutingProcessor returns a span processor that wraps next. A span
// started while its context carries a collector (the innermost one, see
// ContextWithCollector) and that belongs to that collector's trace is added
// to the collector when it ends, and next never sees it. Every other span
// goes to next unchanged. next may be nil.
//
// A routed span that has not ended when its collector closes is counted as
// discarded by Close, and one started in a closed collector's context as it
// starts; either is dropped when it ends. So each routed span is collected
// or counted exactly once, and never reaches next.
//
// The processor remembers a routed span only while the span can still end:
// until End or, for a span dropped without End, until the garbage collector
// finds the span unreachable and a cleanup attached to it
// (runtime.AddCleanup) forgets it. A forgotten End thus costs nothing that
// outlives the span. Close cannot forget its collector's unended spans
// instead: one may still end after Close, and must then be recognised as
// the collector's rather than passed to next, which only its entry can
// tell; the span's own reachability is the one bound that keeps this exact.
//
// One window remains: the SDK lets go of a span before it calls the
// processors' OnEnd, so a garbage collection that completes in between
// could run the cleanup first, and that span would reach next. Registering
// no slow processor before this one keeps the window to a few instructions.
//
// Root spans get the collector's trace id only with the id generator of
// NewIDGenerator; TracerProviderOptions sets up both.
func NewRoutingProcessor(next sdktrace.SpanProcessor) sdktrace.SpanProcessor {
	return &routingProcessor{next: next}
}

func (p *routingProcessor) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) {
	sc := s.SpanContext()
	c := FromContext(ctx)
	if c == nil || sc.TraceID() != c.traceID {
		if p.next != nil {
			p.next.OnStart(ctx, s)
		}
		return
	}
	key := spanKey{sc.TraceID(), sc.SpanID()}
	c.started()
	o := &owner{c: c}
	if obj := spanObject(s); obj != nil {
		o.cleanup = runtime.AddCleanup(obj, forgetOwner, ownerEntry{p, key, o})
	}
	p.owners.Store(key, o)
}

func (p *routingProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	sc := s.SpanContext()
	if v, ok := p.owners.LoadAndDelete(spanKey{sc.TraceID(), sc.SpanID()}); ok {
		o := v.(*owner)
		o.cleanup.Stop()
		o.c.ended(s)
		return
	}
	if p.next != nil {
		p.next.OnEnd(s)
	}
}

// ownerEntry is what the cleanup of a routed span needs to forget it. It
// must not reach the span, or the span would never be collected.
type ownerEntry struct {
	p   *routingProcessor
	key spanKey
	o   *owner
}

func forgetOwner(e ownerEntry) { e.p.owners.CompareAndDelete(e.key, e.o) }

// spanObject returns the object behind s for a cleanup to watch, or nil if
// s is not a pointer. The SDK's spans are pointers to an unexported type;
// runtime.AddCleanup needs a typed pointer but only uses its address, so a
// *byte to the same address serves.
func spanObject(s sdktrace.ReadWriteSpan) *byte {
	v := reflect.ValueOf(s)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	return (*byte)(v.UnsafePointer())
}

func (p *routingProcessor) Shutdown(ctx context.Context) error {
	if p.next == nil {
		return nil
	}
	return p.next.Shutdown(ctx)
}

func (p *routingProcessor) ForceFlush(ctx context.Context) error {
	if p.next == nil {
		return nil
	}
	return p.next.ForceFlush(ctx)
}

// idGenerator gives new root spans the trace id of the collector in their
// start context.
type idGenerator struct {
	fallback sdktrace.IDGenerator
}

var _ sdktrace.IDGenerator = (*idGenerator)(nil)

// NewIDGenerator returns an id generator for a tracer provider: a root span
// started while the context carries a collector gets that collector's trace
// id; every other id comes from fallback (nil: random ids, as the SDK's
// default generator makes).
func NewIDGenerator(fallback sdktrace.IDGenerator) sdktrace.IDGenerator {
	if fallback == nil {
		fallback = randomIDs{}
	}
	return &idGenerator{fallback: fallback}
}

func (g *idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if c := FromContext(ctx); c != nil {
		return c.traceID, g.fallback.NewSpanID(ctx, c.traceID)
	}
	return g.fallback.NewIDs(ctx)
}

func (g *idGenerator) NewSpanID(ctx context.Context, traceID trace.TraceID) trace.SpanID {
	return g.fallback.NewSpanID(ctx, traceID)
}

type randomIDs struct{}

func (randomIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.NativeEndian.PutUint64(tid[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid, randomSpanID()
}

func (randomIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return randomSpanID() }
