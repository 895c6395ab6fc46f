// Package mapping turns workflow results (CONTRACT §1) into spans
// (CONTRACT §2): it decodes and validates a message, derives its ids and
// times, and writes one span per result and per step into a collector. It
// does no I/O and never exports.
package mapping

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanferry/spanferry/collector"
)

// ScopeName is the instrumentation scope of every span the mapping makes.
const ScopeName = "github.com/spanferry/spanferry/mapping"

// Mapper decodes workflow results and maps them into spans. It is safe for
// concurrent use; create one with New and share it.
type Mapper struct {
	limits  Limits
	base    *resource.Resource
	service string
	scope   instrumentation.Scope
	content contentOptions

	// resources caches the resource per service name: results of one
	// service share one *resource.Resource, which also lets the OTLP
	// exporter group their spans under one ResourceSpans.
	mu        sync.RWMutex
	resources map[string]*resource.Resource
}

// maxCachedResources bounds the resource cache: service names come from
// messages, and a stream of distinct ones must not grow memory without end.
const maxCachedResources = 1024

// New returns a Mapper.
func New(opts ...Option) (*Mapper, error) {
	cfg := config{limits: DefaultLimits(), resource: resource.Empty()}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.service == "" {
		cfg.service = DefaultServiceName
		if v, ok := cfg.resource.Set().Value(semconv.ServiceNameKey); ok && v.AsString() != "" {
			cfg.service = v.AsString()
		}
	}
	return &Mapper{
		limits:  cfg.limits,
		base:    cfg.resource,
		service: cfg.service,
		scope:   instrumentation.Scope{Name: ScopeName},
		content: cfg.content,

		resources: make(map[string]*resource.Resource),
	}, nil
}

// Limits returns the limits in force.
func (m *Mapper) Limits() Limits { return m.limits }

// Source is what the transport knows of a message beyond its body.
type Source struct {
	// Traceparent is the message's W3C traceparent header, if any. It gives
	// the trace id and the remote parent of the root span when the body has
	// no trace_id.
	Traceparent string
	// Stored is when the message was stored (JetStream's timestamp): the
	// root's end when the result has neither started_at nor ended_at. Zero
	// means now.
	Stored time.Time
}

// Decoded is a valid workflow result with the identity and times derived
// for it. Create it with Decode; map it with Map.
type Decoded struct {
	Result Result
	// TraceID is the trace id of every span of the result.
	TraceID trace.TraceID
	// Parent is the remote parent of the root span (from traceparent), or
	// the zero SpanContext.
	Parent trace.SpanContext
	// Stored is Source.Stored, or the decoding time when that was zero.
	Stored time.Time

	// nodes holds the parsed times of the root and every step in pre-order,
	// so times are parsed once, in validation, and Map walks the same order.
	nodes []node
	// textBytes and metadata size Map's allocations: the bytes of every
	// input, output and metadata key and value, and the metadata entries.
	textBytes, metadata int
	// steps is the slab the fast decoder cut the Result's step arrays
	// from, kept with nodes for the next Decode by Recycle.
	steps []Step
}

// decodedPool holds the Decodeds that Recycle gave back; recycling is set
// by the first Recycle. Until then step arrays are made of their own size,
// as before Recycle existed, rather than cut from a slab with room to
// spare.
var (
	decodedPool = sync.Pool{New: func() any { return new(Decoded) }}
	recycling   atomic.Bool
)

// Recycle gives d's memory back to later Decode calls: its Result's step
// arrays (when the fast path decoded them) and the times validation
// parsed. d and its Result must not be used after it. The spans Map made
// from d are not affected: they refer to d's strings and raw values, which
// are not recycled, never to d's memory itself.
func (d *Decoded) Recycle() {
	// So that the pool keeps no message alive. Both only ever grow by
	// append, so nothing beyond their length was written.
	clear(d.steps)
	clear(d.nodes)
	*d = Decoded{steps: d.steps[:0], nodes: d.nodes[:0]}
	decodedPool.Put(d)
	if !recycling.Load() {
		recycling.Store(true)
	}
}

// Steps returns the number of steps of the result, at every depth.
func (d *Decoded) Steps() int { return len(d.nodes) - 1 }

type node struct {
	start, end time.Time // zero when not given
	latency    time.Duration
	hasLatency bool
}

