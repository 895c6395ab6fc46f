package otlpenc

import (
	"errors"
	"math"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers are those of opentelemetry/proto/trace/v1/trace.proto and
// common/v1/common.proto.

// ErrInvalidUTF8 is what proto.Marshal refuses too: OTLP strings must be
// valid UTF-8.
var ErrInvalidUTF8 = errors.New("otlp: string field contains invalid UTF-8")

// resourceGroup is the spans of one resource, by scope, in first-seen order.
type resourceGroup struct {
	res    *resource.Resource
	key    attribute.Distinct
	scopes []scopeGroup
}

type scopeGroup struct {
	scope instrumentation.Scope
	spans []sdktrace.ReadOnlySpan
}

// Encoder writes batches of spans as OTLP ResourceSpans. It holds the
// scratch space of one encoding at a time and is reused: an Exporter keeps
// idle encoders, as a sync.Pool would drop them at every garbage collection
// and a request's buffer (about 1 MB for 200 results) would grow from
// nothing again, zeroed, by doubling. The zero Encoder is ready to use.
type Encoder struct {
	groups []resourceGroup
	buf    []byte
	err    error
}

// maxKeptBuffer bounds the buffer an idle encoder keeps.
const maxKeptBuffer = 16 << 20

// Reset drops the references to the spans of the last encoding, so that a
// kept encoder does not keep them alive, and invalidates what Encode
// returned.
func (e *Encoder) Reset() {
	for i := range e.groups {
		for j := range e.groups[i].scopes {
			clear(e.groups[i].scopes[j].spans)
			e.groups[i].scopes[j].spans = e.groups[i].scopes[j].spans[:0]
		}
		e.groups[i].scopes = e.groups[i].scopes[:0]
		e.groups[i].res = nil
	}
	e.groups, e.err = e.groups[:0], nil
	if cap(e.buf) > maxKeptBuffer {
		e.buf = nil
	}
}

// Encode returns the content of one ResourceSpans message per resource of
// spans (its fields without its own tag and length), in the order the
// resources are first seen, each a slice of e's buffer, valid until Reset
// or the next Encode. It fails, as proto.Marshal does, on a string that is
// not valid UTF-8.
func (e *Encoder) Encode(spans []sdktrace.ReadOnlySpan) ([][]byte, error) {
	e.group(spans)
	b := e.buf[:0]
	ends := make([]int, 0, len(e.groups))
	for i := range e.groups {
		b = e.appendResourceSpans(b, &e.groups[i])
		ends = append(ends, len(b))
	}
	e.buf = b
	if e.err != nil {
		return nil, e.err
	}
	out := make([][]byte, len(ends))
	start := 0
	for i, end := range ends {
		out[i], start = e.buf[start:end:end], end
	}
	return out, nil
}

// group sorts spans by resource (equal attributes are one resource) and
// scope, as the SDK's transformation does.
func (e *Encoder) group(spans []sdktrace.ReadOnlySpan) {
	var last *resourceGroup
	var lastRes *resource.Resource
	for _, s := range spans {
		if s == nil {
			continue
		}
		res := s.Resource()
		g := last
		if last == nil || res != lastRes {
			key := res.Equivalent()
			g = nil
			for i := range e.groups {
				if e.groups[i].key == key {
					g = &e.groups[i]
					break
				}
			}
			if g == nil {
				g = e.newGroup()
				g.res, g.key = res, key
			}
			last, lastRes = g, res
		}
		scope := s.InstrumentationScope()
		var sg *scopeGroup
		for i := range g.scopes {
			if g.scopes[i].scope == scope {
				sg = &g.scopes[i]
				break
			}
		}
		if sg == nil {
			sg = g.newScope()
			sg.scope = scope
		}
		sg.spans = append(sg.spans, s)
	}
}

// newGroup appends a group, reusing the scratch space of an earlier
// encoding. Pointers to groups are valid until the next call.
func (e *Encoder) newGroup() *resourceGroup {
	if len(e.groups) < cap(e.groups) {
		e.groups = e.groups[:len(e.groups)+1]
	} else {
		e.groups = append(e.groups, resourceGroup{})
	}
	return &e.groups[len(e.groups)-1]
}

func (g *resourceGroup) newScope() *scopeGroup {
	if len(g.scopes) < cap(g.scopes) {
		g.scopes = g.scopes[:len(g.scopes)+1]
	} else {
		g.scopes = append(g.scopes, scopeGroup{})
	}
	return &g.scopes[len(g.scopes)-1]
}

// The append functions take the buffer and return it grown, as
// protowire's do: kept in a local variable, it is written to the heap
// (e.buf) once per encoding instead of once per field, which matters to
// the write barrier while the garbage collector marks.

func (e *Encoder) appendResourceSpans(b []byte, g *resourceGroup) []byte {
	if g.res != nil {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeResource(g.res)))
		for it := g.res.Iter(); it.Next(); {
			kv := it.Attribute()
			b = e.appendKeyValue(b, 1, &kv)
		}
	}
	for i := range g.scopes {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		var start int
		b, start = reserve(b, 3) // a request of 16 KiB to 2 MiB
		b = e.appendScopeSpans(b, &g.scopes[i])
		b = fixLength(b, start, 3)
	}
	if g.res != nil {
		b = e.appendString(b, 3, g.res.SchemaURL())
	}
	return b
}

