package mapping_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spanferry/spanferry/mapping"
)

// TestDecodedRecycle decodes every example and golden input in turn, many
// times, recycling each Decoded before the next decoding, so that each is
// cut from memory an earlier one of another shape used: every Result and
// every mapped span must be what a fresh decoding gives.
func TestDecodedRecycle(t *testing.T) {
	var inputs [][]byte
	files, _ := filepath.Glob("../examples/*.json")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, data)
	}
	for _, in := range goldenInputs {
		inputs = append(inputs, []byte(in))
	}
	m := newMapper(t)
	src := mapping.Source{Stored: stored}
	var fresh []*mapping.Decoded
	var spans []string
	for _, data := range inputs {
		d, err := mapping.DecodeStd(m, data, src)
		fresh = append(fresh, d)
		if err != nil {
			spans = append(spans, "")
			continue
		}
		spans = append(spans, mapText(t, m, d))
	}
	for round := range 5 {
		for i, data := range inputs {
			d, err := m.Decode(data, src)
			if (err == nil) != (fresh[i] != nil) {
				t.Fatalf("round %d, input %d: Decode error %v", round, i, err)
			}
			if err != nil {
				continue
			}
			if !reflect.DeepEqual(mapping.WithoutSlab(d), mapping.WithoutSlab(fresh[i])) {
				t.Fatalf("round %d, input %d: a recycled Decoded differs:\n%#v\nfresh %#v", round, i, d.Result, fresh[i].Result)
			}
			if got := mapText(t, m, d); got != spans[i] {
				t.Fatalf("round %d, input %d: spans differ:\n%s\nfresh:\n%s", round, i, got, spans[i])
			}
			d.Recycle()
		}
	}
}

// mapText maps d into a collector, writes its spans as TestGolden does,
// and recycles the collector, as the worker does once they are exported.
func mapText(t *testing.T, m *mapping.Mapper, d *mapping.Decoded) string {
	t.Helper()
	c, err := m.NewCollector(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Map(c, d); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, s := range c.Spans() {
		writeSpan(&out, s)
	}
	c.Recycle()
	return out.String()
}
