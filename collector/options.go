package collector

import (
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
)

// ScopeName is the instrumentation scope of spans made with CreateSpan unless
// WithScope names another.
const ScopeName = "github.com/spanferry/spanferry/collector"

type config struct {
	resource *resource.Resource
	scope    instrumentation.Scope
	discard  func(int)
	capacity int
}

// Option configures a Collector.
type Option func(*config) error

// WithResource sets the resource of spans made with CreateSpan. The default is
// resource.Default().
func WithResource(r *resource.Resource) Option {
	return func(c *config) error {
		if r == nil {
			return fmt.Errorf("%w: nil resource", ErrInvalidOption)
		}
		c.resource = r
		return nil
	}
}

// WithScope sets the instrumentation scope of spans made with CreateSpan.
func WithScope(s instrumentation.Scope) Option {
	return func(c *config) error {
		if s.Name == "" {
			return fmt.Errorf("%w: scope without a name", ErrInvalidOption)
		}
		c.scope = s
		return nil
	}
}

// WithDiscardHandler sets the function told how many spans Close (or a span
// ending after Close) discarded. The default passes an error wrapping
// ErrDiscarded to otel.Handle.
func WithDiscardHandler(f func(n int)) Option {
	return func(c *config) error {
		if f == nil {
			return fmt.Errorf("%w: nil discard handler", ErrInvalidOption)
		}
		c.discard = f
		return nil
	}
}

// WithCapacity preallocates room for n spans, for callers that know how many
// spans they will create.
func WithCapacity(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("%w: negative capacity %d", ErrInvalidOption, n)
		}
		c.capacity = n
		return nil
	}
}

func defaultDiscard(n int) {
	otel.Handle(fmt.Errorf("%w: %d spans", ErrDiscarded, n))
}
