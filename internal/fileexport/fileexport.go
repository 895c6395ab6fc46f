// Package fileexport provides the worker's `file` and `stdout` span exporters:
// OTLP/JSON lines, one ExportTraceServiceRequest per line, in the format the
// OpenTelemetry Collector's file exporter writes.
//
// The span → OTLP conversion is not written here: the exporter is a real
// otlptracehttp exporter whose HTTP transport, instead of the network, decodes
// each protobuf request, re-encodes it as OTLP/JSON and appends it as one line.
// Spans written to a file are therefore exactly the spans the `otlp` exporter
// would send, and an export succeeds only once its line has been written, as
// CONTRACT §3 requires before a message is acknowledged.
package fileexport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// sinkURL is where the exporter believes it sends; no request ever leaves the
// process, but the exporter needs a URL to build requests.
const sinkURL = "http://spanferry.file/v1/traces"

// exportTimeout bounds one ExportSpans call; set explicitly so that
// OTEL_EXPORTER_OTLP_TIMEOUT, meant for the network exporter, does not apply.
const exportTimeout = 30 * time.Second

// New returns a span exporter that writes each ExportSpans call to w as one
// line of OTLP/JSON (an ExportTraceServiceRequest) followed by "\n", in a
// single Write call, so that concurrent exports never interleave.
//
// ExportSpans returns an error, and nothing is to be acknowledged, when the
// write fails. Shutdown syncs w when it is a file (an *os.File or anything with
// a Sync method) but does not close it. The OTEL_EXPORTER_OTLP_* variables have
// no effect on it.
func New(ctx context.Context, w io.Writer) (sdktrace.SpanExporter, error) {
	return newExporter(ctx, w, func() error { return syncWriter(w) })
}

// Open returns a span exporter like [New] that appends to the file at path,
// creating it and its parent directory when missing. Shutdown syncs and closes
// the file.
func Open(ctx context.Context, path string) (sdktrace.SpanExporter, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("file exporter: create directory: %w", err)
	}
	// Traces hold workflow inputs and outputs, so the file is not world-readable.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("file exporter: %w", err)
	}
	exp, err := newExporter(ctx, f, func() error {
		return errors.Join(syncWriter(f), f.Close())
	})
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return exp, nil
}

func newExporter(ctx context.Context, w io.Writer, closeFn func() error) (sdktrace.SpanExporter, error) {
	otlp, err := otlptracehttp.New(ctx, sinkOptions(&sink{w: w})...)
	if err != nil {
		return nil, fmt.Errorf("file exporter: %w", err)
	}
	return &exporter{SpanExporter: otlp, closeFn: closeFn}, nil
}

// sinkOptions pins every setting that the OTEL_EXPORTER_OTLP_* variables could
// change. otlptracehttp reads the environment first and applies options after
// it, so each option below overrides its variable: the endpoint (ENDPOINT,
// TRACES_ENDPOINT), the encoding (PROTOCOL=http/json would make the sink
// receive JSON), compression, timeout and headers (a header value is a secret
// the sink has no use for). The TLS configuration is reset because a
// CERTIFICATE variable combined with an http:// URL makes the exporter refuse
// to start.
func sinkOptions(s *sink) []otlptracehttp.Option {
	return []otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(sinkURL),
		otlptracehttp.WithHTTPClient(&http.Client{Transport: s}),
		otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf),
		otlptracehttp.WithCompression(otlptracehttp.NoCompression),
		otlptracehttp.WithTimeout(exportTimeout),
		otlptracehttp.WithHeaders(nil),
		otlptracehttp.WithTLSClientConfig(nil),
		// A failed write is the caller's to retry: it holds the messages.
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
	}
}

// exporter adds syncing and closing the output to the otlptracehttp exporter's
// Shutdown.
type exporter struct {
	sdktrace.SpanExporter

	closeFn func() error
	once    sync.Once
	err     error
}

var _ sdktrace.SpanExporter = (*exporter)(nil)

// Shutdown shuts the exporter down, then syncs (and for [Open], closes) the
// output. It is idempotent: later calls return the first call's error.
func (e *exporter) Shutdown(ctx context.Context) error {
	e.once.Do(func() {
		e.err = errors.Join(e.SpanExporter.Shutdown(ctx), e.closeFn())
		if e.err != nil {
			e.err = fmt.Errorf("file exporter: shutdown: %w", e.err)
		}
	})
	return e.err
}

// syncWriter flushes w to stable storage when it can. Syncing a terminal or a
// pipe (stdout) fails with EINVAL or ENOTSUP, which only means there is
// nothing to flush.
func syncWriter(w io.Writer) error {
	s, ok := w.(interface{ Sync() error })
	if !ok {
		return nil
	}
	if err := s.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}
