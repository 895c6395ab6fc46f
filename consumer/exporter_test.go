package consumer_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/mapping"
)

// workerOptions are the options the worker gives the exporter.
func workerOptions() []otlptracehttp.Option {
	return []otlptracehttp.Option{
		otlptracehttp.WithHTTPClient(consumer.HTTPClient(5 * time.Second)),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
	}
}

// mappedExamples maps every example result, in one batch.
func mappedExamples(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../examples/*.json")
	var spans []sdktrace.ReadOnlySpan
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := m.Decode(data, mapping.Source{Stored: time.Unix(1_800_000_000, 0)})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c, _ := m.NewCollector(d, nil)
		if _, err := m.Map(c, d); err != nil {
			t.Fatal(err)
		}
		spans = append(spans, c.Take()...)
	}
	return spans
}

// received returns the one request r got, its ResourceSpans sorted by
// service.name (an exporter's order of them is not specified).
// exportBoth sends spans with the SDK's exporter to want and with
// NewExporter's to got, shuts both down, checks that the two requests'
// bodies are the same, and returns the requests.
func exportBoth(t *testing.T, spans []sdktrace.ReadOnlySpan, sdk sdktrace.SpanExporter, want *otlptest.Receiver, own sdktrace.SpanExporter, got *otlptest.Receiver) (w, g otlptest.Request) {
	t.Helper()
	for _, exp := range []sdktrace.SpanExporter{sdk, own} {
		if err := exp.ExportSpans(context.Background(), spans); err != nil {
			t.Fatal(err)
		}
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	w, g = received(t, want), received(t, got)
	if !proto.Equal(g.Body, w.Body) {
		t.Errorf("NewExporter sent\n%v\nthe SDK's exporter\n%v", g.Body, w.Body)
	}
	return w, g
}

func received(t *testing.T, r *otlptest.Receiver) otlptest.Request {
	t.Helper()
	reqs := r.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	service := func(rs *tracepb.ResourceSpans) string {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				return kv.GetValue().GetStringValue()
			}
		}
		return ""
	}
	slices.SortFunc(reqs[0].Body.ResourceSpans, func(a, b *tracepb.ResourceSpans) int {
		return strings.Compare(service(a), service(b))
	})
	return reqs[0]
}

// TestNewExporterSendsWhatTheSDKSends exports the same spans with
// otlptracehttp.New's exporter and with NewExporter's, each to a real
// receiver, and compares the decoded requests.
func TestNewExporterSendsWhatTheSDKSends(t *testing.T) {
	spans := mappedExamples(t)
	for _, compression := range []string{"", "gzip"} {
		t.Run("compression="+compression, func(t *testing.T) {
			want, got := otlptest.StartT(t), otlptest.StartT(t)
			t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", compression)

			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", want.TracesURL())
			sdk, err := otlptracehttp.New(context.Background(), workerOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", got.TracesURL())
			own, err := consumer.NewExporter(context.Background(), workerOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			w, g := exportBoth(t, spans, sdk, want, own, got)
			if g.Gzip != w.Gzip || g.JSON || g.Spans != len(spans) {
				t.Errorf("gzip %v (SDK: %v), JSON %v, %d spans of %d", g.Gzip, w.Gzip, g.JSON, g.Spans, len(spans))
			}
			if ua := g.Header.Get("User-Agent"); ua != w.Header.Get("User-Agent") {
				t.Errorf("User-Agent %q, the SDK's exporter sends %q", ua, w.Header.Get("User-Agent"))
			}
		})
	}
}

// TestNewExporterTakesOptionsAsTheSDKDoes configures both exporters by
// options alone (endpoint, headers, gzip): the requests must be the same,
// headers included.
func TestNewExporterTakesOptionsAsTheSDKDoes(t *testing.T) {
	spans := mappedExamples(t)
	want, got := otlptest.StartT(t), otlptest.StartT(t)
	opts := func(r *otlptest.Receiver) []otlptracehttp.Option {
		return append(workerOptions(),
			otlptracehttp.WithEndpointURL(r.TracesURL()),
			otlptracehttp.WithHeaders(map[string]string{"X-Tenant": "acme"}),
			otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	}
	sdk, err := otlptracehttp.New(context.Background(), opts(want)...)
	if err != nil {
		t.Fatal(err)
	}
	own, err := consumer.NewExporter(context.Background(), opts(got)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := own.(*otlptrace.Exporter); ok {
		t.Fatal("NewExporter returned the SDK's exporter for http/protobuf")
	}
	w, g := exportBoth(t, spans, sdk, want, own, got)
	if !g.Gzip || g.Header.Get("X-Tenant") != "acme" || g.Header.Get("Content-Type") != w.Header.Get("Content-Type") {
		t.Errorf("gzip %v, X-Tenant %q, Content-Type %q (SDK's %q)", g.Gzip, g.Header.Get("X-Tenant"),
			g.Header.Get("Content-Type"), w.Header.Get("Content-Type"))
	}
}

// TestNewExporterSpeaksJSONWhenAskedTo asks for OTLP/JSON each way
// otlptracehttp reads it: NewExporter must then be the SDK's exporter, and
// the traces variable wins over the general one.
func TestNewExporterSpeaksJSONWhenAskedTo(t *testing.T) {
	spans := mappedExamples(t)
	for _, tc := range []struct {
		name        string
		env         map[string]string
		opts        []otlptracehttp.Option
		json, isSDK bool
	}{
		{name: "OTEL_EXPORTER_OTLP_PROTOCOL", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, json: true, isSDK: true},
		{name: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, json: true, isSDK: true},
		{name: "WithEncoding", opts: []otlptracehttp.Option{otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON)}, json: true, isSDK: true},
		{name: "traces variable over the general one", env: map[string]string{
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := otlptest.StartT(t)
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", r.TracesURL())
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			exp, err := consumer.NewExporter(context.Background(), append(workerOptions(), tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer exp.Shutdown(context.Background())
			if _, ok := exp.(*otlptrace.Exporter); ok != tc.isSDK {
				t.Errorf("the SDK's exporter: %v, want %v", ok, tc.isSDK)
			}
			if err := exp.ExportSpans(context.Background(), spans); err != nil {
				t.Fatal(err)
			}
			if req := received(t, r); req.JSON != tc.json || req.Spans != len(spans) {
				t.Errorf("JSON %v, want %v; %d spans of %d", req.JSON, tc.json, req.Spans, len(spans))
			}
		})
	}
}

func TestNewExporterAfterShutdown(t *testing.T) {
	r := otlptest.StartT(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", r.TracesURL())
	exp, err := consumer.NewExporter(context.Background(), workerOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	if err := exp.ExportSpans(context.Background(), mappedExamples(t)); err == nil {
		t.Fatal("ExportSpans after Shutdown succeeded")
	}
	if n := len(r.Requests()); n != 0 {
		t.Fatalf("%d requests after Shutdown", n)
	}
	if err := exp.ExportSpans(context.Background(), nil); err != nil {
		t.Fatalf("exporting nothing: %v", err)
	}
}
