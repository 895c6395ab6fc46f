package fileexport_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/spanferry/spanferry/internal/fileexport"
	"github.com/spanferry/spanferry/internal/otlptest"
)

var (
	traceID      = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	otherTraceID = trace.TraceID{0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	rootID       = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	childID      = trace.SpanID{0xfb, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06}
	otherID      = trace.SpanID{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
	remoteID     = trace.SpanID{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11}
)

func spanContext(tid trace.TraceID, sid trace.SpanID, remote bool) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: remote})
}

// stubs returns spans of two resources with every kind of attribute, events,
// a link, an error status and parents, local and remote.
func stubs() []sdktrace.ReadOnlySpan {
	start := time.Date(2026, 11, 24, 10, 0, 0, 123456789, time.UTC)
	scope := instrumentation.Scope{Name: "spanferry", Version: "test"}
	res1 := resource.NewSchemaless(attribute.String("service.name", "backend-workflows"), attribute.Int("res.replicas", 3))
	res2 := resource.NewSchemaless(attribute.String("service.name", "support-triage"))
	root := tracetest.SpanStub{
		Name:        "support-agent",
		SpanContext: spanContext(traceID, rootID, false),
		SpanKind:    trace.SpanKindInternal,
		StartTime:   start,
		EndTime:     start.Add(2350 * time.Millisecond),
		Attributes: []attribute.KeyValue{
			attribute.String("traceloop.span.kind", "workflow"),
			attribute.Bool("spanferry.ok", false),
			attribute.Int64("big", 1<<62),
			attribute.Int64("negative", -42),
			attribute.Float64("gen_ai.usage.cost", 0.00231),
			attribute.BoolSlice("bools", []bool{true, false}),
			attribute.Int64Slice("ints", []int64{1, -2, 1 << 60}),
			attribute.Float64Slice("floats", []float64{0.5, -1e-9}),
			attribute.StringSlice("strings", []string{"a", "b"}),
			// Text built to look like an id field to a careless rewriter.
			attribute.String("traceId", "AAAAAAAAAAA="),
			attribute.String("traceloop.entity.input", `{"traceId":"AAAA","spanId":"x\\"} "ünïcødé" <>&`+"\n\t"),
		},
		Events: []sdktrace.Event{{
			Name: "exception",
			Time: start.Add(time.Second),
			Attributes: []attribute.KeyValue{
				attribute.String("exception.type", "TimeoutError"),
				attribute.String("exception.message", "step timed out"),
			},
		}},
		Status:               sdktrace.Status{Code: codes.Error, Description: "step timed out"},
		Resource:             res1,
		InstrumentationScope: scope,
	}
	child := tracetest.SpanStub{
		Name:                 "retrieve",
		SpanContext:          spanContext(traceID, childID, false),
		Parent:               root.SpanContext,
		SpanKind:             trace.SpanKindInternal,
		StartTime:            start,
		EndTime:              start.Add(120 * time.Millisecond),
		Attributes:           []attribute.KeyValue{attribute.String("spanferry.step.id", "s1")},
		Links:                []sdktrace.Link{{SpanContext: spanContext(otherTraceID, otherID, false), Attributes: []attribute.KeyValue{attribute.String("why", "follows")}}},
		Status:               sdktrace.Status{Code: codes.Ok},
		Resource:             res1,
		InstrumentationScope: scope,
	}
	other := tracetest.SpanStub{
		Name:                 "classify-ticket",
		SpanContext:          spanContext(otherTraceID, otherID, false),
		Parent:               spanContext(otherTraceID, remoteID, true),
		SpanKind:             trace.SpanKindInternal,
		StartTime:            start,
		EndTime:              start.Add(807 * time.Millisecond),
		Resource:             res2,
		InstrumentationScope: scope,
	}
	return tracetest.SpanStubs{root, child, other}.Snapshots()
}

// reference exports spans with a real otlptracehttp exporter, over the
// network in protobuf, to a receiver: what the `otlp` exporter would send.
func reference(t *testing.T, spans []sdktrace.ReadOnlySpan) map[string]otlptest.Span {
	t.Helper()
	rcv := otlptest.StartT(t)
	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpointURL(rcv.TracesURL()))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	if err := exp.ExportSpans(t.Context(), spans); err != nil {
		t.Fatalf("reference export: %v", err)
	}
	return byID(rcv.Spans())
}

