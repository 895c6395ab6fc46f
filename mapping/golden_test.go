package mapping_test

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spanferry/spanferry/mapping"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt")

// goldenInputs are results beyond the examples that reach the mapping's
// less travelled paths: escapes, invalid UTF-8, metadata of every type,
// errors, explicit span ids, deep nesting, steps without ids.
var goldenInputs = []string{
	`{"id":"esc","name":"n\u00e9\"q\"","input":"a\"b\\c\u0001 \ud83d\ude00","output":{"k":"\u00ff"},"metadata":{"s":"x\ty","e":"","u":"caf\u00e9","n":null,"i":-7,"big":123456789012345678901,"f":1.5e-3,"t":true,"z":false}}`,
	"{\"id\":\"utf8\",\"name\":\"bad\",\"input\":\"caf\xe9 \xff\",\"output\":[\"\xc3\x28\"],\"metadata\":{\"k\xff\":\"v\xfe\"}}",
	`{"id":"err","name":"wf","status":"failed","error":{"type":"Timeout","message":"took too long"},"steps":[{"name":"a","status":"error"},{"name":"b","status":"error","error":{"type":"E"}},{"name":"c","error":{"message":"m"},"status":"cancelled"}]}`,
	`{"id":"ids","name":"wf","steps":[{"name":"a","span_id":"00f067aa0ba902b7","steps":[{"name":"b"},{"name":"c","id":"c"}]},{"name":"d","steps":[{"name":"e","steps":[{"name":"f","kind":"workflow","steps":[{"name":"g","kind":"custom"}]}]}]}]}`,
	`{"id":"times","name":"wf","ended_at":"2026-11-24T10:00:05Z","steps":[{"name":"a","latency_ms":1000.5},{"name":"b","ended_at":"2026-11-24T10:00:04Z","latency_ms":500},{"name":"c","started_at":"2026-11-24T10:00:01.123456789+02:00"}]}`,
	`{"version":"1.2","id":"usage","name":"wf","organization":"o","experiment_id":"x","customer_id":"c","thread_id":"t","steps":[{"name":"llm","kind":"llm","model":"m","provider":"p","usage":{"input_tokens":0,"output_tokens":9007199254740993},"cost":0},{"name":"emb","kind":"embedding","usage":{}},{"name":"tool","kind":"tool","input":null,"output":""}]}`,
}

// TestGolden maps every example and goldenInputs, with and without a
// traceparent, a resource and a value limit, and compares every span —
// ids, times, attributes in order with their types, events, status,
// resource, scope — with testdata/golden.txt. Optimisations of the mapping
// must leave it unchanged: go test ./mapping -run Golden -update rewrites
// it, for a deliberate change only.
func TestGolden(t *testing.T) {
	var inputs [][]byte
	for _, pattern := range []string{"../examples/*.json", "../internal/benchdata/*.json", "testdata/*.json"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, data)
		}
	}
	batch, err := os.ReadFile("../examples/batch.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for sc := bufio.NewScanner(bytes.NewReader(batch)); sc.Scan(); {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			inputs = append(inputs, bytes.Clone(line))
		}
	}
	for _, in := range goldenInputs {
		inputs = append(inputs, []byte(in))
	}

	base := resource.NewSchemaless(attribute.String("deployment.environment", "prod"), attribute.String("service.name", "base"))
	configs := []struct {
		name string
		opts []mapping.Option
		tp   string
	}{
		{"defaults", nil, ""},
		{"traceparent, resource, limit 12", []mapping.Option{
			mapping.WithResource(base), mapping.WithLimits(mapping.Limits{MaxAttrValueLen: 12}),
		}, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
	}
	var out strings.Builder
	for _, cfg := range configs {
		m := newMapper(t, cfg.opts...)
		for _, in := range inputs {
			d, err := m.Decode(in, mapping.Source{Traceparent: cfg.tp, Stored: stored})
			if err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			c, err := m.NewCollector(d, nil)
			if err != nil {
				t.Fatal(err)
			}
			st, err := m.Map(c, d)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&out, "== %s: %s (%d spans, %d truncations)\n", cfg.name, d.Result.ID, st.Spans, st.Truncations)
			for _, s := range c.Spans() {
				writeSpan(&out, s)
			}
			// As the worker does once the spans are exported: the next
			// inputs are decoded and mapped into this memory.
			c.Recycle()
			d.Recycle()
		}
	}
	const path = "testdata/golden.txt"
	if *update {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("line %d differs:\ngot  %s\nwant %s", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%d lines, want %d", len(gl), len(wl))
	}
}

func writeSpan(w *strings.Builder, s sdktrace.ReadOnlySpan) {
	sc, p := s.SpanContext(), s.Parent()
	fmt.Fprintf(w, "span %q trace=%s id=%s parent=%s remote=%v flags=%s kind=%s\n", s.Name(), sc.TraceID(), sc.SpanID(), p.SpanID(), p.IsRemote(), sc.TraceFlags(), s.SpanKind())
	fmt.Fprintf(w, "  time %s .. %s\n", s.StartTime().UTC().Format("2006-01-02T15:04:05.000000000"), s.EndTime().UTC().Format("2006-01-02T15:04:05.000000000"))
	fmt.Fprintf(w, "  status %s %q dropped=%d/%d/%d\n", s.Status().Code, s.Status().Description, s.DroppedAttributes(), s.DroppedEvents(), s.DroppedLinks())
	writeAttrs(w, "  ", s.Attributes())
	for _, ev := range s.Events() {
		fmt.Fprintf(w, "  event %q at %s\n", ev.Name, ev.Time.UTC().Format("2006-01-02T15:04:05.000000000"))
		writeAttrs(w, "    ", ev.Attributes)
	}
	fmt.Fprintf(w, "  scope %q %q links=%d\n", s.InstrumentationScope().Name, s.InstrumentationScope().Version, len(s.Links()))
	writeAttrs(w, "  resource ", s.Resource().Attributes())
}

func writeAttrs(w *strings.Builder, indent string, kvs []attribute.KeyValue) {
	for _, kv := range kvs {
		fmt.Fprintf(w, "%s%q %s %q\n", indent, kv.Key, kv.Value.Type(), kv.Value.Emit())
	}
}
