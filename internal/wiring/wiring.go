// Package wiring builds the worker's pipeline from its configuration: the
// mapping, the exporter WORKER_EXPORTER names and the consumer. The worker
// binary and the benchmark both use it, so that what is measured is what
// ships.
package wiring

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/fileexport"
	"github.com/spanferry/spanferry/mapping"
)

// TracesFile is the file exporter's output under WORKER_DATA_DIR.
const TracesFile = "traces.jsonl"

// DefaultGCPercent is the worker's GOGC when the environment sets none.
// The worker's live heap is the results in flight, small and bounded, and
// most of what it allocates dies with the export request it went into: a
// heap let grow to 3× the live one instead of 2× halves the collections: a
// sixth less CPU for about 12 MB more memory (docs/BENCHMARKS.md). GOMEMLIMIT,
// which deploy/ sets to the container's memory limit, still bounds it.
const DefaultGCPercent = 200

// SetGC sets the garbage collector's target to DefaultGCPercent unless GOGC
// is set, and returns the GOGC in effect.
func SetGC() string {
	if v, ok := os.LookupEnv("GOGC"); ok {
		return v
	}
	debug.SetGCPercent(DefaultGCPercent)
	return strconv.Itoa(DefaultGCPercent)
}

// Mapper builds the mapping from the configuration: the limits, the
// resource of OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, the content
// controls (ContentOptions). opts come last, and win.
func Mapper(cfg config.Config, opts ...mapping.Option) (*mapping.Mapper, error) {
	res, err := resource.New(context.Background(), resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("resource from OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	limits := mapping.Limits{
		MaxBytes:        cfg.MaxMessageBytes,
		MaxSteps:        cfg.MaxSteps,
		MaxDepth:        cfg.MaxDepth,
		MaxAttrValueLen: cfg.AttrValueLimit,
	}
	content, err := ContentOptions(cfg)
	if err != nil {
		return nil, err
	}
	base := append([]mapping.Option{mapping.WithResource(res), mapping.WithLimits(limits)}, content...)
	return mapping.New(append(base, opts...)...)
}

// Consumer builds the consumer of run and replay on js: the mapping with
// its limits (WORKER_MAX_MESSAGE_BYTES=0 is the server's maxPayload, as
// CONTRACT §2 says), the stream settings and the batching of cfg. tenants,
// when not nil (WORKER_TENANTS_FILE), routes the exports by tenant and
// decides content capture per tenant (a tenant's capture_content, else
// WORKER_CAPTURE_CONTENT).
func Consumer(cfg config.Config, js jetstream.JetStream, maxPayload int64, exp sdktrace.SpanExporter, log *slog.Logger, metrics *consumer.Metrics, tenants *consumer.Tenants) (*consumer.Consumer, error) {
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = int(maxPayload)
	}
	var mapOpts []mapping.Option
	opts := []consumer.Option{consumer.WithLogger(log), consumer.WithMetrics(metrics)}
	if tenants != nil {
		mapOpts = append(mapOpts, mapping.WithCaptureContent(tenants.CaptureContent))
		opts = append(opts, consumer.WithTenants(tenants))
	}
	mapper, err := Mapper(cfg, mapOpts...)
	if err != nil {
		return nil, err
	}
	return consumer.New(js, mapper, exp, consumer.Config{
		Stream:        cfg.Stream,
		Subjects:      cfg.Subjects,
		Durable:       cfg.Durable,
		CreateStream:  cfg.CreateStream,
		DLQSubject:    cfg.DLQSubject,
		DLQStream:     cfg.DLQStream,
		BatchSize:     cfg.BatchSize,
		BatchWait:     cfg.BatchWait,
		AckWait:       cfg.AckWait,
		Concurrency:   cfg.ExportConcurrency,
		MaxAckPending: cfg.MaxAckPending,
		ParkStream:    cfg.ParkStream,
		// With tenants: a hanging destination parks its results.
		TenantParkAfter: cfg.TenantParkAfter,
		StreamReplicas:  cfg.StreamReplicas,
	}, opts...)
}

// Exporter builds the exporter WORKER_EXPORTER names; stdout is where the
// stdout exporter writes.
//
// The OTLP exporter is consumer.NewExporter's (otlptracehttp's client with
// the consumer's one-pass protobuf encoding): it keeps otlptracehttp's
// handling of the OTEL_EXPORTER_OTLP_* variables but uses
// consumer.HTTPClient, so that the consumer sees status codes and partial
// successes, with the exporter's own retries off: the consumer retries by
// nak, which holds no batch in memory during an outage.
// The client's TLS settings come from cfg.OTLPTLS: otlptracehttp applies
// OTEL_EXPORTER_OTLP_CERTIFICATE and the client key pair only to a client
// it builds itself.
func Exporter(ctx context.Context, cfg config.Config, stdout io.Writer) (sdktrace.SpanExporter, error) {
	switch cfg.Exporter {
	case config.ExporterOTLP:
		timeout, err := otlpTimeout(cfg.OTLPTimeout)
		if err != nil {
			return nil, err
		}
		tlsConf, err := cfg.OTLPTLS()
		if err != nil {
			return nil, err
		}
		exp, err := consumer.NewExporter(ctx,
			otlptracehttp.WithHTTPClient(consumer.HTTPClient(timeout, consumer.WithTLSConfig(tlsConf))),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		if err != nil {
			return nil, fmt.Errorf("otlp exporter: %w", err)
		}
		return exp, nil
	case config.ExporterStdout:
		return fileexport.New(ctx, stdout)
	default:
		if err := CheckDataDir(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("file exporter: %w", err)
		}
		return fileexport.Open(ctx, filepath.Join(cfg.DataDir, TracesFile))
	}
}

// otlpTimeout reads OTEL_EXPORTER_OTLP_TIMEOUT (milliseconds, default 10s
// as the specification says): a custom HTTP client is outside
// otlptracehttp's own handling of it.
func otlpTimeout(v string) (time.Duration, error) {
	if v == "" {
		return 10 * time.Second, nil
	}
	ms, err := strconv.Atoi(v)
	if err != nil || ms <= 0 {
		return 0, fmt.Errorf("OTEL_EXPORTER_OTLP_TIMEOUT: %q is not a positive number of milliseconds", v)
	}
	return time.Duration(ms) * time.Millisecond, nil
}
