package consumer_test

import (
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/benchdata"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/mapping"
)

// BenchmarkMapAndEncode is the worker's work per result between decoding
// and the network: the mapping of a decoded 8-step result, and its share
// of an export request of 200 results as the exporter builds it (OTLP
// protobuf encoding, the HTTP request), sent to a transport that answers
// 200 at once: consumer.NewExporter's as the worker builds it (own), and
// otlptracehttp.New's (sdk). The figures that matter are per result (an op
// is 200).
func BenchmarkMapAndEncode(b *testing.B) {
	const batch = 200
	data := benchdata.Result8Steps
	m, err := mapping.New()
	if err != nil {
		b.Fatal(err)
	}
	d, err := m.Decode(data, mapping.Source{Stored: time.Unix(1_800_000_000, 0)})
	if err != nil {
		b.Fatal(err)
	}
	b.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces")
	client := &http.Client{Transport: otlptest.DiscardTransport{}}
	opts := []otlptracehttp.Option{otlptracehttp.WithHTTPClient(client),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false})}
	for _, e := range []struct {
		name string
		new  func(context.Context, ...otlptracehttp.Option) (sdktrace.SpanExporter, error)
	}{
		{"own", consumer.NewExporter},
		{"sdk", func(ctx context.Context, opts ...otlptracehttp.Option) (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, opts...)
		}},
	} {
		b.Run(e.name, func(b *testing.B) { benchmarkMapAndEncode(b, e.new, opts, m, d) })
	}
}

func benchmarkMapAndEncode(b *testing.B, newExp func(context.Context, ...otlptracehttp.Option) (sdktrace.SpanExporter, error),
	opts []otlptracehttp.Option, m *mapping.Mapper, d *mapping.Decoded) {
	const batch = 200
	exp, err := newExp(context.Background(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	{
		spans := make([]sdktrace.ReadOnlySpan, 0, batch*(d.Steps()+1))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for b.Loop() {
			spans = spans[:0]
			for range batch {
				c, err := m.NewCollector(d, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := m.Map(c, d); err != nil {
					b.Fatal(err)
				}
				spans = append(spans, c.Take()...)
			}
			if err := exp.ExportSpans(context.Background(), spans); err != nil {
				b.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		results := float64(b.N * batch)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/results, "ns/result")
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/results, "allocs/result")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/results, "B/result")
	}
}
