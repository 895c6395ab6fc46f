package mapping

import (
	"fmt"

	"go.opentelemetry.io/otel/sdk/resource"
)

// Limits bound what one message may hold. A message over a limit is a
// permanent error (ErrTooLarge), except the attribute value length, which
// truncates.
type Limits struct {
	// MaxBytes is the largest message accepted.
	MaxBytes int
	// MaxSteps is the most steps one result may hold, at every depth.
	MaxSteps int
	// MaxDepth is the deepest step nesting: a top-level step is at depth 1.
	MaxDepth int
	// MaxAttrValueLen is the most characters of a string attribute value;
	// longer values are truncated and counted in Stats.Truncations.
	// Negative means no limit, as for OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT.
	MaxAttrValueLen int
}

// DefaultLimits returns the limits of CONTRACT §2: 1 MiB (the NATS
// server's default max payload), 10,000 steps, depth 64, no value limit.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 1 << 20, MaxSteps: 10_000, MaxDepth: 64, MaxAttrValueLen: -1}
}

// DefaultServiceName is the service.name of results without a service
// field when no other default is configured.
const DefaultServiceName = "workflows"

type config struct {
	limits   Limits
	resource *resource.Resource
	service  string
	content  contentOptions
}

// Option configures a Mapper.
type Option func(*config) error

// WithLimits sets the limits. Zero fields keep their defaults.
func WithLimits(l Limits) Option {
	return func(c *config) error {
		if l.MaxBytes < 0 || l.MaxSteps < 0 || l.MaxDepth < 0 {
			return fmt.Errorf("mapping: invalid limits %+v: negative", l)
		}
		if l.MaxBytes > 0 {
			c.limits.MaxBytes = l.MaxBytes
		}
		if l.MaxSteps > 0 {
			c.limits.MaxSteps = l.MaxSteps
		}
		if l.MaxDepth > 0 {
			c.limits.MaxDepth = l.MaxDepth
		}
		if l.MaxAttrValueLen != 0 {
			c.limits.MaxAttrValueLen = l.MaxAttrValueLen
		}
		return nil
	}
}

// WithResource sets the resource every span starts from (for example one
// built with resource.WithFromEnv for OTEL_RESOURCE_ATTRIBUTES). A result's
// service field overrides its service.name. The default is an empty
// resource.
func WithResource(r *resource.Resource) Option {
	return func(c *config) error {
		if r == nil {
			return fmt.Errorf("mapping: nil resource")
		}
		c.resource = r
		return nil
	}
}

// WithDefaultService sets the service.name of results without a service
// field (OTEL_SERVICE_NAME in the worker). Without it, the base resource's
// service.name is used, else DefaultServiceName.
func WithDefaultService(name string) Option {
	return func(c *config) error {
		if name == "" {
			return fmt.Errorf("mapping: empty default service name")
		}
		c.service = name
		return nil
	}
}