// Decode decodes and validates one message. Every error it returns matches
// ErrInvalid (see IsPermanent) and is a *FieldError naming the field.
func (m *Mapper) Decode(data []byte, src Source) (*Decoded, error) {
	return m.decode(data, src, true)
}

// decode is Decode; fast says whether to try decodeFast before
// encoding/json, which the tests turn off to compare the two.
func (m *Mapper) decode(data []byte, src Source, fast bool) (*Decoded, error) {
	if len(data) > m.limits.MaxBytes {
		return nil, &FieldError{
			Msg: "message is " + strconv.Itoa(len(data)) + " bytes, over the limit of " + strconv.Itoa(m.limits.MaxBytes),
			Err: ErrTooLarge,
		}
	}
	if len(data) > prescanThreshold {
		if err := prescan(data, m.limits); err != nil {
			return nil, err
		}
	}
	d := decodedPool.Get().(*Decoded)
	d.Stored = src.Stored
	// encoding/json is the reference: whatever the fast path does not take
	// (see decodeFast), it decodes, and it reports every error.
	var slab *[]Step
	if recycling.Load() {
		slab = &d.steps
	}
	if !fast || !decodeFast(data, &d.Result, slab) {
		d.Result = Result{}
		if err := json.Unmarshal(data, &d.Result); err != nil {
			return nil, jsonError(data, err)
		}
	}
	if d.Stored.IsZero() {
		d.Stored = time.Now()
	}
	if err := m.validate(d); err != nil {
		return nil, err
	}
	m.identify(d, src.Traceparent)
	return d, nil
}

// identify resolves the trace id: trace_id, else traceparent's, else
// derived from id. A traceparent also gives the root's remote parent.
func (m *Mapper) identify(d *Decoded, traceparent string) {
	if d.TraceID.IsValid() { // set from trace_id by validate
		return
	}
	if traceparent != "" {
		carrier := propagation.MapCarrier{"traceparent": traceparent}
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier))
		if sc.IsValid() {
			d.TraceID = sc.TraceID()
			d.Parent = sc
			return
		}
	}
	d.TraceID = DeriveTraceID(d.Result.ID)
}

// NewCollector returns a collector for d's trace with the resource and
// scope of the mapping, ready for Map. exporter may be nil.
func (m *Mapper) NewCollector(d *Decoded, exporter sdktrace.SpanExporter) (*collector.Collector, error) {
	return collector.New(d.TraceID, exporter,
		collector.WithResource(m.resourceFor(d.Result.Service)),
		collector.WithScope(m.scope),
		collector.WithCapacity(len(d.nodes)),
	)
}

func (m *Mapper) resourceFor(service string) *resource.Resource {
	if service == "" {
		service = m.service
	}
	m.mu.RLock()
	r, ok := m.resources[service]
	m.mu.RUnlock()
	if ok {
		return r
	}
	r, err := resource.Merge(m.base, resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		// Merge fails only on conflicting schema URLs, and the service
		// resource has none.
		r = m.base
	}
	m.mu.Lock()
	if len(m.resources) < maxCachedResources {
		m.resources[service] = r
	}
	m.mu.Unlock()
	return r
}

// validate checks the result against CONTRACT §1 and the limits, and
// parses its times into d.nodes.
func (m *Mapper) validate(d *Decoded) error {
	r := &d.Result
	p := make(path, 0, 8)
	if r.Version != "" {
		major, _, _ := strings.Cut(r.Version.String(), ".")
		if v, err := strconv.Atoi(major); err != nil || v != 1 {
			return &FieldError{Path: "version", Msg: "unsupported version " + r.Version.String() + " (this worker reads version 1)", Err: ErrUnsupportedVersion}
		}
	}
	if r.ID == "" {
		return p.field("id").errorf("required")
	}
	if r.Name == "" {
		return p.field("name").errorf("required")
	}
	if r.TraceID != "" {
		id, err := trace.TraceIDFromHex(r.TraceID)
		if err != nil {
			return p.field("trace_id").errorf("must be 32 lowercase hex characters, not all zero")
		}
		d.TraceID = id
	}
	if n := 1 + countSteps(r.Steps, m.limits.MaxSteps+1); cap(d.nodes) < n {
		d.nodes = make([]node, 1, n)
	} else {
		d.nodes = d.nodes[:1] // Recycle cleared them
	}
	if err := d.validateExecution(p, &d.nodes[0], &r.Execution); err != nil {
		return err
	}
	return m.validateSteps(p, d, r.Steps, 1)
}

