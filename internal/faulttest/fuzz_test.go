package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/fileexport"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/mapping"
)

// pathHarness runs raw message bytes through the worker's whole handling
// path, as consumer.mapOne and deliver do: Decode, NewCollector, Map, then
// a real encoding by each of the worker's exporters: consumer.NewExporter's
// and otlptracehttp's over consumer.HTTPClient, sending to an otlptest
// receiver that decodes the request as a collector would, and fileexport's
// (OTLP/JSON lines). The three must agree span for span.
// Any failure of a message the mapping accepted would, in the worker, be
// retried forever or dead-letter a good message, so it is a bug.
type pathHarness struct {
	m         *mapping.Mapper
	limit     int // the attribute value length limit; <= 0: none
	recv      *otlptest.Receiver
	sdk       sdktrace.SpanExporter
	own       sdktrace.SpanExporter
	file      sdktrace.SpanExporter
	mu        sync.Mutex
	fileLines bytes.Buffer
}

func newPathHarness(tb testing.TB, limits mapping.Limits) *pathHarness {
	tb.Helper()
	m, err := mapping.New(mapping.WithLimits(limits))
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	h := &pathHarness{m: m, limit: limits.MaxAttrValueLen, recv: otlptest.StartT(tb)}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(h.recv.TracesURL()),
		otlptracehttp.WithHTTPClient(consumer.HTTPClient(10 * time.Second)),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false})}
	if h.sdk, err = otlptracehttp.New(ctx, opts...); err != nil {
		tb.Fatal(err)
	}
	if h.own, err = consumer.NewExporter(ctx, opts...); err != nil {
		tb.Fatal(err)
	}
	if h.file, err = fileexport.New(ctx, &h.fileLines); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for _, exp := range []sdktrace.SpanExporter{h.sdk, h.own, h.file} {
			_ = exp.Shutdown(context.Background())
		}
	})
	return h
}

var stored = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// run handles one message. It returns the mapping's refusal (nil for an
// accepted message) and the spans exported; a failure past a successful
// Decode is reported on t.
func (h *pathHarness) run(t *testing.T, data []byte, traceparent string) (refusal error, spans []otlptest.Span) {
	t.Helper()
	h.mu.Lock() // one message at a time: the receiver and the buffer hold one request
	defer h.mu.Unlock()
	d, err := h.m.Decode(data, mapping.Source{Traceparent: traceparent, Stored: stored})
	if err != nil {
		if !mapping.IsPermanent(err) {
			t.Fatalf("refusal is not permanent (the worker would retry it forever): %v", err)
		}
		if strings.ContainsAny(err.Error(), "\n\r") {
			t.Errorf("refusal is not one line: %q", err)
		}
		return err, nil
	}
	c, err := h.m.NewCollector(d, nil)
	if err != nil {
		t.Fatalf("NewCollector of a decoded message: %v", err)
	}
	st, err := h.m.Map(c, d)
	if err != nil {
		t.Fatalf("Map of a decoded message: %v", err)
	}
	taken := c.Take()

	sdkReq := h.send(t, "otlptracehttp", h.sdk, taken)
	want := canonical(sdkReq)
	if got := canonical(h.send(t, "consumer.NewExporter", h.own, taken)); !maps.Equal(got, want) {
		t.Fatalf("consumer.NewExporter's request differs from otlptracehttp's:\n%s", diffSpans(got, want))
	}
	h.fileLines.Reset()
	if err := h.file.ExportSpans(context.Background(), taken); err != nil {
		t.Fatalf("fileexport of a valid message failed: %v", err)
	}
	var fileReq coltracepb.ExportTraceServiceRequest
	if err := otlptest.UnmarshalJSON(bytes.TrimSuffix(h.fileLines.Bytes(), []byte("\n")), &fileReq); err != nil {
		t.Fatalf("fileexport's line is not OTLP/JSON: %v", err)
	}
	if got := canonical(&fileReq); !maps.Equal(got, want) {
		t.Fatalf("fileexport's request differs from otlptracehttp's:\n%s", diffSpans(got, want))
	}

	spans = otlptest.Spans(sdkReq)
	if len(spans) != st.Spans || st.Spans != d.Steps()+1 {
		t.Fatalf("%d spans exported, %d mapped, for %d steps", len(spans), st.Spans, d.Steps())
	}
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	roots := 0
	for _, s := range spans {
		if s.TraceID != d.TraceID.String() {
			t.Fatalf("span %q in trace %s, want %s", s.Name, s.TraceID, d.TraceID)
		}
		if id, _ := s.Attributes[string(mapping.AttrResultID)].(string); id != d.Result.ID &&
			(h.limit <= 0 || !strings.HasPrefix(d.Result.ID, id) || utf8.RuneCountInString(id) != h.limit) {
			t.Fatalf("span %q: result id %q, want %q (value limit %d)", s.Name, id, d.Result.ID, h.limit)
		}
		if s.End.Before(s.Start) {
			t.Fatalf("span %q ends before it starts", s.Name)
		}
		if !ids[s.ParentSpanID] {
			roots++
		}
	}
	if len(ids) != len(spans) || roots != 1 {
		t.Fatalf("%d spans, %d distinct span ids, %d roots", len(spans), len(ids), roots)
	}
	return nil, spans
}

