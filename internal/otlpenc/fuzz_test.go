package otlpenc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzEncode generates batches of spans from the input (resources, scopes,
// every attribute type nested, events, links, statuses, kinds, flags,
// times, strings that may not be UTF-8) and exports them with the SDK's
// exporter and with Exporter, each to a client that marshals the request as
// otlptracehttp does. Both must refuse, or both requests must decode to the
// same message, ResourceSpans for ResourceSpans in bytes too.
func FuzzEncode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x03\x02\x01 every kind of thing \x00\xff\x10\x20\x30\x40\x50\x60\x70\x80\x90"))
	f.Add(bytes.Repeat([]byte{7, 3, 200, 1, 0, 9, 'a', 'b', 0xc3, 0xa9}, 40))
	f.Add(bytes.Repeat([]byte{0xff, 0x80, 5, 12}, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		spans := (&gen{data: data}).spans()
		want, wantErr := marshalled(t, func(c otlptrace.Client) sdktrace.SpanExporter {
			exp, err := otlptrace.New(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			return exp
		}, spans)
		got, gotErr := marshalled(t, func(c otlptrace.Client) sdktrace.SpanExporter { return NewExporter(c) }, spans)
		if (wantErr != nil) != (gotErr != nil) {
			t.Fatalf("SDK: %v, Exporter: %v", wantErr, gotErr)
		}
		if wantErr != nil {
			if !errors.Is(gotErr, ErrInvalidUTF8) {
				t.Fatalf("Exporter refused with %v, want ErrInvalidUTF8 (SDK: %v)", gotErr, wantErr)
			}
			return
		}
		var w, g coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(got, &g); err != nil {
			t.Fatalf("Exporter's request does not decode: %v", err)
		}
		wb, gb := sortedResourceSpans(t, &w), sortedResourceSpans(t, &g)
		if !proto.Equal(&w, &g) {
			t.Fatalf("requests differ\nExporter %v\nSDK      %v", &g, &w)
		}
		if !slices.EqualFunc(wb, gb, bytes.Equal) {
			t.Fatal("requests decode alike but their ResourceSpans' bytes differ")
		}
	})
}

// requestClient is an otlptrace.Client that marshals the request as
// otlptracehttp's client does for http/protobuf, and keeps it.
type requestClient struct{ body []byte }

func (*requestClient) Start(context.Context) error { return nil }
func (*requestClient) Stop(context.Context) error  { return nil }
func (c *requestClient) UploadTraces(_ context.Context, rs []*tracepb.ResourceSpans) error {
	var err error
	c.body, err = proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
	return err
}

// marshalled returns the request body that the exporter newExp builds
// over a requestClient makes of spans.
func marshalled(t *testing.T, newExp func(otlptrace.Client) sdktrace.SpanExporter, spans []sdktrace.ReadOnlySpan) ([]byte, error) {
	t.Helper()
	c := &requestClient{}
	err := newExp(c).ExportSpans(context.Background(), spans)
	return c.body, err
}

// sortedResourceSpans sorts req's ResourceSpans by their encoding (their
// order is not specified) and returns the encodings.
func sortedResourceSpans(t *testing.T, req *coltracepb.ExportTraceServiceRequest) [][]byte {
	t.Helper()
	type pair struct {
		rs  *tracepb.ResourceSpans
		enc []byte
	}
	ps := make([]pair, len(req.ResourceSpans))
	for i, rs := range req.ResourceSpans {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rs)
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = pair{rs, b}
	}
	slices.SortStableFunc(ps, func(a, b pair) int { return bytes.Compare(a.enc, b.enc) })
	out := make([][]byte, len(ps))
	for i, p := range ps {
		req.ResourceSpans[i], out[i] = p.rs, p.enc
	}
	return out
}

// gen makes spans of fuzzer bytes; past the end it reads zeros.
type gen struct {
	data []byte
	pos  int
}

func (g *gen) byte() byte {
	if g.pos >= len(g.data) {
		return 0
	}
	b := g.data[g.pos]
	g.pos++
	return b
}

// n returns a number in [0, max).
func (g *gen) n(max int) int { return int(g.byte()) % max }

func (g *gen) u64() uint64 {
	var b [8]byte
	for i := range b {
		b[i] = g.byte()
	}
	return binary.LittleEndian.Uint64(b[:])
}

// str returns up to 40 bytes of input, not always UTF-8; some are long.
func (g *gen) str() string {
	n := g.n(41)
	if n == 40 {
		return string(bytes.Repeat([]byte{'x'}, 200+g.n(200))) // lengths of two-byte varints
	}
	end := min(g.pos+n, len(g.data))
	s := string(g.data[min(g.pos, end):end])
	g.pos = end
	return s
}

