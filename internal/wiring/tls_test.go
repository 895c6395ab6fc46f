package wiring

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/internal/tlstest"
)

// exportOne sends one span through the exporter cfg builds to the
// receiver at OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.
func exportOne(t *testing.T, cfg config.Config) error {
	t.Helper()
	cfg.Exporter, cfg.OTLPTimeout = config.ExporterOTLP, "5000"
	exp, err := Exporter(t.Context(), cfg, nil)
	if err != nil {
		t.Fatalf("Exporter: %v", err)
	}
	defer exp.Shutdown(context.Background())
	span := tracetest.SpanStub{
		Name: "tls",
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled,
		}),
		StartTime: time.Unix(1, 0), EndTime: time.Unix(2, 0),
	}
	return exp.ExportSpans(t.Context(), []sdktrace.ReadOnlySpan{span.Snapshot()})
}

// tlsReceiver starts a receiver serving a certificate of ca; clients must
// present a certificate of clientCA when it is not nil.
func tlsReceiver(t *testing.T, ca, clientCA *tlstest.CA) *otlptest.Receiver {
	t.Helper()
	conf := &tls.Config{Certificates: []tls.Certificate{ca.Server(t)}}
	if clientCA != nil {
		conf.ClientAuth, conf.ClientCAs = tls.RequireAndVerifyClientCert, clientCA.Pool()
	}
	recv := otlptest.StartT(t, otlptest.WithTLS(conf))
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", recv.TracesURL())
	return recv
}

func TestOTLPExporterVerifiesTheReceiverWithTheConfiguredCA(t *testing.T) {
	ca, other := tlstest.NewCA(t, "receiver CA"), tlstest.NewCA(t, "other CA")
	recv := tlsReceiver(t, ca, nil)

	// The system's roots do not know the test CA.
	err := exportOne(t, config.Config{})
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_CERTIFICATE") || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("without a CA: err = %v, want a TLS failure naming OTEL_EXPORTER_OTLP_CERTIFICATE", err)
	}
	if err := exportOne(t, config.Config{OTLPCertificate: other.CertFile(t)}); err == nil {
		t.Errorf("a wrong CA verified the receiver")
	}
	if err := exportOne(t, config.Config{OTLPCertificate: ca.CertFile(t)}); err != nil {
		t.Errorf("OTEL_EXPORTER_OTLP_CERTIFICATE: %v", err)
	}
	// The TRACES_ form takes precedence over the general one.
	if err := exportOne(t, config.Config{OTLPCertificate: other.CertFile(t), OTLPTracesCertificate: ca.CertFile(t)}); err != nil {
		t.Errorf("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE did not take precedence: %v", err)
	}
	if err := exportOne(t, config.Config{OTLPCertificate: ca.CertFile(t), OTLPTracesCertificate: other.CertFile(t)}); err == nil {
		t.Errorf("the general CERTIFICATE was used over TRACES_CERTIFICATE")
	}
	if n := recv.SpanCount(); n != 2 {
		t.Errorf("receiver accepted %d spans, want 2 (the two exports with the right CA)", n)
	}
}

func TestOTLPExporterPresentsTheClientCertificate(t *testing.T) {
	ca, clients, other := tlstest.NewCA(t, "receiver CA"), tlstest.NewCA(t, "client CA"), tlstest.NewCA(t, "other CA")
	recv := tlsReceiver(t, ca, clients)
	caFile := ca.CertFile(t)
	cert, key := clients.ClientFiles(t, "worker")
	otherCert, otherKey := other.ClientFiles(t, "stranger")

	if err := exportOne(t, config.Config{OTLPCertificate: caFile}); err == nil || !strings.Contains(err.Error(), "CLIENT_CERTIFICATE") {
		t.Errorf("no client certificate: err = %v, want a TLS failure naming the client certificate", err)
	}
	if err := exportOne(t, config.Config{OTLPCertificate: caFile, OTLPClientCertificate: otherCert, OTLPClientKey: otherKey}); err == nil {
		t.Errorf("the receiver accepted a client certificate of another CA")
	}
	if err := exportOne(t, config.Config{OTLPCertificate: caFile, OTLPClientCertificate: cert, OTLPClientKey: key}); err != nil {
		t.Errorf("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE/_KEY: %v", err)
	}
	both := config.Config{OTLPCertificate: caFile, OTLPClientCertificate: otherCert, OTLPClientKey: otherKey,
		OTLPTracesClientCertificate: cert, OTLPTracesClientKey: key}
	if err := exportOne(t, both); err != nil {
		t.Errorf("OTEL_EXPORTER_OTLP_TRACES_CLIENT_* did not take precedence: %v", err)
	}
	if n := recv.SpanCount(); n != 2 {
		t.Errorf("receiver accepted %d spans, want 2", n)
	}
}
