package otlptest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/spanferry/spanferry/internal/otlptest"
)

// newExporter returns a real OTLP/HTTP exporter sending to r, with retries
// disabled unless opts enable them.
func newExporter(t *testing.T, r *otlptest.Receiver, opts ...otlptracehttp.Option) *otlptrace.Exporter {
	t.Helper()
	opts = append([]otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(r.TracesURL()),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
		otlptracehttp.WithTimeout(5 * time.Second),
	}, opts...)
	exp, err := otlptracehttp.New(t.Context(), opts...)
	if err != nil {
		t.Fatalf("otlptracehttp.New: %v", err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

var (
	traceID = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	rootID  = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	childID = trace.SpanID{0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8}
	t0      = time.Date(2026, 11, 24, 10, 0, 0, 123456789, time.UTC)
)

func spanContext(id trace.SpanID) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: id, TraceFlags: trace.FlagsSampled})
}

// twoSpans returns a root span and a child of it, with attributes of every
// type, a resource, an event and an error status.
func twoSpans() []sdktrace.ReadOnlySpan {
	res := resource.NewSchemaless(
		attribute.String("service.name", "backend-workflows"),
		attribute.Int64("replica", 3),
	)
	scope := instrumentation.Scope{Name: "github.com/spanferry/spanferry", Version: "0.1.0"}
	return tracetest.SpanStubs{
		{
			Name:        "support-agent",
			SpanContext: spanContext(rootID),
			SpanKind:    trace.SpanKindInternal,
			StartTime:   t0,
			EndTime:     t0.Add(2350*time.Millisecond + 1),
			Attributes: []attribute.KeyValue{
				attribute.String("traceloop.span.kind", "workflow"),
				attribute.Int64("gen_ai.usage.input_tokens", 812),
				attribute.Float64("gen_ai.usage.cost", 0.00231),
				attribute.Bool("cached", true),
				attribute.StringSlice("docs", []string{"doc-1", "doc-2"}),
				attribute.Int64Slice("ints", []int64{1, -2}),
				attribute.Float64Slice("floats", []float64{0.5}),
				attribute.BoolSlice("bools", []bool{false, true}),
			},
			Status:               sdktrace.Status{Code: codes.Error, Description: "step timed out"},
			Events:               []sdktrace.Event{{Name: "exception", Time: t0.Add(2 * time.Second), Attributes: []attribute.KeyValue{attribute.String("exception.type", "TimeoutError"), attribute.String("exception.message", "step timed out")}}},
			Resource:             res,
			InstrumentationScope: scope,
		},
		{
			Name:                 "retrieve",
			SpanContext:          spanContext(childID),
			Parent:               spanContext(rootID),
			SpanKind:             trace.SpanKindClient,
			StartTime:            t0.Add(7),
			EndTime:              t0.Add(120 * time.Millisecond),
			Resource:             res,
			InstrumentationScope: scope,
		},
	}.Snapshots()
}

