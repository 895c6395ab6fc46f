package mapping_test

import (
	"testing"

	"github.com/spanferry/spanferry/internal/benchdata"
	"github.com/spanferry/spanferry/mapping"
)

// benchMessage is a realistic 8-step result of about 1.5 KB.
func benchMessage(b *testing.B) []byte {
	b.Helper()
	return benchdata.Result8Steps
}

// BenchmarkMap measures the mapping alone: a decoded 8-step result into a
// fresh collector (9 spans).
func BenchmarkMap(b *testing.B) {
	benchMap(b, newMapper(b), benchMessage(b))
}

// benchMap maps data, decoded once, into a fresh collector per op.
func benchMap(b *testing.B, m *mapping.Mapper, data []byte) {
	d, err := m.Decode(data, mapping.Source{Stored: stored})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := m.NewCollector(d, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Map(c, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode measures decoding and validating the same message.
func BenchmarkDecode(b *testing.B) {
	m := newMapper(b)
	data := benchMessage(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Decode(data, mapping.Source{Stored: stored}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeAndMap is the whole per-message cost before export
// (consumer's BenchmarkMapAndEncode adds the encoding).
func BenchmarkDecodeAndMap(b *testing.B) {
	m := newMapper(b)
	data := benchMessage(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := m.Decode(data, mapping.Source{Stored: stored})
		if err != nil {
			b.Fatal(err)
		}
		c, _ := m.NewCollector(d, nil)
		if _, err := m.Map(c, d); err != nil {
			b.Fatal(err)
		}
	}
}
