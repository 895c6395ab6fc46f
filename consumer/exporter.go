package consumer

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// NewExporter returns the OTLP/HTTP exporter the consumer is meant for:
// otlptracehttp's client, configured from the OTEL_EXPORTER_OTLP_*
// variables as the OpenTelemetry specification says, sending with
// httpClient (HTTPClient's, so that failures can be classified) and with
// its own retries off (the consumer retries by nak).
//
// It sends what otlptracehttp.New's exporter would, but writes the spans'
// OTLP protobuf itself instead of through the SDK's transformation and
// proto.Marshal, which cost about four times the mapping of a result: the
// bytes are the same, save the order of a request's ResourceSpans. With
// OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL=http/json it is otlptracehttp.New's
// exporter itself, as the JSON encoding needs the SDK's messages.
func NewExporter(ctx context.Context, httpClient *http.Client) (sdktrace.SpanExporter, error) {
	opts := []otlptracehttp.Option{
		otlptracehttp.WithHTTPClient(httpClient),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
	}
	if jsonProtocol() {
		return otlptracehttp.New(ctx, opts...)
	}
	e := newExporter(otlptracehttp.NewClient(opts...))
	if err := e.client.Start(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// jsonProtocol reports whether the environment asks for OTLP/JSON, read as
// otlptracehttp reads it: the traces variable over the general one.
func jsonProtocol() bool {
	v := strings.TrimSpace(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	if v == "" {
		v = strings.TrimSpace(os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	return v == "http/json"
}

// exporter hands its own encoding to an otlptrace.Client: each
// ResourceSpans goes as a message whose content is carried in its unknown
// fields, which proto.Marshal writes back verbatim, so the request on the
// wire is exactly the encoded spans.
type exporter struct {
	client   otlptrace.Client
	free     chan *encoder // idle encoders, kept across garbage collections
	stopOnce sync.Once
}

func newExporter(client otlptrace.Client) *exporter {
	return &exporter{client: client, free: make(chan *encoder, 8)}
}

func (e *exporter) encoder() *encoder {
	select {
	case enc := <-e.free:
		return enc
	default:
		return new(encoder)
	}
}

func (e *exporter) release(enc *encoder) {
	enc.reset()
	select {
	case e.free <- enc:
	default:
	}
}

var _ sdktrace.SpanExporter = (*exporter)(nil)

// ExportSpans sends spans in one request. Its errors read as those of the
// SDK's OTLP exporter.
func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	enc := e.encoder()
	defer e.release(enc)
	contents, err := enc.encode(spans)
	if err != nil {
		return fmt.Errorf("traces export: %w", err)
	}
	if len(contents) == 0 {
		return nil
	}
	carriers := make([]*tracepb.ResourceSpans, len(contents))
	for i, c := range contents {
		rs := &tracepb.ResourceSpans{}
		rs.ProtoReflect().SetUnknown(protoreflect.RawFields(c))
		carriers[i] = rs
	}
	if err := e.client.UploadTraces(ctx, carriers); err != nil {
		return fmt.Errorf("traces export: %w", err)
	}
	return nil
}

// Shutdown stops the client; later calls do nothing.
func (e *exporter) Shutdown(ctx context.Context) error {
	var err error
	e.stopOnce.Do(func() { err = e.client.Stop(ctx) })
	return err
}