func TestExportIsDecoded(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []otlptracehttp.Option
		gzip     bool
		jsonBody bool
	}{
		{name: "protobuf"},
		{name: "protobuf+gzip", opts: []otlptracehttp.Option{otlptracehttp.WithCompression(otlptracehttp.GzipCompression)}, gzip: true},
		{name: "json", opts: []otlptracehttp.Option{otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON)}, jsonBody: true},
		{name: "json+gzip", opts: []otlptracehttp.Option{otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON), otlptracehttp.WithCompression(otlptracehttp.GzipCompression)}, gzip: true, jsonBody: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := otlptest.StartT(t)
			exp := newExporter(t, r, tc.opts...)
			if err := exp.ExportSpans(t.Context(), twoSpans()); err != nil {
				t.Fatalf("ExportSpans: %v", err)
			}

			reqs := r.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			req := reqs[0]
			if req.Gzip != tc.gzip || req.JSON != tc.jsonBody {
				t.Errorf("Gzip, JSON = %v, %v; want %v, %v", req.Gzip, req.JSON, tc.gzip, tc.jsonBody)
			}
			if req.Body == nil || req.Spans != 2 || req.Response.Status != http.StatusOK {
				t.Errorf("request = body %v, %d spans, status %d; want a body, 2 spans, 200", req.Body != nil, req.Spans, req.Response.Status)
			}
			if ua := req.Header.Get("User-Agent"); !strings.HasPrefix(ua, "OTel OTLP Exporter Go/") {
				t.Errorf("User-Agent = %q", ua)
			}
			if got := len(r.Accepted()); got != 1 {
				t.Errorf("Accepted() has %d requests, want 1", got)
			}
			if got := r.SpanCount(); got != 2 {
				t.Errorf("SpanCount() = %d, want 2", got)
			}

			spans := r.Spans()
			if len(spans) != 2 {
				t.Fatalf("got %d spans, want 2", len(spans))
			}
			root, child := spans[0], spans[1]

			wantRes := map[string]any{"service.name": "backend-workflows", "replica": int64(3)}
			for _, s := range spans {
				if s.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
					t.Errorf("%s: TraceID = %q", s.Name, s.TraceID)
				}
				if !reflect.DeepEqual(s.Resource, wantRes) {
					t.Errorf("%s: Resource = %#v, want %#v", s.Name, s.Resource, wantRes)
				}
				if s.Scope != "github.com/spanferry/spanferry" {
					t.Errorf("%s: Scope = %q", s.Name, s.Scope)
				}
			}

			if root.Name != "support-agent" || root.SpanID != "00f067aa0ba902b7" || root.ParentSpanID != "" {
				t.Errorf("root = %q %q parent %q", root.Name, root.SpanID, root.ParentSpanID)
			}
			if root.Kind != tracepb.Span_SPAN_KIND_INTERNAL {
				t.Errorf("root kind = %v", root.Kind)
			}
			if !root.Start.Equal(t0) || !root.End.Equal(t0.Add(2350*time.Millisecond+1)) {
				t.Errorf("root times = %v .. %v", root.Start, root.End)
			}
			if root.End.Sub(root.Start) != 2350*time.Millisecond+1 {
				t.Errorf("root duration = %v, want exact nanoseconds", root.End.Sub(root.Start))
			}
			wantAttrs := map[string]any{
				"traceloop.span.kind":       "workflow",
				"gen_ai.usage.input_tokens": int64(812),
				"gen_ai.usage.cost":         0.00231,
				"cached":                    true,
				"docs":                      []any{"doc-1", "doc-2"},
				"ints":                      []any{int64(1), int64(-2)},
				"floats":                    []any{0.5},
				"bools":                     []any{false, true},
			}
			if !reflect.DeepEqual(root.Attributes, wantAttrs) {
				t.Errorf("root attributes = %#v, want %#v", root.Attributes, wantAttrs)
			}
			if root.StatusCode != tracepb.Status_STATUS_CODE_ERROR || root.StatusMessage != "step timed out" {
				t.Errorf("root status = %v %q", root.StatusCode, root.StatusMessage)
			}
			ev, ok := root.Event("exception")
			if !ok || len(root.Events) != 1 {
				t.Fatalf("root events = %#v", root.Events)
			}
			if !ev.Time.Equal(t0.Add(2*time.Second)) || !reflect.DeepEqual(ev.Attributes, map[string]any{"exception.type": "TimeoutError", "exception.message": "step timed out"}) {
				t.Errorf("exception event = %#v", ev)
			}

			if child.Name != "retrieve" || child.SpanID != "53995c3f42cd8ad8" || child.ParentSpanID != "00f067aa0ba902b7" {
				t.Errorf("child = %q %q parent %q", child.Name, child.SpanID, child.ParentSpanID)
			}
			if child.Kind != tracepb.Span_SPAN_KIND_CLIENT || child.StatusCode != tracepb.Status_STATUS_CODE_UNSET {
				t.Errorf("child kind, status = %v, %v", child.Kind, child.StatusCode)
			}
			if !child.Start.Equal(t0.Add(7)) || !child.End.Equal(t0.Add(120*time.Millisecond)) {
				t.Errorf("child times = %v .. %v", child.Start, child.End)
			}
			if len(child.Attributes) != 0 || len(child.Events) != 0 {
				t.Errorf("child attributes, events = %#v, %#v", child.Attributes, child.Events)
			}
		})
	}
}

