package main

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spanferry/spanferry/collector"
	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/mapping"
)

// hotpathFigure is one in-process measurement of the worker's work per
// result, as the Go benchmarks make it (testing.Benchmark).
type hotpathFigure struct {
	Name      string
	NsPer     float64 // per result, the median of the runs
	MinNsPer  float64 // per result, the fastest run
	Runs      int
	AllocsPer float64
	BytesPer  float64
}

// hotpathBatch is the results per export request of the encoding figure:
// the worker's default batch size.
const hotpathBatch = 200

// hotpath measures, in this process, decoding a result, mapping it, and
// mapping it plus its share of a 200-result export request built by the
// worker's exporter, consumer.NewExporter's (sent to a transport that
// answers 200 at once), the collectors recycled 200 at a time as the
// worker recycles a settled batch's: BenchmarkDecode, BenchmarkMap and
// BenchmarkMapAndEncode, on the bench's own result. Each is measured
// repeat times, in rounds so that a noisy neighbour hurts them alike; the
// median and the fastest are kept.
func hotpath(data []byte, repeat int) ([]hotpathFigure, error) {
	m, err := mapping.New()
	if err != nil {
		return nil, err
	}
	src := mapping.Source{Stored: time.Now()}
	d, err := m.Decode(data, src)
	if err != nil {
		return nil, err
	}
	exp, err := consumer.NewExporter(context.Background(),
		otlptracehttp.WithEndpointURL("http://127.0.0.1:4318/v1/traces"),
		otlptracehttp.WithHTTPClient(&http.Client{Transport: otlptest.DiscardTransport{}}),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		return nil, err
	}
	defer exp.Shutdown(context.Background())

	var failed error
	mapInto := func(b *testing.B) *collector.Collector {
		c, err := m.NewCollector(d, nil)
		if err == nil {
			_, err = m.Map(c, d)
		}
		if err != nil {
			failed = err
			b.SkipNow()
		}
		return c
	}
	type work struct {
		name  string
		perOp int
		f     func(b *testing.B)
	}
	works := []work{
		{"decode and validate", 1, func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Decode(data, src); err != nil {
					failed = err
					b.SkipNow()
				}
			}
		}},
		{"map", 1, func(b *testing.B) {
			// Recycled a request's worth at a time, as the worker does.
			cols := make([]*collector.Collector, 0, hotpathBatch)
			for b.Loop() {
				cols = append(cols, mapInto(b))
				if len(cols) == hotpathBatch {
					for _, c := range cols {
						c.Recycle()
					}
					cols = cols[:0]
				}
			}
		}},
		{"map + encode (200 per request)", hotpathBatch, func(b *testing.B) {
			spans := make([]sdktrace.ReadOnlySpan, 0, hotpathBatch*(d.Steps()+1))
			cols := make([]*collector.Collector, hotpathBatch)
			for b.Loop() {
				spans = spans[:0]
				for i := range cols {
					cols[i] = mapInto(b)
					spans = append(spans, cols[i].Take()...)
				}
				if err := exp.ExportSpans(context.Background(), spans); err != nil {
					failed = err
					b.SkipNow()
				}
				// As the worker does once a batch is settled.
				for _, c := range cols {
					c.Recycle()
				}
			}
		}},
	}
	ns := make([][]float64, len(works))
	out := make([]hotpathFigure, len(works))
	for range repeat {
		for i, w := range works {
			r := testing.Benchmark(func(b *testing.B) { b.ReportAllocs(); w.f(b) })
			n := float64(w.perOp)
			ns[i] = append(ns[i], float64(r.NsPerOp())/n)
			out[i] = hotpathFigure{Name: w.name, AllocsPer: float64(r.AllocsPerOp()) / n, BytesPer: float64(r.AllocedBytesPerOp()) / n}
		}
	}
	for i := range out {
		slices.Sort(ns[i])
		out[i].NsPer, out[i].MinNsPer, out[i].Runs = ns[i][(len(ns[i])-1)/2], ns[i][0], len(ns[i])
	}
	return out, failed
}
