package otlpenc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/spanferry/spanferry/mapping"
)

// capture is an otlptrace.Client that keeps what the SDK's exporter
// would send.
type capture struct{ got []*tracepb.ResourceSpans }

func (*capture) Start(context.Context) error { return nil }
func (*capture) Stop(context.Context) error  { return nil }
func (c *capture) UploadTraces(_ context.Context, rs []*tracepb.ResourceSpans) error {
	c.got = rs
	return nil
}

// sdkEncoding returns the ResourceSpans the SDK's OTLP exporter makes of
// spans, each marshalled.
func sdkEncoding(t *testing.T, spans []sdktrace.ReadOnlySpan) [][]byte {
	t.Helper()
	c := &capture{}
	exp, err := otlptrace.New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, rs := range c.got {
		data, err := proto.Marshal(rs)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// ownEncoding returns the ResourceSpans contents of the encoder.
func ownEncoding(t *testing.T, spans []sdktrace.ReadOnlySpan) [][]byte {
	t.Helper()
	enc := new(Encoder)
	got, err := enc.Encode(spans)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(got))
	for i, g := range got {
		out[i] = bytes.Clone(g)
	}
	return out
}

// sameEncoding checks that the encoder writes the bytes proto.Marshal
// writes of the SDK's transformation, ResourceSpans by ResourceSpans (the
// SDK orders them at random).
func sameEncoding(t *testing.T, what string, spans []sdktrace.ReadOnlySpan) {
	t.Helper()
	want, got := sdkEncoding(t, spans), ownEncoding(t, spans)
	slices.SortFunc(want, bytes.Compare)
	slices.SortFunc(got, bytes.Compare)
	if len(got) != len(want) {
		t.Fatalf("%s: %d ResourceSpans, the SDK makes %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			var g, w tracepb.ResourceSpans
			_ = proto.Unmarshal(got[i], &g)
			_ = proto.Unmarshal(want[i], &w)
			t.Fatalf("%s: ResourceSpans %d differs\ngot  %v\nwant %v", what, i, &g, &w)
		}
	}
}

// results returns the results of an example file: a .json is one, each
// line of a .jsonl another.
func results(t *testing.T, file string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(file, ".jsonl") {
		return [][]byte{data}
	}
	var out [][]byte
	for line := range bytes.Lines(data) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out = append(out, line)
		}
	}
	return out
}