func TestThrottledRequestIsNotAccepted(t *testing.T) {
	r := otlptest.StartT(t)
	r.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
		return otlptest.Response{Status: http.StatusServiceUnavailable, RetryAfter: "7", ErrorMessage: "overloaded"}
	})
	exp := newExporter(t, r)
	err := exp.ExportSpans(t.Context(), twoSpans())
	if err == nil {
		t.Fatal("ExportSpans succeeded against a 503")
	}
	if len(r.Accepted()) != 0 || r.SpanCount() != 0 || len(r.Spans()) != 0 {
		t.Errorf("a 503 request counts as accepted: %d requests, %d spans", len(r.Accepted()), r.SpanCount())
	}
	reqs := r.Requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1 (retries are disabled)", len(reqs))
	}
	want := otlptest.Response{Status: 503, RetryAfter: "7", ErrorMessage: "overloaded"}
	if reqs[0].Response != want || reqs[0].Body == nil || reqs[0].Spans != 2 {
		t.Errorf("recorded %+v with %d spans, want %+v with 2", reqs[0].Response, reqs[0].Spans, want)
	}

	// On the wire: the Retry-After header and a google.rpc.Status body.
	resp, body := post(t, r.TracesURL(), "application/x-protobuf", "", marshal(t, twoSpans()))
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "7" || resp.Header.Get("Content-Type") != "application/x-protobuf" {
		t.Errorf("answer = %d, Retry-After %q, Content-Type %q", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"))
	}
	var st statuspb.Status
	if err := proto.Unmarshal(body, &st); err != nil || st.GetMessage() != "overloaded" || st.GetCode() != 14 {
		t.Errorf("body = %v (%v), want UNAVAILABLE overloaded", &st, err)
	}

	r.SetBehavior(nil)
	if err := exp.ExportSpans(t.Context(), twoSpans()); err != nil || r.SpanCount() != 2 {
		t.Errorf("after SetBehavior(nil): err %v, %d spans accepted", err, r.SpanCount())
	}
}

func TestBadRequestIsNotAccepted(t *testing.T) {
	r := otlptest.StartT(t)
	r.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
		return otlptest.Response{Status: http.StatusBadRequest, ErrorMessage: "span name too long"}
	})
	err := newExporter(t, r).ExportSpans(t.Context(), twoSpans())
	if err == nil || !strings.Contains(err.Error(), "400 Bad Request") {
		t.Fatalf("ExportSpans error = %v, want a 400", err)
	}
	if len(r.Requests()) != 1 || len(r.Accepted()) != 0 || r.SpanCount() != 0 {
		t.Errorf("%d requests, %d accepted, %d spans; want 1, 0, 0", len(r.Requests()), len(r.Accepted()), r.SpanCount())
	}
}

func TestPartialSuccessIsNotAccepted(t *testing.T) {
	r := otlptest.StartT(t)
	r.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
		return otlptest.Response{RejectedSpans: 1, ErrorMessage: "attribute too long"}
	})
	// otlptracehttp v1.47.0 returns the partial success from ExportSpans (an
	// error wrapping its internal PartialSuccess type), besides handing it to otel.Handle.
	err := newExporter(t, r).ExportSpans(t.Context(), twoSpans())
	t.Logf("ExportSpans on a partial success: %v", err)

	reqs := r.Requests()
	if len(reqs) != 1 || reqs[0].Response.Status != 200 || reqs[0].Response.RejectedSpans != 1 {
		t.Fatalf("requests = %+v", reqs)
	}
	if len(r.Accepted()) != 0 || r.SpanCount() != 0 || len(r.Spans()) != 0 {
		t.Errorf("a partial success counts as accepted")
	}

	_, body := post(t, r.TracesURL(), "application/x-protobuf", "", marshal(t, twoSpans()))
	var out coltracepb.ExportTraceServiceResponse
	if err := proto.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if ps := out.GetPartialSuccess(); ps.GetRejectedSpans() != 1 || ps.GetErrorMessage() != "attribute too long" {
		t.Errorf("partial_success = %v", ps)
	}
}

