package tlserr_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/spanferry/spanferry/internal/tlserr"
)

func TestIs(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{io.EOF, false},
		{errors.New("connection refused"), false},
		{fmt.Errorf("post: %w", x509.UnknownAuthorityError{}), true},
		{fmt.Errorf("post: %w", x509.HostnameError{Host: "x"}), true},
		{fmt.Errorf("post: %w", &tls.CertificateVerificationError{Err: errors.New("x")}), true},
		{fmt.Errorf("post: %w", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), true},
		{errors.New(`Post "https://127.0.0.1:1/v1/traces": remote error: tls: bad certificate`), true},
	} {
		if got := tlserr.Is(tc.err); got != tc.want {
			t.Errorf("Is(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
