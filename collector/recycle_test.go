package collector_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanferry/spanferry/collector"
)

// fill creates n spans in c, each with attrs attributes cut from one
// attribute space, as the mapping does, and returns them taken.
func fill(t testing.TB, c *collector.Collector, n, attrs int) []sdktrace.ReadOnlySpan {
	t.Helper()
	space := c.AttributeSpace(n * attrs)
	start := time.Unix(1_700_000_000, 0)
	for i := range n {
		l := len(space)
		for j := range attrs {
			space = append(space, attribute.Int(fmt.Sprintf("k%d", j), i*attrs+j))
		}
		if _, err := c.CreateSpan(collector.Span{
			Name:       fmt.Sprintf("span %d", i),
			SpanID:     trace.SpanID{0, 0, 0, 0, 0, 0, 1, byte(i + 1)},
			Start:      start,
			End:        start.Add(time.Duration(i) * time.Millisecond),
			Attributes: space[l:len(space):len(space)],
		}); err != nil {
			t.Fatal(err)
		}
	}
	return c.Take()
}

// checkSpans fails unless spans are fill's n spans of attrs attributes.
func checkSpans(t *testing.T, spans []sdktrace.ReadOnlySpan, tid trace.TraceID, n, attrs int) {
	t.Helper()
	if len(spans) != n {
		t.Fatalf("%d spans, want %d", len(spans), n)
	}
	for i, s := range spans {
		if s.Name() != fmt.Sprintf("span %d", i) || s.SpanContext().TraceID() != tid || s.SpanContext().SpanID()[7] != byte(i+1) {
			t.Fatalf("span %d is %q %v", i, s.Name(), s.SpanContext())
		}
		if len(s.Attributes()) != attrs {
			t.Fatalf("span %d has %d attributes, want %d", i, len(s.Attributes()), attrs)
		}
		for j, kv := range s.Attributes() {
			if kv.Key != attribute.Key(fmt.Sprintf("k%d", j)) || kv.Value.AsInt64() != int64(i*attrs+j) {
				t.Fatalf("span %d attribute %d is %v", i, j, kv)
			}
		}
	}
}

func TestAttributeSpace(t *testing.T) {
	c := newCollector(t, nil)
	for _, n := range []int{0, 1, 63, 64, 65, 1000, 1024, 1025, 5000} {
		s := c.AttributeSpace(n)
		if len(s) != 0 || cap(s) < n {
			t.Errorf("AttributeSpace(%d): len %d cap %d", n, len(s), cap(s))
		}
	}
}

// TestNoRecycleNoSpareRoom: a process that never recycles gets the room
// it asks for, not a pool class's (108 attributes, not 128).
func TestNoRecycleNoSpareRoom(t *testing.T) {
	defer collector.StopRecycling()()
	c := newCollector(t, nil)
	if s := c.AttributeSpace(108); cap(s) != 108 {
		t.Errorf("AttributeSpace(108) without recycling: cap %d", cap(s))
	}
	c.Recycle() // from now on, room for the pool's classes
	if s := c.AttributeSpace(108); cap(s) < 108 {
		t.Errorf("AttributeSpace(108) when recycling: cap %d", cap(s))
	}
	if s := newCollector(t, nil).AttributeSpace(108); cap(s) != 128 {
		t.Errorf("AttributeSpace(108) when recycling, pool empty or not: cap %d, want 128", cap(s))
	}
}

// TestRecycle recycles collectors one after the other, of several sizes,
// so that later ones are cut from the memory of earlier ones: each must
// read as its own, and a recycled one is empty and still usable.
func TestRecycle(t *testing.T) {
	for round := range 50 {
		n, attrs := 1+round%13, round%7
		c := newCollector(t, nil)
		spans := fill(t, c, n, attrs)
		checkSpans(t, spans, c.TraceID(), n, attrs)
		c.Recycle()
		if c.Len() != 0 {
			t.Fatalf("round %d: %d spans after Recycle", round, c.Len())
		}
		// The spans read zero values now (or another collector's): the
		// memory is back in the pool, cleared so it keeps nothing alive.
		if spans[0].Name() != "" && spans[0].Name() != "span 0" {
			t.Fatalf("round %d: a recycled span reads %q", round, spans[0].Name())
		}
		again := fill(t, c, 2, 3)
		checkSpans(t, again, c.TraceID(), 2, 3)
		c.Recycle()
	}
}

// TestRecycleKeepsRoutedSpans: spans that came from the SDK through the
// routing processor are the SDK's, and stay whole after Recycle.
func TestRecycleKeepsRoutedSpans(t *testing.T) {
	tp := sdktrace.NewTracerProvider(collector.TracerProviderOptions(nil)...)
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	c := newCollector(t, nil)
	ctx := collector.ContextWithCollector(t.Context(), c)
	_, s := tp.Tracer("t").Start(ctx, "routed", trace.WithAttributes(attribute.String("k", "v")))
	s.End()
	spans := fill(t, c, 1, 1) // Take: the routed span and the created one
	c.Recycle()
	if len(spans) != 2 || spans[0].Name() != "routed" || len(spans[0].Attributes()) != 1 || spans[0].Attributes()[0].Value.AsString() != "v" {
		t.Fatalf("routed span after Recycle: %v", spans[0].Name())
	}
}

// TestRecycleConcurrent recycles collectors on several goroutines at once
// (run with -race): the pools are shared by the process.
func TestRecycleConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				c := newCollector(t, nil)
				n := 1 + (g+i)%9
				checkSpans(t, fill(t, c, n, 4), c.TraceID(), n, 4)
				c.Recycle()
			}
		})
	}
	wg.Wait()
}

// TestRecycleAllocates measures what recycling saves: a collector of 9
// spans and 108 attributes, created, filled, taken and recycled, against
// the same left to the garbage collector.
func TestRecycleAllocates(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops a quarter of what sync.Pool is given")
	}
	perCycle := func(recycle bool) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		const cycles = 500
		for range cycles {
			c, err := collector.New(trace.TraceID{1}, nil, collector.WithCapacity(9))
			if err != nil {
				t.Fatal(err)
			}
			fill(t, c, 9, 12)
			if recycle {
				c.Recycle()
			}
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / cycles
	}
	kept, recycled := perCycle(false), perCycle(true)
	t.Logf("bytes per collector: %d left to the GC, %d recycled", kept, recycled)
	// The slab of 9 snapshots (~3.9 KB) and the 108 attributes (~6.9 KB)
	// are what recycling takes away; fill's own key strings remain.
	if kept-recycled < 9_000 {
		t.Errorf("recycling saved %d bytes per collector (%d → %d), want the slabs' ~10 KB", kept-recycled, kept, recycled)
	}
}