func sizeResource(r *resource.Resource) int {
	n := 0
	for it := r.Iter(); it.Next(); {
		n += sizeMessage(1, sizeKeyValue(it.Attribute()))
	}
	return n
}

func (e *Encoder) appendScopeSpans(b []byte, sg *scopeGroup) []byte {
	if sg.scope != (instrumentation.Scope{}) {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeScope(sg.scope)))
		b = e.appendString(b, 1, sg.scope.Name)
		b = e.appendString(b, 2, sg.scope.Version)
		for it := sg.scope.Attributes.Iter(); it.Next(); {
			kv := it.Attribute()
			b = e.appendKeyValue(b, 3, &kv)
		}
	}
	for _, s := range sg.spans {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		var start int
		b, start = reserve(b, 2) // a span of 128 bytes to 16 KiB
		b = e.appendSpan(b, s)
		b = fixLength(b, start, 2)
	}
	return e.appendString(b, 3, sg.scope.SchemaURL)
}

func sizeScope(s instrumentation.Scope) int {
	n := sizeString(1, s.Name) + sizeString(2, s.Version)
	for it := s.Attributes.Iter(); it.Next(); {
		n += sizeMessage(3, sizeKeyValue(it.Attribute()))
	}
	return n
}

// Span fields.
const (
	spanTraceID      = 1
	spanSpanID       = 2
	spanTraceState   = 3
	spanParentSpanID = 4
	spanName         = 5
	spanKind         = 6
	spanStart        = 7
	spanEnd          = 8
	spanAttributes   = 9
	spanDroppedAttrs = 10
	spanEvents       = 11
	spanDroppedEvts  = 12
	spanLinks        = 13
	spanDroppedLinks = 14
	spanStatus       = 15
	spanFlags        = 16
)

