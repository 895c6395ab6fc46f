// Package tlstest makes certificate authorities and the certificates they
// sign, for tests of TLS and mutual TLS: a CA generated per test, a server
// certificate for 127.0.0.1 and localhost, client certificates, and the PEM
// files the worker's *_CERTIFICATE/*_KEY variables point at.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority that lives for one test.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

// NewCA generates a CA named name, valid for the next hour.
func NewCA(tb testing.TB, name string) *CA {
	tb.Helper()
	key := newKey(tb)
	tmpl := template(name)
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("tlstest: CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("tlstest: CA: %v", err)
	}
	return &CA{cert: cert, key: key, der: der}
}

// Pool returns a pool holding only the CA, to verify what it signed (a
// server's tls.Config.ClientCAs).
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// CertFile writes the CA's certificate (PEM) into a temporary directory
// and returns its path.
func (ca *CA) CertFile(tb testing.TB) string {
	tb.Helper()
	return writeFile(tb, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der}))
}

// Server returns a server certificate for 127.0.0.1, ::1 and localhost.
func (ca *CA) Server(tb testing.TB) tls.Certificate {
	tb.Helper()
	cert, _, _ := ca.issue(tb, "server", x509.ExtKeyUsageServerAuth)
	return cert
}

// ClientFiles writes a client certificate named name and its key (PEM)
// into a temporary directory and returns their paths.
func (ca *CA) ClientFiles(tb testing.TB, name string) (certFile, keyFile string) {
	tb.Helper()
	_, certPEM, keyPEM := ca.issue(tb, name, x509.ExtKeyUsageClientAuth)
	return writeFile(tb, "client.pem", certPEM), writeFile(tb, "client-key.pem", keyPEM)
}

// issue signs a certificate for name with the given usage.
func (ca *CA) issue(tb testing.TB, name string, usage x509.ExtKeyUsage) (tls.Certificate, []byte, []byte) {
	tb.Helper()
	key := newKey(tb)
	tmpl := template(name)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatalf("tlstest: %s: %v", name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatalf("tlstest: %s: %v", name, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		tb.Fatalf("tlstest: %s: %v", name, err)
	}
	return cert, certPEM, keyPEM
}

func template(name string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"spanferry tests"}},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("tlstest: key: %v", err)
	}
	return key
}

func writeFile(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatalf("tlstest: %v", err)
	}
	return path
}
