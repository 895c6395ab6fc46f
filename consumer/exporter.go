package consumer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spanferry/spanferry/internal/otlpenc"
)

// NewExporter returns an OTLP/HTTP span exporter that sends what
// otlptracehttp.New(ctx, opts...) would, with the same options and the
// same OTEL_EXPORTER_OTLP_* configuration, but writes the request's
// protobuf in one pass from the spans instead of through the SDK's
// transformation and proto.Marshal, which cost several times the mapping
// of a result. It is otlptracehttp's client that sends (endpoint, headers,
// compression, timeout, TLS, retries, partial successes): only the
// encoding is ours, and the bytes are the SDK's, save the order of a
// request's ResourceSpans.
//
// One difference remains: the client's experimental self-observability
// metrics (OTEL_GO_X_OBSERVABILITY) count the spans of the messages it is
// given, and the encoded ones are opaque to it, so they count none.
//
// When the encoding asked for is http/json (WithEncoding or
// OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL), it returns otlptracehttp.New's
// exporter itself: the JSON encoding needs the SDK's messages.
//
// Give it WithHTTPClient(HTTPClient(timeout)) and retries off, as the
// worker does, so that the consumer can classify failures and retry by nak.
func NewExporter(ctx context.Context, opts ...otlptracehttp.Option) (sdktrace.SpanExporter, error) {
	json, err := encodesJSON(ctx, opts)
	if err != nil {
		return nil, err
	}
	if json {
		return otlptracehttp.New(ctx, opts...)
	}
	client := otlptracehttp.NewClient(opts...)
	if err := client.Start(ctx); err != nil {
		return nil, fmt.Errorf("traces exporter: %w", err)
	}
	return otlpenc.NewExporter(client), nil
}

// encodesJSON reports whether otlptracehttp's client configured by opts
// and the environment encodes as JSON. Its configuration is not exported,
// so the client is asked: a copy of it, sending to a transport that only
// records the Content-Type, uploads an empty request. No request leaves
// the process.
func encodesJSON(ctx context.Context, opts []otlptracehttp.Option) (bool, error) {
	var probe contentTypeProbe
	probeOpts := append(opts[:len(opts):len(opts)],
		otlptracehttp.WithHTTPClient(&http.Client{Transport: &probe}),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err := otlptracehttp.NewClient(probeOpts...).UploadTraces(ctx, nil); err != nil {
		return false, fmt.Errorf("traces exporter: reading its configuration: %w", err)
	}
	return strings.HasPrefix(probe.contentType, "application/json"), nil
}

// contentTypeProbe is the transport of encodesJSON.
type contentTypeProbe struct{ contentType string }

func (p *contentTypeProbe) RoundTrip(req *http.Request) (*http.Response, error) {
	p.contentType = req.Header.Get("Content-Type")
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}
