package mapping_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/spanferry/spanferry/mapping"
)

// fivePresets is the redactor of the "5 rules" figures: every preset.
func fivePresets(b testing.TB) *mapping.Redactor {
	var rules []mapping.RedactRule
	for _, name := range mapping.RedactPresets() {
		rule, _ := mapping.RedactPreset(name)
		rules = append(rules, rule)
	}
	if len(rules) != 5 {
		b.Fatalf("%d presets, the figures are for 5", len(rules))
	}
	return mustRedactor(b, rules...)
}

// BenchmarkMapRedact is BenchmarkMap with no rules and with the five
// presets, on the bench message (nothing to replace: the cost of looking)
// and on examples/redact/support-ticket.json (11 replacements).
func BenchmarkMapRedact(b *testing.B) {
	ticket, err := os.ReadFile("../examples/redact/support-ticket.json")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("rules=0", func(b *testing.B) { benchMap(b, newMapper(b), benchMessage(b)) })
	b.Run("rules=5", func(b *testing.B) {
		benchMap(b, newMapper(b, mapping.WithRedactor(fivePresets(b))), benchMessage(b))
	})
	b.Run("ticket/rules=0", func(b *testing.B) { benchMap(b, newMapper(b), ticket) })
	b.Run("ticket/rules=5", func(b *testing.B) {
		benchMap(b, newMapper(b, mapping.WithRedactor(fivePresets(b))), ticket)
	})
}

// nearMisses is text that almost matches every preset, over and over: an
// address without a top-level domain, a card number failing the Luhn
// check, short tokens and keys, a JWT cut short.
const nearMisses = "ann@example.c 4111 1111 1111 1112 Bearer short sk-short ghp_abc AKIA123 eyJhbGci.eyJzdWIi.x \\\"ok\\\" "

// BenchmarkRedactLarge maps a result whose input is one string of near
// misses, of 1 and 2 MB, with the five presets: RE2 keeps the time linear,
// so ns/op doubles and MB/s stays level.
func BenchmarkRedactLarge(b *testing.B) {
	for _, mb := range []int{1, 2} {
		b.Run(strconv.Itoa(mb)+"MB", func(b *testing.B) {
			text := strings.Repeat(nearMisses, mb<<20/len(nearMisses))
			msg := []byte(`{"id":"r","name":"wf","input":{"text":"` + text + `"}}`)
			m := newMapper(b, mapping.WithRedactor(fivePresets(b)), mapping.WithLimits(mapping.Limits{MaxBytes: 8 << 20}))
			b.SetBytes(int64(len(text)))
			benchMap(b, m, msg)
		})
	}
}
