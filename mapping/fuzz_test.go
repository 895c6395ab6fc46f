package mapping_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spanferry/spanferry/mapping"
)

// FuzzDecode feeds arbitrary bytes and traceparent headers through Decode
// and Map: neither may panic, every refusal must be a permanent
// *FieldError, and every accepted message must map to one span per step
// plus the root, all in the result's trace.
func FuzzDecode(f *testing.F) {
	for _, pattern := range []string{"../examples/*.json", "../examples/invalid/*.json", "../internal/benchdata/*.json", "testdata/*.json"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data, "")
		}
	}
	f.Add([]byte(fullResult), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	f.Add([]byte(`{"id":"r","name":"n","steps":[{"name":"a","steps":[{"name":"b","span_id":"00f067aa0ba902b7"}]}]}`), "")
	f.Add([]byte(`{"id":"r","name":"n","latency_ms":1.5,"metadata":{"a":null,"b":-1e3}}`), "garbage")

	m, err := mapping.New(mapping.WithLimits(mapping.Limits{MaxAttrValueLen: 16}))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, traceparent string) {
		d, err := m.Decode(data, mapping.Source{Traceparent: traceparent, Stored: stored})
		if err != nil {
			if !mapping.IsPermanent(err) {
				t.Fatalf("refusal is not permanent: %v", err)
			}
			return
		}
		c, err := m.NewCollector(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		st, err := m.Map(c, d)
		if err != nil {
			t.Fatalf("valid message failed to map: %v", err)
		}
		if st.Spans != d.Steps()+1 || c.Len() != st.Spans {
			t.Fatalf("%d spans for %d steps", c.Len(), d.Steps())
		}
		for _, s := range c.Spans() {
			if s.SpanContext().TraceID() != d.TraceID || s.EndTime().Before(s.StartTime()) {
				t.Fatalf("span %q: trace %s, %s..%s", s.Name(), s.SpanContext().TraceID(), s.StartTime(), s.EndTime())
			}
		}
	})
}