func byID(spans []otlptest.Span) map[string]otlptest.Span {
	m := make(map[string]otlptest.Span, len(spans))
	for _, s := range spans {
		m[s.SpanID] = s
	}
	return m
}

// postJSON sends line to a receiver as an OTLP/JSON request, which proves it
// valid OTLP/JSON, and returns the spans the receiver decoded.
func postJSON(t *testing.T, rcv *otlptest.Receiver, line []byte) []otlptest.Span {
	t.Helper()
	before := len(rcv.Requests())
	resp, err := http.Post(rcv.TracesURL(), "application/json", bytes.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	reqs := rcv.Requests()
	if resp.StatusCode != http.StatusOK || len(reqs) != before+1 {
		t.Fatalf("receiver answered %s to the line (error %q):\n%s", resp.Status, reqs[len(reqs)-1].Response.ErrorMessage, line)
	}
	return otlptest.Spans(reqs[before].Body)
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("file does not end with a newline")
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	return lines
}

func TestOpenWritesOTLPJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "traces.jsonl")
	exp, err := fileexport.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	spans := stubs()
	if err := exp.ExportSpans(t.Context(), spans[:2]); err != nil {
		t.Fatalf("ExportSpans: %v", err)
	}
	if err := exp.ExportSpans(t.Context(), spans[2:]); err != nil {
		t.Fatalf("ExportSpans: %v", err)
	}
	if err := exp.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	lines := readLines(t, path)
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want one per ExportSpans call (2)", len(lines))
	}

	// The raw text follows OTLP/JSON: hex ids, integer enums, 64-bit
	// integers as strings, lowerCamelCase names.
	first := string(lines[0])
	for _, want := range []string{
		`"resourceSpans":[`, `"scopeSpans":[`,
		`"traceId":"4bf92f3577b34da6a3ce929d0e0e4736"`,
		`"spanId":"00f067aa0ba902b7"`,
		`"parentSpanId":"00f067aa0ba902b7"`,
		`"traceId":"fedcba98765432100123456789abcdef","spanId":"1122334455667788"`, // the link
		`"kind":1`, `"code":2`,
		`"startTimeUnixNano":"1795514400123456789"`,
		`"intValue":"4611686018427387904"`,
		`{"key":"traceId","value":{"stringValue":"AAAAAAAAAAA="}}`,
	} {
		if !strings.Contains(first, want) {
			t.Errorf("line 1 lacks %s:\n%s", want, first)
		}
	}
	for _, id := range [][]byte{traceID[:], rootID[:], childID[:]} {
		if b64 := base64.StdEncoding.EncodeToString(id); strings.Contains(first, b64) {
			t.Errorf("line 1 holds the base64 id %s", b64)
		}
	}
	if !strings.Contains(string(lines[1]), `"parentSpanId":"aabbccddeeff0011"`) {
		t.Errorf("line 2 lacks the remote parent:\n%s", lines[1])
	}

	// Each line decodes, as OTLP/JSON, to the spans the OTLP exporter sends.
	want := reference(t, spans)
	rcv := otlptest.StartT(t)
	got := byID(append(postJSON(t, rcv, lines[0]), postJSON(t, rcv, lines[1])...))
	if len(got) != len(want) {
		t.Fatalf("decoded %d spans, want %d", len(got), len(want))
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("span %s (%s) missing", id, w.Name)
			continue
		}
		if !proto.Equal(g.Proto, w.Proto) {
			t.Errorf("span %s differs:\n got %v\nwant %v", w.Name, g.Proto, w.Proto)
		}
		if fmt.Sprint(g.Resource) != fmt.Sprint(w.Resource) || g.Scope != w.Scope {
			t.Errorf("span %s: resource %v scope %q, want %v %q", w.Name, g.Resource, g.Scope, w.Resource, w.Scope)
		}
	}
}

func TestOpenAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traces.jsonl")
	for range 2 {
		exp, err := fileexport.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		if err := exp.ExportSpans(t.Context(), stubs()); err != nil {
			t.Fatal(err)
		}
		if err := exp.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(readLines(t, path)); n != 2 {
		t.Errorf("got %d lines after two runs, want 2", n)
	}
}

