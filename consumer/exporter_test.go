package consumer_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/mapping"
)

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
			sdk, err := otlptracehttp.New(context.Background(),
				otlptracehttp.WithHTTPClient(consumer.HTTPClient(5*time.Second)),
				otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
			if err != nil {
				t.Fatal(err)
			}
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", got.TracesURL())
			own, err := consumer.NewExporter(context.Background(), consumer.HTTPClient(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			for _, exp := range []sdktrace.SpanExporter{sdk, own} {
				if err := exp.ExportSpans(context.Background(), spans); err != nil {
					t.Fatal(err)
				}
				if err := exp.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			w, g := received(t, want), received(t, got)
			if !proto.Equal(g.Body, w.Body) {
				t.Errorf("NewExporter sent\n%v\nthe SDK's exporter\n%v", g.Body, w.Body)
			}
			if g.Gzip != w.Gzip || g.JSON || g.Spans != len(spans) {
				t.Errorf("gzip %v (SDK: %v), JSON %v, %d spans of %d", g.Gzip, w.Gzip, g.JSON, g.Spans, len(spans))
			}
			if ua := g.Header.Get("User-Agent"); ua != w.Header.Get("User-Agent") {
				t.Errorf("User-Agent %q, the SDK's exporter sends %q", ua, w.Header.Get("User-Agent"))
			}
		})
	}
}

func TestNewExporterSpeaksJSONWhenAskedTo(t *testing.T) {
	r := otlptest.StartT(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", r.TracesURL())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	spans := mappedExamples(t)
	exp, err := consumer.NewExporter(context.Background(), consumer.HTTPClient(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	if req := received(t, r); !req.JSON || req.Spans != len(spans) {
		t.Errorf("JSON %v, %d spans of %d", req.JSON, req.Spans, len(spans))
	}
}

func TestNewExporterAfterShutdown(t *testing.T) {
	r := otlptest.StartT(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", r.TracesURL())
	exp, err := consumer.NewExporter(context.Background(), consumer.HTTPClient(5*time.Second))
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