func (e *Encoder) appendSpan(b []byte, s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = protowire.AppendTag(b, spanTraceID, protowire.BytesType)
	b = protowire.AppendBytes(b, tid[:])
	b = protowire.AppendTag(b, spanSpanID, protowire.BytesType)
	b = protowire.AppendBytes(b, sid[:])
	if ts := sc.TraceState(); ts.Len() > 0 {
		b = e.appendString(b, spanTraceState, ts.String())
	}
	parent := s.Parent()
	if psid := parent.SpanID(); psid.IsValid() {
		b = protowire.AppendTag(b, spanParentSpanID, protowire.BytesType)
		b = protowire.AppendBytes(b, psid[:])
	}
	b = e.appendString(b, spanName, s.Name())
	b = appendVarint(b, spanKind, uint64(otlpKind(s.SpanKind())))
	b = appendFixed64(b, spanStart, unixNano(s.StartTime()))
	b = appendFixed64(b, spanEnd, unixNano(s.EndTime()))
	attrs := s.Attributes()
	for i := range attrs {
		b = e.appendKeyValue(b, spanAttributes, &attrs[i])
	}
	b = appendVarint(b, spanDroppedAttrs, uint64(clampUint32(s.DroppedAttributes())))
	for _, ev := range s.Events() {
		b = protowire.AppendTag(b, spanEvents, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeEvent(ev)))
		b = appendFixed64(b, 1, unixNano(ev.Time))
		b = e.appendString(b, 2, ev.Name)
		for i := range ev.Attributes {
			b = e.appendKeyValue(b, 3, &ev.Attributes[i])
		}
		b = appendVarint(b, 4, uint64(clampUint32(ev.DroppedAttributeCount)))
	}
	b = appendVarint(b, spanDroppedEvts, uint64(clampUint32(s.DroppedEvents())))
	for _, l := range s.Links() {
		b = protowire.AppendTag(b, spanLinks, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeLink(l)))
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, ltid[:])
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, lsid[:])
		for i := range l.Attributes {
			b = e.appendKeyValue(b, 4, &l.Attributes[i])
		}
		b = appendVarint(b, 5, uint64(clampUint32(l.DroppedAttributeCount)))
		b = protowire.AppendTag(b, 6, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, flags(l.SpanContext.TraceFlags(), l.SpanContext))
	}
	b = appendVarint(b, spanDroppedLinks, uint64(clampUint32(s.DroppedLinks())))
	st := s.Status()
	b = protowire.AppendTag(b, spanStatus, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeStatus(st)))
	b = e.appendString(b, 2, st.Description)
	b = appendVarint(b, 3, uint64(otlpStatusCode(st.Code)))
	b = protowire.AppendTag(b, spanFlags, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, flags(sc.TraceFlags(), parent))
}

func sizeEvent(ev sdktrace.Event) int {
	n := sizeFixed64(1, unixNano(ev.Time)) + sizeString(2, ev.Name)
	for _, kv := range ev.Attributes {
		n += sizeMessage(3, sizeKeyValue(kv))
	}
	return n + sizeVarint(4, uint64(clampUint32(ev.DroppedAttributeCount)))
}

// sizeLink is the size of a Link: like the SDK's transformation, it leaves
// the linked span's trace state out.
func sizeLink(l sdktrace.Link) int {
	n := sizeMessage(1, len(trace.TraceID{})) + sizeMessage(2, len(trace.SpanID{}))
	for _, kv := range l.Attributes {
		n += sizeMessage(4, sizeKeyValue(kv))
	}
	n += sizeVarint(5, uint64(clampUint32(l.DroppedAttributeCount)))
	return n + protowire.SizeTag(6) + 4
}

func sizeStatus(st sdktrace.Status) int {
	return sizeString(2, st.Description) + sizeVarint(3, uint64(otlpStatusCode(st.Code)))
}

// KeyValue: key = 1, value = 2 (always present, possibly empty).
func sizeKeyValue(kv attribute.KeyValue) int {
	return sizeString(1, string(kv.Key)) + sizeMessage(2, sizeValue(kv.Value))
}

// appendKeyValue takes kv by pointer: a KeyValue is 64 bytes, and there
// are a hundred per result.
func (e *Encoder) appendKeyValue(b []byte, field protowire.Number, kv *attribute.KeyValue) []byte {
	if kv.Value.Type() == attribute.STRING {
		return e.appendStringKeyValue(b, field, string(kv.Key), kv.Value.AsString())
	}
	vsize := sizeValue(kv.Value)
	b = protowire.AppendTag(b, field, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeString(1, string(kv.Key))+sizeMessage(2, vsize)))
	b = e.appendString(b, 1, string(kv.Key))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(vsize))
	return e.appendValue(b, kv.Value)
}

