package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// OTLPTLS returns the TLS configuration of the OTLP exporter that
// OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE and _CLIENT_KEY
// describe, or nil when none is set (the system's roots, no client
// certificate). As the OTLP exporter specification says, the certificate
// file holds the CA(s) that verify the receiver, the client certificate
// and key (PEM) are presented for mutual TLS, and each TRACES_ form takes
// precedence over its general one; the client pair is taken from one
// form, both or neither.
//
// otlptracehttp reads the same variables, but only into a client it builds
// itself, and it logs and ignores a file it cannot read: here every failure
// is an error naming its variable, so that the worker does not start.
func (c Config) OTLPTLS() (*tls.Config, error) {
	caVar, ca := envOTLP+"CERTIFICATE", c.OTLPCertificate
	if c.OTLPTracesCertificate != "" {
		caVar, ca = envOTLPTraces+"CERTIFICATE", c.OTLPTracesCertificate
	}
	prefix, cert, key := envOTLP, c.OTLPClientCertificate, c.OTLPClientKey
	if c.OTLPTracesClientCertificate != "" || c.OTLPTracesClientKey != "" {
		prefix, cert, key = envOTLPTraces, c.OTLPTracesClientCertificate, c.OTLPTracesClientKey
	}
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", caVar, err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", caVar, ca)
		}
	}
	if cert == "" && key == "" {
		return conf, nil
	}
	certVar, keyVar := prefix+"CLIENT_CERTIFICATE", prefix+"CLIENT_KEY"
	if cert == "" || key == "" {
		return nil, fmt.Errorf("%s and %s go together", certVar, keyVar)
	}
	certPEM, err := os.ReadFile(cert)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certVar, err)
	}
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyVar, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM) // its errors quote no key material
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", certVar, keyVar, err)
	}
	conf.Certificates = []tls.Certificate{pair}
	return conf, nil
}

// The prefixes of the OTLP exporter's variables.
const (
	envOTLP       = "OTEL_EXPORTER_OTLP_"
	envOTLPTraces = "OTEL_EXPORTER_OTLP_TRACES_"
)