func TestStopRestart(t *testing.T) {
	r := otlptest.StartT(t)
	endpoint := r.Endpoint()
	exp := newExporter(t, r)
	if err := exp.ExportSpans(t.Context(), twoSpans()); err != nil {
		t.Fatalf("ExportSpans: %v", err)
	}

	if err := r.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	// The first attempt may reuse the pooled keep-alive connection that Stop
	// closed and fail with EOF; a fresh connection is refused.
	if err := exp.ExportSpans(t.Context(), twoSpans()); err == nil {
		t.Fatal("ExportSpans succeeded while stopped")
	}
	if err := exp.ExportSpans(t.Context(), twoSpans()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("ExportSpans while stopped: %v, want connection refused", err)
	}

	if err := r.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if r.Endpoint() != endpoint {
		t.Errorf("endpoint changed from %s to %s", endpoint, r.Endpoint())
	}
	if err := exp.ExportSpans(t.Context(), twoSpans()); err != nil {
		t.Fatalf("ExportSpans after Restart: %v", err)
	}
	if got := r.SpanCount(); got != 4 {
		t.Errorf("SpanCount() = %d, want 4 (recordings survive a restart)", got)
	}

	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Restart(); !errors.Is(err, otlptest.ErrClosed) {
		t.Errorf("Restart after Close = %v, want ErrClosed", err)
	}
}

func TestWaitSpans(t *testing.T) {
	r := otlptest.StartT(t)
	exp := newExporter(t, r)

	errc := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		err := exp.ExportSpans(context.Background(), twoSpans())
		if err == nil {
			err = exp.ExportSpans(context.Background(), twoSpans())
		}
		errc <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := r.WaitSpans(ctx, 4); err != nil {
		t.Fatalf("WaitSpans(4): %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("ExportSpans: %v", err)
	}
	if err := r.WaitRequests(ctx, 2); err != nil {
		t.Fatalf("WaitRequests(2): %v", err)
	}

	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := r.WaitSpans(short, 5); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitSpans(5) = %v, want context.DeadlineExceeded", err)
	}

	r.Reset()
	if r.SpanCount() != 0 || len(r.Requests()) != 0 {
		t.Errorf("Reset left %d spans, %d requests", r.SpanCount(), len(r.Requests()))
	}

	waitErr := make(chan error, 1)
	go func() { waitErr <- r.WaitSpans(context.Background(), 1) }()
	time.Sleep(20 * time.Millisecond)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waitErr; !errors.Is(err, otlptest.ErrClosed) {
		t.Errorf("WaitSpans on Close = %v, want ErrClosed", err)
	}
}

