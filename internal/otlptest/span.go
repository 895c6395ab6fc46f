package otlptest

import (
	"encoding/hex"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Span is a decoded span made easy to assert on.
type Span struct {
	// TraceID, SpanID and ParentSpanID are lowercase hex; ParentSpanID is ""
	// for a root span.
	TraceID, SpanID, ParentSpanID string
	Name                          string
	Kind                          tracepb.Span_SpanKind
	// Start and End are in UTC, exact to the nanosecond; zero when unset.
	Start, End time.Time
	// Attributes holds string, int64, float64, bool and []byte values; arrays
	// are []any and key-value lists map[string]any.
	Attributes map[string]any
	// Resource holds the resource attributes, converted as Attributes.
	Resource map[string]any
	// Scope is the instrumentation scope name.
	Scope         string
	StatusCode    tracepb.Status_StatusCode
	StatusMessage string
	Events        []Event
	// Proto is the decoded span, for the fields not copied above.
	Proto *tracepb.Span
}

// Event is a decoded span event.
type Event struct {
	Name       string
	Time       time.Time
	Attributes map[string]any
}

// Event returns the first event of s named name, and whether there is one.
func (s Span) Event(name string) (Event, bool) {
	for _, e := range s.Events {
		if e.Name == name {
			return e, true
		}
	}
	return Event{}, false
}

// Spans returns the spans of req, flattened in order.
func Spans(req *coltracepb.ExportTraceServiceRequest) []Span {
	return appendSpans(nil, req)
}

func appendSpans(out []Span, req *coltracepb.ExportTraceServiceRequest) []Span {
	for _, rs := range req.GetResourceSpans() {
		res := attributes(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			scope := ss.GetScope().GetName()
			for _, sp := range ss.GetSpans() {
				out = append(out, convertSpan(sp, res, scope))
			}
		}
	}
	return out
}

func convertSpan(sp *tracepb.Span, res map[string]any, scope string) Span {
	s := Span{
		TraceID:       hex.EncodeToString(sp.GetTraceId()),
		SpanID:        hex.EncodeToString(sp.GetSpanId()),
		ParentSpanID:  hex.EncodeToString(sp.GetParentSpanId()),
		Name:          sp.GetName(),
		Kind:          sp.GetKind(),
		Start:         unixNano(sp.GetStartTimeUnixNano()),
		End:           unixNano(sp.GetEndTimeUnixNano()),
		Attributes:    attributes(sp.GetAttributes()),
		Resource:      res,
		Scope:         scope,
		StatusCode:    sp.GetStatus().GetCode(),
		StatusMessage: sp.GetStatus().GetMessage(),
		Proto:         sp,
	}
	for _, e := range sp.GetEvents() {
		s.Events = append(s.Events, Event{
			Name:       e.GetName(),
			Time:       unixNano(e.GetTimeUnixNano()),
			Attributes: attributes(e.GetAttributes()),
		})
	}
	return s
}

func unixNano(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(ns)).UTC() //nolint:gosec // OTLP times fit in int64 until 2262
}

func attributes(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	case *commonpb.AnyValue_ArrayValue:
		arr := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			arr = append(arr, value(e))
		}
		return arr
	case *commonpb.AnyValue_KvlistValue:
		return attributes(x.KvlistValue.GetValues())
	default:
		return nil
	}
}