// writeCounter records each Write call and checks that it is exactly one
// complete line.
type writeCounter struct {
	mu     sync.Mutex
	writes int
	bad    []string
	buf    bytes.Buffer
	syncs  int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	if bytes.IndexByte(p, '\n') != len(p)-1 {
		w.bad = append(w.bad, string(p))
	}
	return w.buf.Write(p)
}

func (w *writeCounter) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.syncs++
	return nil
}

func TestConcurrentExportsWriteWholeLines(t *testing.T) {
	w := &writeCounter{}
	exp, err := fileexport.New(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, exports = 8, 25
	spans := stubs()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*exports)
	for range goroutines {
		wg.Go(func() {
			for range exports {
				errs <- exp.ExportSpans(context.Background(), spans)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("ExportSpans: %v", err)
		}
	}
	if err := exp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	if w.writes != goroutines*exports || len(w.bad) > 0 {
		t.Fatalf("%d writes (want %d), %d not exactly one line: %q", w.writes, goroutines*exports, len(w.bad), w.bad)
	}
	if w.syncs != 1 {
		t.Errorf("Shutdown synced %d times, want 1", w.syncs)
	}
	rcv := otlptest.StartT(t)
	lines := bytes.SplitAfter(w.buf.Bytes(), []byte("\n"))
	lines = lines[:len(lines)-1] // after the last "\n"
	for _, line := range lines {
		if n := len(postJSON(t, rcv, line)); n != len(spans) {
			t.Fatalf("a line holds %d spans, want %d", n, len(spans))
		}
	}
}

// failingWriter fails every write after writing partial bytes of it, until
// healed.
type failingWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial int
	failing bool
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failing {
		n := min(w.partial, len(p))
		w.buf.Write(p[:n])
		return n, errors.New("no space left on device")
	}
	return w.buf.Write(p)
}

func (w *failingWriter) heal() {
	w.mu.Lock()
	w.failing = false
	w.mu.Unlock()
}

func TestWriteErrorFailsExport(t *testing.T) {
	w := &failingWriter{failing: true, partial: 10}
	exp, err := fileexport.New(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())

	err = exp.ExportSpans(t.Context(), stubs())
	if err == nil {
		t.Fatal("ExportSpans succeeded although the write failed")
	}
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("error %q does not name the write error", err)
	}

	// Once writes work again, the next line does not continue the torn one.
	w.heal()
	if err := exp.ExportSpans(t.Context(), stubs()); err != nil {
		t.Fatalf("ExportSpans after healing: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(w.buf.String(), "\n"), "\n")
	if len(lines) != 2 || len(lines[0]) != 10 {
		t.Fatalf("want the torn 10 bytes then one whole line, got %q", lines)
	}
	postJSON(t, otlptest.StartT(t), []byte(lines[1]))
}

func TestShutdownIsIdempotentAndFinal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traces.jsonl")
	exp, err := fileexport.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := exp.Shutdown(t.Context()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := exp.ExportSpans(t.Context(), stubs()); err == nil {
		t.Error("ExportSpans after Shutdown succeeded")
	}
	if n := len(readLines(t, path)); n != 0 {
		t.Errorf("%d lines written after Shutdown", n)
	}
}

// TestEnvironmentDoesNotRedirect sets every OTEL_EXPORTER_OTLP_* variable
// that could send the spans elsewhere or change their encoding: they are the
// network exporter's, and must not touch the file.
func TestEnvironmentDoesNotRedirect(t *testing.T) {
	// Something listening that must never be called.
	trap := otlptest.StartT(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", trap.TracesURL())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer s3cret")
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "false")
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", writeCertificate(t))

	var buf writeCounter
	exp, err := fileexport.New(t.Context(), &buf)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer exp.Shutdown(context.Background())
	if err := exp.ExportSpans(t.Context(), stubs()); err != nil {
		t.Fatalf("ExportSpans: %v", err)
	}
	if buf.writes != 1 {
		t.Errorf("%d lines written, want 1", buf.writes)
	}
	if n := len(trap.Requests()); n != 0 {
		t.Errorf("the environment's endpoint received %d requests", n)
	}
	postJSON(t, otlptest.StartT(t), buf.buf.Bytes())
}

// writeCertificate writes a self-signed CA certificate and returns its path.
func writeCertificate(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
