package consumer

import (
	"crypto/tls"
	"fmt"

	"github.com/spanferry/spanferry/internal/tlserr"
)

// ClientOption configures the client [HTTPClient] returns.
type ClientOption func(*clientOptions)

type clientOptions struct {
	tls *tls.Config
}

// WithTLSConfig makes the client verify the receiver, and present a client
// certificate, as conf says: the exporter's TLS settings, which
// otlptracehttp ignores once it is given a client of its own. nil keeps
// the default (the system's roots). conf is used as is, not copied: do not
// modify it afterwards.
func WithTLSConfig(conf *tls.Config) ClientOption {
	return func(o *clientOptions) { o.tls = conf }
}

// explainTLS says which settings to check when err is a TLS failure (a
// receiver's certificate the CA does not verify, a client certificate the
// receiver refuses); other errors are returned as they are. A TLS failure
// has no HTTP status, so it stays a transient failure: retried, never
// dead-lettered, since correcting a certificate makes it succeed.
func explainTLS(err error) error {
	if err == nil {
		return nil
	}
	if tlserr.Is(err) {
		return fmt.Errorf("TLS with the OTLP receiver failed (check its certificate against OTEL_EXPORTER_OTLP_CERTIFICATE, and OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE/_CLIENT_KEY if it requires one): %w", err)
	}
	return err
}
