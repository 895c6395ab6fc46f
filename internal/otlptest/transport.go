package otlptest

import (
	"io"
	"net/http"
	"strings"
)

// DiscardTransport is an http.RoundTripper that reads every request's body
// and answers 200 with an empty one, without a network or a decoder. It is
// for benchmarks of the exporter's encoding alone; tests of what goes over
// the wire use a Receiver.
type DiscardTransport struct{}

// RoundTrip implements http.RoundTripper.
func (DiscardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}