// countSteps counts steps up to limit, so a huge message costs no more
// than the limit to size.
func countSteps(steps []Step, limit int) int {
	n := 0
	for i := range steps {
		if n >= limit {
			return n
		}
		n += 1 + countSteps(steps[i].Steps, limit-n-1)
	}
	return n
}

func (m *Mapper) validateSteps(parent path, d *Decoded, steps []Step, depth int) error {
	if len(steps) == 0 {
		return nil
	}
	if depth > m.limits.MaxDepth {
		return &FieldError{Path: parent.field("steps").String(), Msg: "nested deeper than the limit of " + strconv.Itoa(m.limits.MaxDepth), Err: ErrTooLarge}
	}
	for i := range steps {
		s := &steps[i]
		p := parent.index("steps", i)
		if len(d.nodes) > m.limits.MaxSteps {
			return &FieldError{Path: p.String(), Msg: "more than the limit of " + strconv.Itoa(m.limits.MaxSteps) + " steps", Err: ErrTooLarge}
		}
		if s.Name == "" {
			return p.field("name").errorf("required")
		}
		if s.ID != "" {
			for j := range i {
				if steps[j].ID == s.ID {
					// Not parent.index(j): it would reuse p's backing array.
					return p.field("id").errorf("duplicates steps[" + strconv.Itoa(j) + "].id (" + strconv.Quote(s.ID) + "); sibling ids must be unique")
				}
			}
		}
		if s.SpanID != "" {
			if _, err := trace.SpanIDFromHex(s.SpanID); err != nil {
				return p.field("span_id").errorf("must be 16 lowercase hex characters, not all zero")
			}
		}
		if s.Usage != nil {
			if s.Usage.InputTokens != nil && *s.Usage.InputTokens < 0 {
				return p.field("usage").field("input_tokens").errorf("must not be negative")
			}
			if s.Usage.OutputTokens != nil && *s.Usage.OutputTokens < 0 {
				return p.field("usage").field("output_tokens").errorf("must not be negative")
			}
		}
		if s.Cost != nil && (*s.Cost < 0 || math.IsInf(*s.Cost, 0)) {
			return p.field("cost").errorf("must be a non-negative number")
		}
		d.nodes = append(d.nodes, node{})
		if err := d.validateExecution(p, &d.nodes[len(d.nodes)-1], &s.Execution); err != nil {
			return err
		}
		if err := m.validateSteps(p, d, s.Steps, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// validateExecution checks the fields a result and a step share, parses
// their times into n and counts what Map will copy of them.
func (d *Decoded) validateExecution(p path, n *node, e *Execution) error {
	var err error
	if e.StartedAt != "" {
		if n.start, err = time.Parse(time.RFC3339Nano, e.StartedAt); err != nil {
			return p.field("started_at").errorf("must be an RFC 3339 time, got " + strconv.Quote(e.StartedAt))
		}
	}
	if e.EndedAt != "" {
		if n.end, err = time.Parse(time.RFC3339Nano, e.EndedAt); err != nil {
			return p.field("ended_at").errorf("must be an RFC 3339 time, got " + strconv.Quote(e.EndedAt))
		}
		if e.StartedAt != "" && n.end.Before(n.start) {
			return p.field("ended_at").errorf("is before started_at")
		}
	}
	if e.LatencyMS != nil {
		ms := *e.LatencyMS
		// A duration must fit time.Duration: about 292 years.
		if ms < 0 || ms > float64(math.MaxInt64/int64(time.Millisecond)) {
			return p.field("latency_ms").errorf("must be a non-negative number of milliseconds")
		}
		n.latency = time.Duration(math.Round(ms * float64(time.Millisecond)))
		n.hasLatency = true
	}
	for k, v := range e.Metadata {
		if k == "" {
			return p.field("metadata").errorf("keys must not be empty")
		}
		switch v[0] {
		case '{', '[':
			return p.field("metadata").field(k).errorf("must be a string, number, boolean or null")
		}
		d.textBytes += len(AttrKeywordsAIMetadataPrefix) + len(k) + len(v)
	}
	d.textBytes += len(e.Input) + len(e.Output)
	d.metadata += len(e.Metadata)
	return nil
}
