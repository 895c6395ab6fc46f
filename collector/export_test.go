package collector

import sdktrace "go.opentelemetry.io/otel/sdk/trace"

// OwnerEntries returns how many spans the routing processor p remembers the
// owner of, so that tests can see its bookkeeping shrink.
func OwnerEntries(p sdktrace.SpanProcessor) int {
	n := 0
	p.(*routingProcessor).owners.Range(func(any, any) bool {
		n++
		return true
	})
	return n
}

// StopRecycling makes the pools forget that a collector was recycled, as
// in a process that never recycles, and returns a function that restores
// them.
func StopRecycling() (restore func()) {
	a, b := attrPool.recycling.Load(), snapshotPool.recycling.Load()
	attrPool.recycling.Store(false)
	snapshotPool.recycling.Store(false)
	return func() {
		attrPool.recycling.Store(a)
		snapshotPool.recycling.Store(b)
	}
}