// TestEncodingOfMappedResults encodes every example result, alone and all
// in one batch, under two mapping configurations (the second with a
// resource of its own and attribute values cut short), with and without a
// traceparent: the bytes must be the SDK's.
func TestEncodingOfMappedResults(t *testing.T) {
	base, err := resource.New(context.Background(), resource.WithAttributes(
		attribute.String("deployment.environment", "test"), attribute.Int("k8s.replicas", 3)),
		resource.WithSchemaURL("https://opentelemetry.io/schemas/1.26.0"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../examples/*.json")
	more, _ := filepath.Glob("../../mapping/testdata/*.json")
	bench, _ := filepath.Glob("../../internal/benchdata/*.json")
	files = append(append(append(files, more...), bench...), "../../examples/batch.jsonl")
	for _, opts := range [][]mapping.Option{nil, {mapping.WithResource(base), mapping.WithLimits(mapping.Limits{MaxAttrValueLen: 10})}} {
		m, err := mapping.New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		var all []sdktrace.ReadOnlySpan
		for _, file := range files {
			for i, data := range results(t, file) {
				file := fmt.Sprintf("%s#%d", file, i+1)
				for _, tp := range []string{"", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"} {
					d, err := m.Decode(data, mapping.Source{Traceparent: tp, Stored: time.Unix(1_800_000_000, 0)})
					if err != nil {
						t.Fatalf("%s: %v", file, err)
					}
					c, err := m.NewCollector(d, nil)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := m.Map(c, d); err != nil {
						t.Fatal(err)
					}
					spans := c.Take()
					sameEncoding(t, file, spans)
					all = append(all, spans...)
				}
			}
		}
		// A batch of every result: several services, so several resources.
		sameEncoding(t, "batch", all)
	}
}

func TestEncodingOfEveryField(t *testing.T) {
	tid := trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	ts, _ := trace.ParseTraceState("vendor=a,other=b")
	sc := func(sid byte, remote bool) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{sid, 1}, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: remote})
	}
	values := []attribute.KeyValue{
		attribute.Bool("b", true), attribute.Bool("f", false),
		attribute.Int64("i", -42), attribute.Int64("zero", 0), attribute.Int64("big", 1<<62),
		attribute.Float64("d", 3.25), attribute.Float64("dz", 0),
		attribute.String("s", "ünïcode"), attribute.String("empty", ""),
		attribute.BoolSlice("bs", []bool{true, false}), attribute.Int64Slice("is", []int64{1, -1}),
		attribute.Float64Slice("fs", []float64{0.5}), attribute.StringSlice("ss", []string{"a", ""}),
		attribute.StringSlice("none", nil),
		{Key: "bytes", Value: attribute.ByteSliceValue([]byte{0, 1, 2})},
		{Key: "slice", Value: attribute.SliceValue(attribute.StringValue("x"), attribute.IntValue(7), attribute.SliceValue())},
		{Key: "map", Value: attribute.MapValue(attribute.String("k", "v"), attribute.Bool("nested", true))},
		{Key: "nothing", Value: attribute.Value{}},
		{Key: "", Value: attribute.StringValue("no key")},
	}
	res := resource.NewWithAttributes("https://schema/1", attribute.String("service.name", "a"))
	other := resource.NewSchemaless(attribute.String("service.name", "b"))
	scopeA := instrumentation.Scope{Name: "a", Version: "1.0", SchemaURL: "https://schema/scope",
		Attributes: attribute.NewSet(attribute.String("scope.attr", "x"))}
	scopeB := instrumentation.Scope{Name: "b"}
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 123, time.UTC)
	stubs := tracetest.SpanStubs{
		{
			Name: "everything", SpanContext: sc(1, false), Parent: sc(2, true), SpanKind: trace.SpanKindServer,
			StartTime: t0, EndTime: t0.Add(time.Second), Attributes: values,
			Events: []sdktrace.Event{
				{Name: "exception", Time: t0, Attributes: values[:3], DroppedAttributeCount: 2},
				{Name: ""},
			},
			Links: []sdktrace.Link{
				{SpanContext: sc(3, true), Attributes: values[5:8], DroppedAttributeCount: 1},
				{SpanContext: sc(4, false)},
			},
			Status:            sdktrace.Status{Code: codes.Error, Description: "boom"},
			DroppedAttributes: 3, DroppedEvents: 4, DroppedLinks: 5, ChildSpanCount: 2,
			Resource: res, InstrumentationScope: scopeA,
		},
		{Name: "ok", SpanContext: sc(5, false), SpanKind: trace.SpanKindClient, StartTime: t0, EndTime: t0,
			Status: sdktrace.Status{Code: codes.Ok}, Resource: other, InstrumentationScope: scopeB},
		{Name: "", SpanContext: sc(6, false), Parent: sc(1, false), Resource: res, InstrumentationScope: scopeB},
		{Name: "no scope", SpanContext: sc(7, false), SpanKind: trace.SpanKindProducer, StartTime: time.Unix(0, 0).Add(-time.Hour),
			EndTime: t0, Resource: res},
		{Name: "no resource", SpanContext: sc(8, false), SpanKind: trace.SpanKindConsumer, InstrumentationScope: scopeA},
		{Name: "same resource, another pointer", SpanContext: sc(9, false),
			Resource: resource.NewWithAttributes("https://schema/1", attribute.String("service.name", "a")), InstrumentationScope: scopeA},
		{Name: "scope A under res again, unsampled, unset status with a description", SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{11}}),
			Status: sdktrace.Status{Code: codes.Unset, Description: "kept as given"}, Resource: res, InstrumentationScope: scopeA,
			Attributes: []attribute.KeyValue{{Key: "nest", Value: attribute.SliceValue(attribute.MapValue(attribute.Float64Slice("f", []float64{-1.5, 2})), attribute.ByteSliceValue(nil))}},
			Events:     []sdktrace.Event{{Name: "late", Time: t0.Add(time.Hour), Attributes: []attribute.KeyValue{{Key: "m", Value: attribute.MapValue()}}}}},
		{Name: "a third scope", SpanContext: sc(12, true), Resource: other, InstrumentationScope: instrumentation.Scope{Name: "c", Version: "2", SchemaURL: "https://schema/c"},
			Links: []sdktrace.Link{{SpanContext: trace.SpanContext{}}}},
		{Name: "unspecified kind", SpanContext: sc(10, false), SpanKind: trace.SpanKindUnspecified, Resource: other,
			Attributes: []attribute.KeyValue{attribute.String("long", string(bytes.Repeat([]byte("x"), 70_000)))}},
	}
	spans := stubs.Snapshots()
	sameEncoding(t, "every field", spans)
	for i := range spans {
		sameEncoding(t, stubs[i].Name, spans[i:i+1])
	}
	sameEncoding(t, "nil spans", []sdktrace.ReadOnlySpan{nil, spans[0], nil})
	if got := ownEncoding(t, nil); len(got) != 0 {
		t.Errorf("no spans encode to %d ResourceSpans", len(got))
	}
}

func TestEncodingRefusesInvalidUTF8(t *testing.T) {
	for _, stub := range []tracetest.SpanStub{
		{Name: "bad \xff name"},
		{Name: "ok", Attributes: []attribute.KeyValue{attribute.String("k", "bad \xff value")}},
		{Name: "ok", Attributes: []attribute.KeyValue{attribute.String("bad \xff key", "v")}},
	} {
		stub.SpanContext = trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})
		_, err := new(Encoder).Encode([]sdktrace.ReadOnlySpan{stub.Snapshot()})
		if !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("%+v: err = %v, want ErrInvalidUTF8", stub.Attributes, err)
		}
	}
}

// TestCarriedRequestIsTheEncoding checks the carrier: a ResourceSpans
// whose content is its unknown fields marshals as that content.
func TestCarriedRequestIsTheEncoding(t *testing.T) {
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	data := benchResult(t)
	d, err := m.Decode(data, mapping.Source{})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := m.NewCollector(d, nil)
	if _, err := m.Map(c, d); err != nil {
		t.Fatal(err)
	}
	spans := c.Take()
	contents := ownEncoding(t, spans)
	rs := &tracepb.ResourceSpans{}
	rs.ProtoReflect().SetUnknown(protoreflect.RawFields(contents[0]))
	got, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs}})
	if err != nil {
		t.Fatal(err)
	}
	cap := &capture{}
	exp, _ := otlptrace.New(context.Background(), cap)
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	want, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: cap.got})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the carried request differs from the SDK's")
	}
}

func BenchmarkEncode(b *testing.B) {
	m, _ := mapping.New()
	data := benchResult(b)
	var spans []sdktrace.ReadOnlySpan
	for range 200 {
		// Each result decoded on its own, as the worker's are: strings
		// shared by the spans of one result, not by every result.
		d, _ := m.Decode(data, mapping.Source{})
		c, _ := m.NewCollector(d, nil)
		_, _ = m.Map(c, d)
		spans = append(spans, c.Take()...)
	}
	b.Run("sdk", func(b *testing.B) {
		exp, _ := otlptrace.New(context.Background(), marshalOnly{})
		b.ReportAllocs()
		for b.Loop() {
			_ = exp.ExportSpans(context.Background(), spans)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/200, "ns/result")
	})
	b.Run("own", func(b *testing.B) {
		exp := NewExporter(marshalOnly{})
		b.ReportAllocs()
		for b.Loop() {
			_ = exp.ExportSpans(context.Background(), spans)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/200, "ns/result")
	})
}

// marshalOnly is an otlptrace.Client that marshals the request as
// otlptracehttp does and sends it nowhere.
type marshalOnly struct{}

func (marshalOnly) Start(context.Context) error { return nil }
func (marshalOnly) Stop(context.Context) error  { return nil }
func (marshalOnly) UploadTraces(_ context.Context, rs []*tracepb.ResourceSpans) error {
	_, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
	return err
}

// TestEncoderReuse encodes batches of shrinking shape with one encoder, as
// an exporter reuses its encoders: nothing of an earlier batch may leak
// into a later one.
func TestEncoderReuse(t *testing.T) {
	mk := func(name string, res *resource.Resource, scope string) sdktrace.ReadOnlySpan {
		return tracetest.SpanStub{
			Name:        name,
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{byte(len(name))}}),
			Resource:    res, InstrumentationScope: instrumentation.Scope{Name: scope},
		}.Snapshot()
	}
	a := resource.NewSchemaless(attribute.String("service.name", "a"))
	b := resource.NewSchemaless(attribute.String("service.name", "b"))
	batches := [][]sdktrace.ReadOnlySpan{
		{mk("1", a, "x"), mk("22", b, "y"), mk("333", a, "z"), mk("4444", b, "x")},
		{mk("55555", b, "y")},
		{},
		{mk("666666", a, "x"), mk("7777777", a, "x")},
	}
	enc := new(Encoder)
	for i, batch := range batches {
		got, err := enc.Encode(batch)
		if err != nil {
			t.Fatal(err)
		}
		want := ownEncoding(t, batch)
		if len(got) != len(want) {
			t.Fatalf("batch %d: %d ResourceSpans after reuse, %d fresh", i, len(got), len(want))
		}
		for j := range want {
			if !bytes.Equal(got[j], want[j]) {
				t.Fatalf("batch %d: ResourceSpans %d differs after reuse", i, j)
			}
		}
		enc.Reset()
		for _, g := range enc.groups[:cap(enc.groups)] {
			for _, sg := range g.scopes[:cap(g.scopes)] {
				for _, s := range sg.spans[:cap(sg.spans)] {
					if s != nil {
						t.Fatalf("batch %d: a reset encoder still holds span %q", i, s.Name())
					}
				}
			}
		}
	}
}