func (g *gen) value(depth int) attribute.Value {
	kinds := 13
	if depth > 2 {
		kinds = 11 // no nesting below
	}
	switch g.n(kinds) {
	case 0:
		return attribute.Value{}
	case 1:
		return attribute.BoolValue(g.byte()&1 == 1)
	case 2:
		return attribute.Int64Value(int64(g.u64()))
	case 3:
		return attribute.Float64Value(math.Float64frombits(g.u64()))
	case 4, 5:
		return attribute.StringValue(g.str())
	case 6:
		return attribute.ByteSliceValue([]byte(g.str()))
	case 7:
		return attribute.BoolSliceValue(slice(g, func() bool { return g.byte()&1 == 1 }))
	case 8:
		return attribute.Int64SliceValue(slice(g, func() int64 { return int64(g.u64()) }))
	case 9:
		return attribute.Float64SliceValue(slice(g, func() float64 { return math.Float64frombits(g.u64()) }))
	case 10:
		return attribute.StringSliceValue(slice(g, g.str))
	case 11:
		return attribute.SliceValue(slice(g, func() attribute.Value { return g.value(depth + 1) })...)
	default:
		return attribute.MapValue(g.attrs(depth + 1)...)
	}
}

func slice[T any](g *gen, f func() T) []T {
	n := g.n(5)
	if n == 0 {
		return nil
	}
	out := make([]T, n)
	for i := range out {
		out[i] = f()
	}
	return out
}

func (g *gen) attrs(depth int) []attribute.KeyValue {
	return slice(g, func() attribute.KeyValue {
		return attribute.KeyValue{Key: attribute.Key(g.str()), Value: g.value(depth)}
	})
}

func (g *gen) time() time.Time {
	switch g.n(4) {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(0, -int64(g.u64()>>2)) // before 1970: sent as 0
	default:
		return time.Unix(0, int64(g.u64()>>1))
	}
}

func (g *gen) spanContext() trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	if g.n(8) != 0 { // now and then invalid ids, all zeros
		binary.LittleEndian.PutUint64(tid[:8], g.u64())
		tid[15] = 1
		binary.LittleEndian.PutUint64(sid[:], g.u64()|1)
	}
	states := []string{"", "a=1", "vendor=x,other=y-z"}
	ts, _ := trace.ParseTraceState(states[g.n(len(states))])
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(g.byte()), TraceState: ts, Remote: g.byte()&1 == 1,
	})
}

func (g *gen) spans() []sdktrace.ReadOnlySpan {
	resources := []*resource.Resource{nil, resource.Empty()}
	for range g.n(3) {
		resources = append(resources, resource.NewWithAttributes(g.str(), g.attrs(0)...))
	}
	scopes := []instrumentation.Scope{{}}
	for range g.n(4) {
		scopes = append(scopes, instrumentation.Scope{Name: g.str(), Version: g.str(), SchemaURL: g.str(),
			Attributes: attribute.NewSet(g.attrs(1)...)})
	}
	n := g.n(12)
	stubs := make(tracetest.SpanStubs, 0, n)
	for range n {
		s := tracetest.SpanStub{
			Name:        g.str(),
			SpanContext: g.spanContext(),
			SpanKind:    trace.SpanKind(g.n(7)),
			StartTime:   g.time(),
			EndTime:     g.time(),
			Attributes:  g.attrs(0),
			Status:      sdktrace.Status{Code: codes.Code(g.n(4)), Description: g.str()},
			// Negative and huge counts are clamped to uint32.
			DroppedAttributes: int(int32(g.u64())), DroppedEvents: int(g.u64() >> 31), DroppedLinks: g.n(3) - 1,
			Resource:             resources[g.n(len(resources))],
			InstrumentationScope: scopes[g.n(len(scopes))],
		}
		if g.byte()&1 == 1 {
			s.Parent = g.spanContext()
		}
		s.Events = slice(g, func() sdktrace.Event {
			return sdktrace.Event{Name: g.str(), Time: g.time(), Attributes: g.attrs(1), DroppedAttributeCount: g.n(3) - 1}
		})
		s.Links = slice(g, func() sdktrace.Link {
			return sdktrace.Link{SpanContext: g.spanContext(), Attributes: g.attrs(1), DroppedAttributeCount: g.n(3)}
		})
		stubs = append(stubs, s)
	}
	spans := stubs.Snapshots()
	if g.n(5) == 0 {
		spans = append(spans, nil) // the SDK skips nil spans
	}
	return spans
}
