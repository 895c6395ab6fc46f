// Package otlptest is a real OTLP/HTTP trace receiver for tests and benchmarks.
//
// A [Receiver] is an HTTP server on 127.0.0.1, on a free port, that accepts
// POST /v1/traces with a protobuf (application/x-protobuf) or OTLP/JSON
// (application/json) body, optionally gzip-compressed, decodes it into an
// ExportTraceServiceRequest, records it, and answers as an OTLP collector would:
// 200 with an ExportTraceServiceResponse by default, or whatever a behaviour set
// with [Receiver.SetBehavior] decides (throttling, errors, partial success). It can
// be stopped and restarted on the same port to simulate an outage.
//
// Everything recorded can be inspected concurrently with the requests arriving:
// [Receiver.Requests], [Receiver.Accepted], [Receiver.Spans], [Receiver.WaitSpans].
package otlptest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// TracesPath is the URL path on which a Receiver accepts trace exports.
const TracesPath = "/v1/traces"

// MaxBodySize is the largest request body a Receiver reads, both as sent and
// after gzip decompression. A larger body is answered 413 Request Entity Too Large.
const MaxBodySize = 64 << 20

// ErrClosed is returned by [Receiver.Restart], [Receiver.WaitSpans] and
// [Receiver.WaitRequests] once the receiver has been closed.
var ErrClosed = errors.New("otlptest: receiver closed")

// Response is the answer a receiver gives to one decoded export request.
type Response struct {
	// Status is the HTTP status code; 0 means 200. A value outside 200–599 is
	// answered 500.
	Status int
	// RetryAfter, when not empty, is sent as the Retry-After header (seconds or
	// an HTTP date).
	RetryAfter string
	// RejectedSpans > 0 with a 2xx status makes the answer an OTLP partial
	// success rejecting that many spans.
	RejectedSpans int64
	// ErrorMessage is the partial_success.error_message of a 2xx answer, or the
	// message of the google.rpc.Status body of an error answer (the status
	// text when empty).
	ErrorMessage string
}

// Accepted reports whether resp accepts every span: a 2xx status (or 0) and
// no rejected spans.
func (resp Response) Accepted() bool {
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	return status >= 200 && status <= 299 && resp.RejectedSpans <= 0
}

// Request is one export request received on [TracesPath].
type Request struct {
	// Header is a copy of the request's headers.
	Header http.Header
	// Gzip reports whether the body was sent with Content-Encoding: gzip.
	Gzip bool
	// JSON reports whether the body was OTLP/JSON rather than protobuf.
	JSON bool
	// Body is the decoded request; nil when decoding failed (Response.Status is
	// then 4xx) or when the receiver was started with [DiscardBodies].
	Body *coltracepb.ExportTraceServiceRequest
	// Spans is the number of spans in the decoded body.
	Spans int
	// Response is the answer given, with Status always set (200, not 0).
	Response Response
}

// Option configures a receiver started by [Start].
type Option func(*config)

type config struct {
	discardBodies bool
	tls           *tls.Config
}

// DiscardBodies makes the receiver count spans without keeping the decoded
// bodies, so that a benchmark's memory does not grow with what it sends:
// Request.Body is nil and [Receiver.Spans] returns nothing, while
// Request.Spans, [Receiver.SpanCount] and [Receiver.WaitSpans] still work.
func DiscardBodies() Option {
	return func(c *config) { c.discardBodies = true }
}

// Receiver is an OTLP/HTTP trace receiver. Its methods are safe for concurrent
// use.
type Receiver struct {
	addr string // 127.0.0.1:PORT, the same across restarts
	cfg  config

	mu       sync.Mutex
	srv      *http.Server  // nil while stopped
	served   chan struct{} // closed when srv.Serve has returned
	closed   bool
	behavior func(*coltracepb.ExportTraceServiceRequest) Response
	requests []Request
	spans    int           // spans in accepted requests
	changed  chan struct{} // closed and replaced whenever requests change
}

