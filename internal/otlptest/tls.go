package otlptest

import "crypto/tls"

// WithTLS makes the receiver serve HTTPS with conf (its certificate, and
// ClientAuth and ClientCAs for mutual TLS); [Receiver.Endpoint] is then an
// https:// URL. conf's GetCertificate may change the certificate while the
// receiver runs. A handshake that fails never reaches the handler, so it is
// not recorded as a request.
func WithTLS(conf *tls.Config) Option {
	return func(c *config) { c.tls = conf }
}