// appendStringKeyValue is appendKeyValue for a string value, most of
// them, in one go.
func (e *Encoder) appendStringKeyValue(b []byte, field protowire.Number, key, value string) []byte {
	if !utf8.ValidString(key) || !utf8.ValidString(value) {
		e.err = ErrInvalidUTF8
	}
	vsize := 1 + protowire.SizeBytes(len(value)) // tag anyString, length, bytes
	size := sizeString(1, key) + 1 + protowire.SizeBytes(vsize)
	b = appendLength(b, int(protowire.EncodeTag(field, protowire.BytesType)))
	b = appendLength(b, size)
	if key != "" {
		b = append(b, 1<<3|byte(protowire.BytesType))
		b = appendLength(b, len(key))
		b = append(b, key...)
	}
	b = append(b, 2<<3|byte(protowire.BytesType))
	b = appendLength(b, vsize)
	b = append(b, anyString<<3|byte(protowire.BytesType))
	b = appendLength(b, len(value))
	return append(b, value...)
}

// appendLength is protowire.AppendVarint for a length or a tag, inlined
// for the one-byte lengths of most keys and values and the tags of fields
// numbered below 16.
func appendLength(b []byte, n int) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	return protowire.AppendVarint(b, uint64(n))
}

// AnyValue fields: a oneof, so a zero value is written too.
const (
	anyString = 1
	anyBool   = 2
	anyInt    = 3
	anyDouble = 4
	anyArray  = 5
	anyKVList = 6
	anyBytes  = 7
)

// invalidValue is what the SDK's transformation sends for a value of an
// unknown type.
const invalidValue = "INVALID"

func sizeValue(v attribute.Value) int {
	switch v.Type() {
	case attribute.EMPTY:
		return 0
	case attribute.BOOL:
		return protowire.SizeTag(anyBool) + 1
	case attribute.INT64:
		return protowire.SizeTag(anyInt) + protowire.SizeVarint(uint64(v.AsInt64()))
	case attribute.FLOAT64:
		return protowire.SizeTag(anyDouble) + 8
	case attribute.STRING:
		return protowire.SizeTag(anyString) + protowire.SizeBytes(len(v.AsString()))
	case attribute.BYTESLICE:
		return protowire.SizeTag(anyBytes) + protowire.SizeBytes(len(v.AsByteSlice()))
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE, attribute.SLICE:
		n := 0
		for _, el := range elements(v) {
			n += sizeMessage(1, sizeValue(el))
		}
		return sizeMessage(anyArray, n)
	case attribute.MAP:
		n := 0
		for _, kv := range v.AsMap() {
			n += sizeMessage(1, sizeKeyValue(kv))
		}
		return sizeMessage(anyKVList, n)
	default:
		return protowire.SizeTag(anyString) + protowire.SizeBytes(len(invalidValue))
	}
}

func (e *Encoder) appendValue(b []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.EMPTY:
	case attribute.BOOL:
		b = protowire.AppendTag(b, anyBool, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(v.AsBool()))
	case attribute.INT64:
		b = protowire.AppendTag(b, anyInt, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v.AsInt64()))
	case attribute.FLOAT64:
		b = protowire.AppendTag(b, anyDouble, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		b = e.appendOneofString(b, anyString, v.AsString())
	case attribute.BYTESLICE:
		b = protowire.AppendTag(b, anyBytes, protowire.BytesType)
		b = protowire.AppendBytes(b, v.AsByteSlice())
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE, attribute.SLICE:
		els := elements(v)
		n := 0
		for _, el := range els {
			n += sizeMessage(1, sizeValue(el))
		}
		b = protowire.AppendTag(b, anyArray, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		for _, el := range els {
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(sizeValue(el)))
			b = e.appendValue(b, el)
		}
	case attribute.MAP:
		kvs := v.AsMap()
		n := 0
		for _, kv := range kvs {
			n += sizeMessage(1, sizeKeyValue(kv))
		}
		b = protowire.AppendTag(b, anyKVList, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		for i := range kvs {
			b = e.appendKeyValue(b, 1, &kvs[i])
		}
	default:
		b = e.appendOneofString(b, anyString, invalidValue)
	}
	return b
}