// Start starts a receiver on 127.0.0.1 on a free port. The caller must Close it.
func Start(opts ...Option) (*Receiver, error) {
	r := &Receiver{changed: make(chan struct{})}
	for _, o := range opts {
		o(&r.cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("otlptest: listen: %w", err)
	}
	r.addr = ln.Addr().String()
	r.mu.Lock()
	r.serve(ln)
	r.mu.Unlock()
	return r, nil
}

// TB is the part of testing.TB that [StartT] uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// StartT starts a receiver for a test or benchmark, fails tb if it cannot, and
// closes it when tb ends.
func StartT(tb TB, opts ...Option) *Receiver {
	tb.Helper()
	r, err := Start(opts...)
	if err != nil {
		tb.Fatalf("otlptest: %v", err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// serve serves on ln. r.mu must be held.
func (r *Receiver) serve(ln net.Listener) {
	if r.cfg.tls != nil {
		ln = tls.NewListener(ln, r.cfg.tls)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(r.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // always an error; http.ErrServerClosed after Stop
	}()
	r.srv, r.served = srv, served
}

// Endpoint returns the base URL of the receiver, "http://127.0.0.1:PORT"
// ("https://" with [WithTLS]), as OTEL_EXPORTER_OTLP_ENDPOINT expects it. It
// does not change across restarts.
func (r *Receiver) Endpoint() string {
	if r.cfg.tls != nil {
		return "https://" + r.addr
	}
	return "http://" + r.addr
}

// TracesURL returns Endpoint() + [TracesPath], as
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and otlptracehttp.WithEndpointURL expect it.
func (r *Receiver) TracesURL() string { return r.Endpoint() + TracesPath }

// Stop closes the listener and every connection, so that clients get
// "connection refused" until [Receiver.Restart] (a client's first request on a
// pooled keep-alive connection may fail with EOF instead). Recorded requests
// are kept. Stopping a stopped receiver does nothing.
func (r *Receiver) Stop() error {
	r.mu.Lock()
	srv, served := r.srv, r.served
	r.srv, r.served = nil, nil
	r.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-served
	return err
}

// Restart listens again on the same port after [Receiver.Stop]. Restarting a
// running receiver does nothing; restarting a closed one returns [ErrClosed].
// It fails if another process took the port meanwhile.
func (r *Receiver) Restart() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return ErrClosed
	case r.srv != nil:
		return nil
	}
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		return fmt.Errorf("otlptest: listen again on %s: %w", r.addr, err)
	}
	r.serve(ln)
	return nil
}

// Close stops the receiver for good and wakes every [Receiver.WaitSpans] and
// [Receiver.WaitRequests] call.
// Recorded requests stay readable. Close is idempotent.
func (r *Receiver) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		r.notifyLocked()
	}
	r.mu.Unlock()
	return r.Stop()
}

// SetBehavior sets the function that decides the answer to each decoded
// request; nil restores the default, which accepts everything with 200. f runs
// on the request's goroutine before the request is recorded, and may block to
// simulate a slow receiver; it may run concurrently for concurrent requests.
// It must not modify the request.
func (r *Receiver) SetBehavior(f func(*coltracepb.ExportTraceServiceRequest) Response) {
	r.mu.Lock()
	r.behavior = f
	r.mu.Unlock()
}

// Requests returns every request received on [TracesPath], decoded or not, in
// arrival order, including rejected ones.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// Accepted returns the requests whose every span was accepted (answered 2xx
// with no rejected spans), in arrival order.
func (r *Receiver) Accepted() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Request
	for _, req := range r.requests {
		if req.Response.Accepted() {
			out = append(out, req)
		}
	}
	return out
}

// Spans returns the spans of the accepted requests, flattened in the order
// they arrived.
func (r *Receiver) Spans() []Span {
	var out []Span
	for _, req := range r.Accepted() {
		out = appendSpans(out, req.Body)
	}
	return out
}

// SpanCount returns the number of spans in the accepted requests.
func (r *Receiver) SpanCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.spans
}

// WaitSpans blocks until [Receiver.SpanCount] >= n. It returns ctx's error if
// ctx is done first, or [ErrClosed] if the receiver is closed first.
func (r *Receiver) WaitSpans(ctx context.Context, n int) error {
	return r.wait(ctx, func() bool { return r.spans >= n })
}

// WaitRequests blocks until at least n requests have been received, whatever
// their answer. It returns ctx's error if ctx is done first, or [ErrClosed] if
// the receiver is closed first.
func (r *Receiver) WaitRequests(ctx context.Context, n int) error {
	return r.wait(ctx, func() bool { return len(r.requests) >= n })
}

// wait blocks until done, called with r.mu held, reports true.
func (r *Receiver) wait(ctx context.Context, done func() bool) error {
	for {
		r.mu.Lock()
		ok, closed, changed := done(), r.closed, r.changed
		r.mu.Unlock()
		switch {
		case ok:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Reset forgets every recorded request and span. The behaviour is kept.
func (r *Receiver) Reset() {
	r.mu.Lock()
	r.requests, r.spans = nil, 0
	r.notifyLocked()
	r.mu.Unlock()
}

// record appends req. r.mu must not be held.
func (r *Receiver) record(req Request) {
	if r.cfg.discardBodies {
		req.Body = nil
	}
	r.mu.Lock()
	r.requests = append(r.requests, req)
	if req.Response.Accepted() {
		r.spans += req.Spans
	}
	r.notifyLocked()
	r.mu.Unlock()
}

// notifyLocked wakes the waiters. r.mu must be held.
func (r *Receiver) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Receiver) currentBehavior() func(*coltracepb.ExportTraceServiceRequest) Response {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.behavior
}