// send exports spans with exp to the receiver and returns the request as
// the receiver decoded it, which it must have accepted.
func (h *pathHarness) send(t *testing.T, name string, exp sdktrace.SpanExporter, spans []sdktrace.ReadOnlySpan) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	h.recv.Reset()
	err := exp.ExportSpans(context.Background(), spans)
	reqs := h.recv.Requests()
	if err != nil || len(reqs) != 1 || !reqs[0].Response.Accepted() {
		var answer otlptest.Response
		if len(reqs) > 0 {
			answer = reqs[0].Response
		}
		t.Fatalf("%s: the export of a valid message failed (the worker would retry it forever or dead-letter it): %v; %d requests, answer %+v", name, err, len(reqs), answer)
	}
	return reqs[0].Body
}

// canonical maps each span id of req to the deterministic encoding of the
// span with its resource and scope: the order of resources, scopes and
// spans in the request is free, their content is not.
func canonical(req *coltracepb.ExportTraceServiceRequest) map[string]string {
	enc := proto.MarshalOptions{Deterministic: true}
	out := map[string]string{}
	for _, rs := range req.GetResourceSpans() {
		res, _ := enc.Marshal(rs.GetResource())
		for _, ss := range rs.GetScopeSpans() {
			scope, _ := enc.Marshal(ss.GetScope())
			for _, sp := range ss.GetSpans() {
				b, _ := enc.Marshal(sp)
				out[hex.EncodeToString(sp.GetSpanId())] = strings.Join([]string{rs.GetSchemaUrl(), string(res), ss.GetSchemaUrl(), string(scope), string(b)}, "\x00")
			}
		}
	}
	return out
}

// diffSpans names the spans that differ between two canonical forms.
func diffSpans(got, want map[string]string) string {
	var b strings.Builder
	for id, w := range want {
		if g, ok := got[id]; !ok {
			fmt.Fprintf(&b, "span %s missing\n", id)
		} else if g != w {
			fmt.Fprintf(&b, "span %s differs:\n got %q\nwant %q\n", id, g, w)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			fmt.Fprintf(&b, "span %s extra\n", id)
		}
	}
	return b.String()
}

// FuzzMessagePath feeds arbitrary message bytes and traceparent headers
// through the whole message-handling path: no panic, and either a
// permanent, one-line refusal (a dead letter) or spans that export, one per
// step plus the root, all in the result's trace. Each input goes through
// the default limits and through a 5-character attribute value limit
// (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT), whose cuts must keep UTF-8 valid.
func FuzzMessagePath(f *testing.F) {
	for _, seed := range seeds(f) {
		f.Add(seed.data, seed.traceparent)
	}
	plain := newPathHarness(f, mapping.Limits{})
	cut := newPathHarness(f, mapping.Limits{MaxAttrValueLen: 5})
	f.Fuzz(func(t *testing.T, data []byte, traceparent string) {
		plain.run(t, data, traceparent)
		cut.run(t, data, traceparent)
	})
}

type seed struct {
	data        []byte
	traceparent string
}

// seeds are the examples (valid, invalid, JSON lines), the mapping's test
// data and fuzz corpus, and the poison catalogue's light messages.
func seeds(tb testing.TB) []seed {
	tb.Helper()
	var out []seed
	for _, pattern := range []string{"../../examples/*.json", "../../examples/invalid/*.json", "../../internal/benchdata/*.json", "../../mapping/testdata/*.json"} {
		files, _ := filepath.Glob(pattern)
		if len(files) == 0 {
			tb.Fatalf("no seed matches %s", pattern)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, seed{data: data})
		}
	}
	lines, _ := filepath.Glob("../../examples/*.jsonl")
	for _, file := range lines {
		f, err := os.Open(file)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
				out = append(out, seed{data: bytes.Clone(line)})
			}
		}
		f.Close()
	}
	corpus, _ := filepath.Glob("../../mapping/testdata/fuzz/FuzzDecode/*")
	for _, file := range corpus {
		s, err := readCorpusEntry(file)
		if err != nil {
			tb.Fatalf("%s: %v", file, err)
		}
		out = append(out, s)
	}
	for _, p := range poisons {
		if !p.heavy {
			out = append(out, seed{data: p.body("seed-" + p.name)})
		}
	}
	for _, o := range oddities {
		if body := o.body("seed-" + o.name); len(body) < 64<<10 {
			out = append(out, seed{data: body, traceparent: o.header["traceparent"]})
		}
	}
	return out
}

// readCorpusEntry reads a FuzzDecode corpus file: "go test fuzz v1", then
// a []byte and a string value, each a Go quoted string.
func readCorpusEntry(path string) (seed, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return seed{}, err
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 || lines[0] != "go test fuzz v1" {
		return seed{}, fmt.Errorf("not a two-value corpus entry")
	}
	value := func(line, prefix string) (string, error) {
		if !strings.HasPrefix(line, prefix+"(") || !strings.HasSuffix(line, ")") {
			return "", fmt.Errorf("%q is not %s(…)", line, prefix)
		}
		return strconv.Unquote(line[len(prefix)+1 : len(line)-1])
	}
	b, err := value(lines[1], "[]byte")
	if err != nil {
		return seed{}, err
	}
	tp, err := value(lines[2], "string")
	if err != nil {
		return seed{}, err
	}
	return seed{data: []byte(b), traceparent: tp}, nil
}
