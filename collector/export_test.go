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
