package mapping_test

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spanferry/spanferry/mapping"
)

var (
	t0     = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	stored = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
)

func newMapper(t testing.TB, opts ...mapping.Option) *mapping.Mapper {
	t.Helper()
	m, err := mapping.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mapJSON decodes and maps msg and returns its spans by name (names are
// unique in these tests) and the stats.
func mapJSON(t testing.TB, m *mapping.Mapper, msg string, src mapping.Source) (map[string]sdktrace.ReadOnlySpan, mapping.Stats) {
	t.Helper()
	if src.Stored.IsZero() {
		src.Stored = stored
	}
	d, err := m.Decode([]byte(msg), src)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	c, err := m.NewCollector(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Map(c, d)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range c.Spans() {
		if _, dup := spans[s.Name()]; dup {
			t.Fatalf("two spans named %q", s.Name())
		}
		spans[s.Name()] = s
	}
	if st.Spans != len(spans) {
		t.Fatalf("Stats.Spans = %d, collector holds %d", st.Spans, len(spans))
	}
	return spans, st
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value
	}
	return out
}

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
