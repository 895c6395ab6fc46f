package main

import (
	"crypto/tls"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/internal/tlstest"
)

// TestRunRetriesAReceiverItCannotVerify: a receiver whose certificate the
// configured CA (OTEL_EXPORTER_OTLP_CERTIFICATE) does not verify is a
// transient failure, logged with the settings to check: nothing is
// dead-lettered, and the result is exported once the receiver presents a
// certificate of that CA. The receiver requires the client certificate
// (mutual TLS) throughout.
func TestRunRetriesAReceiverItCannotVerify(t *testing.T) {
	trusted, wrong, clients := tlstest.NewCA(t, "trusted CA"), tlstest.NewCA(t, "wrong CA"), tlstest.NewCA(t, "client CA")
	var serving atomic.Pointer[tls.Certificate]
	wrongCert, trustedCert := wrong.Server(t), trusted.Server(t)
	serving.Store(&wrongCert)
	recv := otlptest.StartT(t, otlptest.WithTLS(&tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return serving.Load(), nil },
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      clients.Pool(),
	}))
	srv := natstest.Start(t)
	createStream(t, srv.JS)

	cfg := testConfig(t, srv.ClientURL())
	withReceiver(t, &cfg, recv)
	cfg.OTLPTracesCertificate = trusted.CertFile(t)
	cfg.OTLPClientCertificate, cfg.OTLPClientKey = clients.ClientFiles(t, "worker")
	w := runWorker(t, cfg)
	ids := publishResults(t, srv.JS, "tls", 3)

	await(t, "a failed export logged as a TLS failure", func() bool {
		logs := w.logs.String()
		return strings.Contains(logs, "export failed; will retry") && strings.Contains(logs, "TLS with the OTLP receiver failed") &&
			strings.Contains(logs, "OTEL_EXPORTER_OTLP_CERTIFICATE") && strings.Contains(logs, "unknown authority")
	})
	await(t, "the results retried", func() bool {
		_, m := w.get("/metrics")
		return metricLine(m, `spanferry_messages_total{outcome="retried"}`) != `spanferry_messages_total{outcome="retried"} 0`
	})
	if n := len(recv.Requests()); n != 0 {
		t.Fatalf("the receiver decoded %d requests through a failed handshake", n)
	}

	serving.Store(&trustedCert) // the operator fixes the receiver's certificate
	await(t, "every result exported", func() bool { return len(roots(recv)) == len(ids) })
	awaitSettled(t, srv.JS)
	assertExactlyOnce(t, recv, ids)
	_, m := w.get("/metrics")
	if got := metricLine(m, `spanferry_messages_total{outcome="dead_lettered"}`); got != `spanferry_messages_total{outcome="dead_lettered"} 0` {
		t.Errorf("%s: a TLS failure must not dead-letter", got)
	}
	if msgs := srv.StreamMsgs(t, cfg.DLQStream); len(msgs) != 0 {
		t.Errorf("%d dead letters, want none", len(msgs))
	}
}
