package consumer

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// attempt is what the transport saw of one export request. otlptracehttp
// reports failures as text only (no status code, no Retry-After, partial
// success as an error even when nothing was rejected), yet the ack
// decision depends on exactly those, so the transport records them.
type attempt struct {
	status     int // 0: no HTTP answer (network error, or an exporter that is not HTTP)
	retryAfter time.Duration
	rejected   int64
}

type attemptKey struct{}

func withAttempt(ctx context.Context) (context.Context, *attempt) {
	a := &attempt{}
	return context.WithValue(ctx, attemptKey{}, a), a
}

// HTTPClient returns the http.Client to give the OTLP exporter
// (otlptracehttp.WithHTTPClient) so that the consumer can classify export
// failures: it records each answer's status, Retry-After and OTLP partial
// success. Configure the exporter with retries disabled: the consumer
// retries by nak, which keeps memory bounded and lets other replicas help.
//
// Its transport is http.DefaultTransport's settings, but keeping up to
// maxIdleConnsPerHost idle connections to the receiver instead of 2, so
// that more than two concurrent exports reuse their connections rather
// than open and close one per request.
func HTTPClient(timeout time.Duration, opts ...ClientOption) *http.Client {
	var o clientOptions
	for _, opt := range opts {
		opt(&o)
	}
	var base http.RoundTripper = http.DefaultTransport
	if t, ok := base.(*http.Transport); ok {
		t = t.Clone()
		t.MaxIdleConnsPerHost = maxIdleConnsPerHost
		if o.tls != nil {
			t.TLSClientConfig = o.tls
		}
		base = t
	}
	return &http.Client{Timeout: timeout, Transport: recordingTransport{base: base}}
}

// maxIdleConnsPerHost is the most idle connections kept to the receiver:
// more than the export concurrency anyone runs.
const maxIdleConnsPerHost = 64

type recordingTransport struct {
	base http.RoundTripper
}

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	a, _ := req.Context().Value(attemptKey{}).(*attempt)
	if a == nil || err != nil {
		return resp, explainTLS(err)
	}
	a.status = resp.StatusCode
	a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if resp.StatusCode/100 == 2 && resp.Body != nil {
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if rerr == nil && len(body) > 0 && resp.Header.Get("Content-Type") == "application/x-protobuf" {
			var out coltracepb.ExportTraceServiceResponse
			if proto.Unmarshal(body, &out) == nil && out.GetPartialSuccess() != nil {
				a.rejected = out.GetPartialSuccess().GetRejectedSpans()
			}
		}
	}
	return resp, nil
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// verdict is what an export's outcome means for its messages.
type verdict int

const (
	exported  verdict = iota // every span accepted: ack
	transient                // the receiver is down or throttling: nak with delay
	rejected                 // the receiver refused the request for good: split or dead-letter
)

// classify maps an export's error and what the transport saw to a
// verdict, per CONTRACT §3: 408, 429, 5xx and no answer are transient;
// other 4xx, and a partial success that rejected spans, are rejections.
func classify(err error, a *attempt) verdict {
	if err == nil {
		return exported
	}
	switch s := a.status; {
	case s/100 == 2:
		if a.rejected > 0 {
			return rejected
		}
		return exported // a partial success with nothing rejected is a warning
	case s == 0, s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		return transient
	default:
		return rejected
	}
}