func TestMalformedRequests(t *testing.T) {
	r := otlptest.StartT(t)
	valid := marshal(t, twoSpans())
	var bomb bytes.Buffer // zeros that decompress to just over MaxBodySize
	zw, err := gzip.NewWriterLevel(&bomb, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(make([]byte, otlptest.MaxBodySize+1)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, path, contentType, encoding string
		body                              []byte
		want                              int
		recorded                          bool
	}{
		{name: "unknown path", path: "/v1/metrics", contentType: "application/x-protobuf", body: valid, want: 404},
		{name: "garbage protobuf", path: "/v1/traces", contentType: "application/x-protobuf", body: []byte("\xff\xff\xff not protobuf"), want: 400, recorded: true},
		{name: "gzip header on plain body", path: "/v1/traces", contentType: "application/x-protobuf", encoding: "gzip", body: valid, want: 400, recorded: true},
		{name: "unknown encoding", path: "/v1/traces", contentType: "application/x-protobuf", encoding: "br", body: valid, want: 415, recorded: true},
		{name: "text body", path: "/v1/traces", contentType: "text/plain", body: []byte("hello"), want: 415, recorded: true},
		{name: "json with base64 ids", path: "/v1/traces", contentType: "application/json", body: []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"S/kvNXezTaajzpKdDg5HNg==","spanId":"AAAAAAAAAAE=","name":"x"}]}]}]}`), want: 400, recorded: true},
		{name: "decompresses over the limit", path: "/v1/traces", contentType: "application/x-protobuf", encoding: "gzip", body: bomb.Bytes(), want: 413, recorded: true},
		{name: "empty request", path: "/v1/traces", contentType: "application/x-protobuf", body: nil, want: 200, recorded: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.Reset()
			resp, _ := post(t, r.Endpoint()+tc.path, tc.contentType, tc.encoding, tc.body)
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
			}
			reqs := r.Requests()
			if !tc.recorded {
				if len(reqs) != 0 {
					t.Errorf("recorded %d requests, want none", len(reqs))
				}
				return
			}
			if len(reqs) != 1 || reqs[0].Response.Status != tc.want {
				t.Fatalf("requests = %+v", reqs)
			}
			if tc.want != 200 && (reqs[0].Body != nil || reqs[0].Response.ErrorMessage == "" || len(r.Accepted()) != 0) {
				t.Errorf("failed request recorded as %+v", reqs[0])
			}
		})
	}

	resp, err := http.Get(r.TracesURL())
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET status = %d, want 405", resp.StatusCode)
	}
}

func TestJSONSnakeCaseAndLinks(t *testing.T) {
	r := otlptest.StartT(t)
	body := `{"resource_spans":[{"scope_spans":[{"scope":{"name":"s"},"spans":[{
		"trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736","span_id":"53995c3f42cd8ad8","parent_span_id":"00f067aa0ba902b7",
		"name":"x","kind":1,"start_time_unix_nano":"1795514400123456789","end_time_unix_nano":1795514400123456790,
		"attributes":[{"key":"n","value":{"intValue":"9007199254740993"}}],
		"links":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7"}]}]}]}]}`
	resp, out := post(t, r.TracesURL(), "application/json; charset=utf-8", "", []byte(body))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), out)
	}
	spans := r.Spans()
	if len(spans) != 1 {
		t.Fatalf("got %d spans", len(spans))
	}
	s := spans[0]
	if s.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || s.SpanID != "53995c3f42cd8ad8" || s.ParentSpanID != "00f067aa0ba902b7" {
		t.Errorf("ids = %s %s %s", s.TraceID, s.SpanID, s.ParentSpanID)
	}
	if s.Start.UnixNano() != 1795514400123456789 || s.End.UnixNano() != 1795514400123456790 || s.Scope != "s" {
		t.Errorf("times = %d %d, scope %q", s.Start.UnixNano(), s.End.UnixNano(), s.Scope)
	}
	if s.Attributes["n"] != int64(9007199254740993) {
		t.Errorf("n = %#v, want the exact int64", s.Attributes["n"])
	}
	if links := s.Proto.GetLinks(); len(links) != 1 || len(links[0].GetSpanId()) != 8 {
		t.Errorf("links = %v", links)
	}
}

func TestDiscardBodies(t *testing.T) {
	r := otlptest.StartT(t, otlptest.DiscardBodies())
	if err := newExporter(t, r).ExportSpans(t.Context(), twoSpans()); err != nil {
		t.Fatal(err)
	}
	reqs := r.Requests()
	if len(reqs) != 1 || reqs[0].Body != nil || reqs[0].Spans != 2 || r.SpanCount() != 2 || len(r.Spans()) != 0 {
		t.Errorf("requests %+v, SpanCount %d, Spans %d", reqs, r.SpanCount(), len(r.Spans()))
	}
}

func TestConcurrentUse(t *testing.T) {
	r := otlptest.StartT(t)
	exp := newExporter(t, r, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	const exporters, each = 8, 10
	var wg sync.WaitGroup
	for range exporters {
		wg.Go(func() {
			for range each {
				_ = exp.ExportSpans(context.Background(), twoSpans())
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			if i%2 == 0 {
				r.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response { return otlptest.Response{Status: 503} })
			} else {
				r.SetBehavior(nil)
			}
			_ = r.Spans()
			_ = r.Accepted()
		}
	})
	wg.Wait()
	if got := len(r.Requests()); got != exporters*each {
		t.Errorf("got %d requests, want %d", got, exporters*each)
	}
	if got, want := r.SpanCount(), 2*len(r.Accepted()); got != want {
		t.Errorf("SpanCount() = %d, want %d", got, want)
	}
}

func marshal(t *testing.T, spans []sdktrace.ReadOnlySpan) []byte {
	t.Helper()
	// Round-trip through a receiver to get the exporter's own encoding.
	r := otlptest.StartT(t)
	if err := newExporter(t, r).ExportSpans(t.Context(), spans); err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(r.Requests()[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(t *testing.T, url, contentType, encoding string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}
