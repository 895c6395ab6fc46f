// Package tlserr tells whether an error is a TLS failure, so that both the
// NATS connection and the OTLP client can name the settings to check.
package tlserr

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
)

// Is reports whether err is, or wraps, a TLS handshake failure: a peer
// certificate that does not verify, a host name it does not cover, a peer
// that does not speak TLS, or an alert the peer sent (such as a client
// certificate it refused).
func Is(err error) bool {
	if err == nil {
		return false
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		alert    tls.AlertError
	)
	if errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &record) || errors.As(err, &alert) {
		return true
	}
	// An alert received over TCP is of an unexported type; its text is
	// what the standard library promises.
	return strings.Contains(err.Error(), "remote error: tls:")
}
