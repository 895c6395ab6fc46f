package tenants_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/internal/tenants"
	"github.com/spanferry/spanferry/internal/tlstest"
)

// TestSharedDestinationTenantsUseTheWorkersTLS checks that a tenant
// without an endpoint, which shares the worker's destination, connects
// with the worker's TLS settings (a private CA and a client certificate,
// mutual TLS), and that a tenant with an endpoint of its own gets neither:
// the worker's client certificate never travels to another destination.
func TestSharedDestinationTenantsUseTheWorkersTLS(t *testing.T) {
	ca, clients := tlstest.NewCA(t, "receiver CA"), tlstest.NewCA(t, "client CA")
	mtls := func() *otlptest.Receiver {
		return otlptest.StartT(t, otlptest.WithTLS(&tls.Config{
			Certificates: []tls.Certificate{ca.Server(t)},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: clients.Pool(),
		}))
	}
	shared, own := mtls(), mtls()
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", shared.TracesURL())
	certFile, keyFile := clients.ClientFiles(t, "worker")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	workerTLS := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}}

	path := writeFile(t, "tenants.yaml", fmt.Sprintf(`
tenants:
  shared: {}
  own:
    endpoint: %s
`, own.TracesURL()))
	f, err := tenants.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	workerExp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithHTTPClient(consumer.HTTPClient(5*time.Second, consumer.WithTLSConfig(workerTLS))),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	defer workerExp.Shutdown(ctx)
	table, err := tenants.Build(ctx, f, tenants.Base{Exporter: workerExp, OTLP: true, Timeout: 5 * time.Second, TLS: workerTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer table.Shutdown(ctx)

	span := tracetest.SpanStub{
		Name: "tls",
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled,
		}),
		StartTime: time.Unix(1, 0), EndTime: time.Unix(2, 0),
	}
	spans := []sdktrace.ReadOnlySpan{span.Snapshot()}
	if err := table.Tenants["shared"].Exporter.ExportSpans(ctx, spans); err != nil {
		t.Errorf("tenant without an endpoint, on the worker's mTLS destination: %v", err)
	}
	if n := shared.SpanCount(); n != 1 {
		t.Errorf("the worker's destination accepted %d spans, want 1", n)
	}
	if err := table.Tenants["own"].Exporter.ExportSpans(ctx, spans); err == nil {
		t.Error("a tenant with its own endpoint connected with the worker's CA and client certificate")
	}
	if n := own.SpanCount(); n != 0 {
		t.Errorf("the tenant's own destination accepted %d spans, want 0", n)
	}
}