// elements returns the elements of a slice value as values.
func elements(v attribute.Value) []attribute.Value {
	switch v.Type() {
	case attribute.BOOLSLICE:
		return convert(v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		return convert(v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		return convert(v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		return convert(v.AsStringSlice(), attribute.StringValue)
	default:
		return v.AsSlice()
	}
}

func convert[T any](s []T, f func(T) attribute.Value) []attribute.Value {
	out := make([]attribute.Value, len(s))
	for i, x := range s {
		out[i] = f(x)
	}
	return out
}

// reserve appends n bytes for the length of the message that follows and
// returns where they are. Messages are written before their length is
// known, so that each is walked once; fixLength then writes the length.
func reserve(b []byte, n int) ([]byte, int) {
	start := len(b)
	for range n {
		b = append(b, 0)
	}
	return b, start
}

// fixLength writes the length of the message after the n bytes reserved at
// start, moving the message when its length takes another number of bytes.
func fixLength(b []byte, start, n int) []byte {
	size := len(b) - start - n
	need := protowire.SizeVarint(uint64(size))
	if need != n {
		if need > n {
			b = append(b, make([]byte, need-n)...)
		}
		copy(b[start+need:], b[start+n:start+n+size])
		b = b[:start+need+size]
	}
	protowire.AppendVarint(b[start:start], uint64(size)) // in place: the room is there
	return b
}

// sizeMessage is the size of a length-delimited field of n bytes.
func sizeMessage(field protowire.Number, n int) int {
	return protowire.SizeTag(field) + protowire.SizeBytes(n)
}

// sizeString is the size of a string field; proto3 leaves "" out.
func sizeString(field protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return sizeMessage(field, len(s))
}

func (e *Encoder) appendString(b []byte, field protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return e.appendOneofString(b, field, s)
}

// appendOneofString writes s even when empty, as a oneof member is.
func (e *Encoder) appendOneofString(b []byte, field protowire.Number, s string) []byte {
	if !utf8.ValidString(s) {
		e.err = ErrInvalidUTF8
	}
	b = appendLength(b, int(protowire.EncodeTag(field, protowire.BytesType)))
	b = appendLength(b, len(s))
	return append(b, s...)
}

func sizeVarint(field protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(field) + protowire.SizeVarint(v)
}

func appendVarint(b []byte, field protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func sizeFixed64(field protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(field) + 8
}

func appendFixed64(b []byte, field protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

// The conversions below are the SDK transformation's.

func unixNano(t time.Time) uint64 {
	return uint64(max(0, t.UnixNano()))
}

func clampUint32(v int) uint32 {
	if v < 0 {
		return 0
	}
	if int64(v) > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

// flags are the W3C trace flags, with the bit saying whether the parent is
// remote known, and set when it is.
func flags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	const hasIsRemote, isRemote = 0x100, 0x200
	f := uint32(tf) | hasIsRemote
	if parent.IsRemote() {
		f |= isRemote
	}
	return f
}

func otlpStatusCode(c codes.Code) int32 {
	switch c {
	case codes.Ok:
		return 1
	case codes.Error:
		return 2
	}
	return 0
}

func otlpKind(k trace.SpanKind) int32 {
	switch k {
	case trace.SpanKindInternal:
		return 1
	case trace.SpanKindServer:
		return 2
	case trace.SpanKindClient:
		return 3
	case trace.SpanKindProducer:
		return 4
	case trace.SpanKindConsumer:
		return 5
	}
	return 0
}
