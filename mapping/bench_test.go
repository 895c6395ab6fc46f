package mapping_test

import (
	"context"
	"os"
	"testing"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/spanferry/spanferry/mapping"
)

// benchMessage is a realistic 8-step result of about 1.5 KB.
func benchMessage(b *testing.B) []byte {
	data, err := os.ReadFile("testdata/bench-8-steps.json")
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkMap measures the mapping alone: a decoded 8-step result into a
// fresh collector (9 spans).
func BenchmarkMap(b *testing.B) {
	m := newMapper(b)
	d, err := m.Decode(benchMessage(b), mapping.Source{Stored: stored})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := m.NewCollector(d, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Map(c, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode measures decoding and validating the same message.
func BenchmarkDecode(b *testing.B) {
	m := newMapper(b)
	data := benchMessage(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Decode(data, mapping.Source{Stored: stored}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeAndMap is the whole per-message cost before export.
func BenchmarkDecodeAndMap(b *testing.B) {
	m := newMapper(b)
	data := benchMessage(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := m.Decode(data, mapping.Source{Stored: stored})
		if err != nil {
			b.Fatal(err)
		}
		c, _ := m.NewCollector(d, nil)
		if _, err := m.Map(c, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapAndEncode is the mapping plus what the OTLP/HTTP exporter
// does to the spans before it sends them: the SDK's transformation into
// OTLP protobuf messages (the otlptrace exporter otlptracehttp wraps) and
// proto.Marshal of the request. Decoding is not included (see
// BenchmarkDecode), nor the HTTP round trip (cmd/bench measures it).
func BenchmarkMapAndEncode(b *testing.B) {
	m := newMapper(b)
	d, err := m.Decode(benchMessage(b), mapping.Source{Stored: stored})
	if err != nil {
		b.Fatal(err)
	}
	var size int
	exp, err := otlptrace.New(context.Background(), marshalClient{size: &size})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := m.NewCollector(d, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Map(c, d); err != nil {
			b.Fatal(err)
		}
		if err := exp.ExportSpans(context.Background(), c.Take()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "request-bytes")
}

// marshalClient is an otlptrace.Client that encodes each request as
// otlptracehttp does and sends it nowhere.
type marshalClient struct{ size *int }

func (marshalClient) Start(context.Context) error { return nil }
func (marshalClient) Stop(context.Context) error  { return nil }
func (c marshalClient) UploadTraces(_ context.Context, rs []*tracepb.ResourceSpans) error {
	data, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
	*c.size = len(data)
	return err
}
