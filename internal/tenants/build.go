package tenants

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spanferry/spanferry/consumer"
)

// Base is the worker's own destination, which tenants inherit.
type Base struct {
	// Exporter is the worker's exporter (WORKER_EXPORTER): it exports the
	// results that follow default, and those of tenants without an endpoint
	// when OTLP is false.
	Exporter sdktrace.SpanExporter
	// OTLP says the worker exports over OTLP/HTTP: a tenant without an
	// endpoint then gets a client of its own to the worker's destination,
	// with the worker's headers and its own.
	OTLP bool
	// Timeout bounds each export request (OTEL_EXPORTER_OTLP_TIMEOUT).
	Timeout time.Duration
	// TLS is the worker's TLS configuration with its destination (a
	// private CA, a client certificate), given to the tenants that share
	// that destination only: a tenant's own endpoint is verified with the
	// system's roots and never sees the worker's client certificate. nil
	// is the system's roots.
	TLS *tls.Config
	// LookupEnv reads the worker's OTEL_EXPORTER_OTLP_(TRACES_)HEADERS;
	// nil is os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Log is told about settings that have no effect; nil discards.
	Log *slog.Logger
}

// Build turns f into the consumer's routing table: one OTLP/HTTP exporter
// per tenant, each with its own HTTP client.
//
// Headers never travel to another destination (CONTRACT §8): a tenant with
// its own endpoint sends only its own headers, never the worker's
// OTEL_EXPORTER_OTLP_HEADERS; a tenant without one shares the worker's
// destination and sends the worker's headers with its own added (its own
// replacing those of the same name, case-insensitively).
func Build(ctx context.Context, f *File, base Base) (consumer.TenantTable, error) {
	table := consumer.TenantTable{
		Tenants:           make(map[string]consumer.TenantRoute, len(f.Tenants)),
		Default:           base.Exporter,
		DeadLetterDefault: f.DefaultAction == ActionDeadLetter,
	}
	var built []sdktrace.SpanExporter
	shutdown := func(ctx context.Context) error {
		var errs []error
		for _, e := range built {
			errs = append(errs, e.Shutdown(ctx))
		}
		return errors.Join(errs...)
	}
	lookup := base.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	workerHeaders := otlpHeaders(lookup)
	for _, org := range f.Names() {
		t := f.Tenants[org]
		route := consumer.TenantRoute{CaptureContent: t.CaptureContent}
		if t.Endpoint == "" && !base.OTLP {
			if (len(t.Headers) > 0 || t.Compression != "") && base.Log != nil {
				base.Log.Warn("tenant has no endpoint and the worker does not export over OTLP: its headers and compression are unused", "tenant", org)
			}
			route.Exporter = base.Exporter
			table.Tenants[org] = route
			continue
		}
		client := consumer.HTTPClient(base.Timeout)
		if t.Endpoint == "" {
			client = consumer.HTTPClient(base.Timeout, consumer.WithTLSConfig(base.TLS))
		}
		opts := []otlptracehttp.Option{
			otlptracehttp.WithHTTPClient(client),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
			otlptracehttp.WithHeaders(tenantHeaders(t, workerHeaders)),
		}
		if t.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(t.Endpoint))
		}
		switch t.Compression {
		case "gzip":
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		case "none":
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.NoCompression))
		}
		// The worker's exporter (one-pass encoding, otlptracehttp's client).
		exp, err := consumer.NewExporter(ctx, opts...)
		if err != nil {
			_ = shutdown(ctx)
			// otlptracehttp's errors may quote the endpoint: name the key only.
			return consumer.TenantTable{}, fmt.Errorf("tenants file %s: tenants.%s: cannot build its exporter", f.Path, org)
		}
		built = append(built, exp)
		route.Exporter = exp
		table.Tenants[org] = route
	}
	table.Shutdown = shutdown
	return table, nil
}

// tenantHeaders are the headers of t's requests: its own, plus the worker's
// when it shares the worker's destination.
func tenantHeaders(t Tenant, worker map[string]string) map[string]string {
	out := map[string]string{}
	if t.Endpoint == "" {
		maps.Copy(out, worker)
	}
	for name, v := range t.Headers {
		for k := range out {
			if strings.EqualFold(k, name) {
				delete(out, k)
			}
		}
		out[name] = v
	}
	return out
}

// otlpHeaders reads the worker's OTLP headers as otlptracehttp does: the
// traces-specific variable replaces the general one; values are
// percent-decoded. Malformed entries are skipped (otlptracehttp skips them
// too), without logging them.
func otlpHeaders(lookup func(string) (string, bool)) map[string]string {
	v, ok := lookup("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
	if !ok {
		v, ok = lookup("OTEL_EXPORTER_OTLP_HEADERS")
	}
	out := map[string]string{}
	if !ok {
		return out
	}
	for _, pair := range strings.Split(v, ",") {
		k, val, found := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !found || !validHeaderName(k) {
			continue
		}
		dec, err := url.PathUnescape(val)
		if err != nil {
			continue
		}
		out[k] = strings.TrimSpace(dec)
	}
	return out
}
