package collector

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
)

// AttributeSpace returns an empty slice with room for at least n
// attributes, for the Attributes of spans to be created in c with
// CreateSpan, which keeps the slice it is given rather than a copy. A
// caller that cuts every span's attributes from one space makes one
// allocation per collector instead of one per span, and with Recycle
// none: the space is c's until Recycle. A caller cutting several spans'
// attributes from it should give each span a slice without spare capacity
// (attrs[:len(attrs):len(attrs)]), so that appending to one cannot reach
// the next.
func (c *Collector) AttributeSpace(n int) []attribute.KeyValue {
	space := attrPool.get(n)
	c.mu.Lock()
	if c.space.s == nil {
		c.space = space
	} else {
		c.spaces = append(c.spaces, space)
	}
	c.mu.Unlock()
	return space.s[:0]
}

// Recycle drops every collected span, as Clear does, and gives the memory
// of the spans CreateSpan made in c, and of the attribute spaces it lent
// (AttributeSpace), back to be reused by the collectors made after it. c
// stays usable; its next spans are cut from other memory.
//
// It is for a caller on a hot path, such as a worker exporting thousands
// of collectors a second, which exports the spans with an exporter that
// keeps none of them once ExportSpans returns (the OTLP exporters keep
// none) and keeps none itself. A span of c (from Spans, Take or Export)
// or an attribute of an attribute space used after Recycle reads zero
// values, or another span's. Spans routed into c (NewRoutingProcessor)
// are the SDK's own and are not recycled. A caller that never calls
// Recycle leaves the memory to the garbage collector, as before.
func (c *Collector) Recycle() {
	c.mu.Lock()
	slab, space, spaces := c.slabMem, c.space, c.spaces
	c.slab, c.slabMem, c.space, c.spaces = nil, pooled[snapshot]{}, pooled[attribute.KeyValue]{}, nil
	c.spans = c.spans[:0:0]
	c.gen++
	c.mu.Unlock()
	snapshotPool.put(slab)
	attrPool.put(space)
	for _, s := range spaces {
		attrPool.put(s)
	}
}

// Pools of the memory Recycle gives back. Their classes hold slices of
// capacity base<<k; a request for more than the largest class is not
// pooled.
var (
	snapshotPool = classPool[snapshot]{base: 8}            // 8 … 128 spans (maxSlab is 64)
	attrPool     = classPool[attribute.KeyValue]{base: 64} // 64 … 1,024 attributes
)

// classPool keeps slices by capacity class, so that a collector of 9
// spans is not handed the slab of one of 64.
type classPool[T any] struct {
	base    int
	classes [5]sync.Pool // of *[]T
	// recycling is set by the first put: until a caller recycles, slices
	// are made of the size asked for, with no room to spare, as they were
	// before Recycle existed.
	recycling atomic.Bool
}

// pooled is a slice from a classPool, and the pointer it is kept by in the
// pool (nil for one made fresh): a slice given to a sync.Pool as itself
// would be boxed into an interface, an allocation at each Put, so each
// slice keeps its box from one use to the next.
type pooled[T any] struct {
	s   []T
	box *[]T
}

// get returns a slice of capacity at least n (and length 0), from the
// pool when it holds one of n's class.
func (p *classPool[T]) get(n int) pooled[T] {
	k, size := p.class(n)
	if k >= 0 {
		if box, _ := p.classes[k].Get().(*[]T); box != nil {
			return pooled[T]{s: *box, box: box}
		}
	}
	if k < 0 || !p.recycling.Load() {
		size = n
	}
	return pooled[T]{s: make([]T, 0, size)}
}

// put clears a slice, all of its capacity (its users cut from it beyond
// its length), so that the pool keeps nothing alive, and keeps it when it
// is of a class's size.
func (p *classPool[T]) put(ps pooled[T]) {
	if ps.s == nil {
		return
	}
	if !p.recycling.Load() {
		p.recycling.Store(true)
	}
	k, size := p.class(cap(ps.s))
	if k < 0 || cap(ps.s) != size {
		return
	}
	clear(ps.s[:cap(ps.s)])
	box := ps.box
	if box == nil {
		box = new([]T)
	}
	*box = ps.s[:0]
	p.classes[k].Put(box)
}

// class returns the class of a slice for n elements and its capacity, or
// -1 when n is beyond the largest class.
func (p *classPool[T]) class(n int) (int, int) {
	size := p.base
	for k := range len(p.classes) {
		if n <= size {
			return k, size
		}
		size <<= 1
	}
	return -1, 0
}
