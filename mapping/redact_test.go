package mapping_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/spanferry/spanferry/mapping"
)

func TestRedactorRulesApplyInOrderWithGroupReferences(t *testing.T) {
	r := mustRedactor(t,
		mapping.RedactRule{Name: "user", Pattern: `user=(\w+)`, Replace: "user=${1}_x"},
		mapping.RedactRule{Name: "named", Pattern: `(?P<k>token)=\S+`, Replace: "$k=[hidden] $$"},
		mapping.RedactRule{Name: "again", Pattern: `_x`, Replace: "*"},
	)
	got, counts := r.Redact("user=ann token=abc user=bob")
	if want := "user=ann* token=[hidden] $ user=bob*"; got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if want := map[string]int{"user": 2, "named": 1, "again": 2}; !maps.Equal(counts, want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	if got := r.Rules(); !slices.Equal(got, []string{"user", "named", "again"}) {
		t.Errorf("Rules() = %q", got)
	}
	if got, counts := r.Redact("nothing here"); got != "nothing here" || counts != nil {
		t.Errorf("Redact of no match = %q, %v", got, counts)
	}
}

func TestNewRedactorNamesTheBadRule(t *testing.T) {
	ok := mapping.RedactRule{Name: "ok", Pattern: "a", Replace: "b"}
	for _, c := range []struct {
		rules []mapping.RedactRule
		want  string
	}{
		{[]mapping.RedactRule{ok, {Name: "bad", Pattern: "a(b", Replace: "x"}}, `rules[1] ("bad"): invalid pattern: error parsing regexp: missing closing )`},
		{[]mapping.RedactRule{ok, {Name: "ok", Pattern: "c"}}, `rules[1] ("ok"): duplicate name: rules[0] has it too`},
		{[]mapping.RedactRule{{Pattern: "c"}}, `rules[0]: a name is required`},
		{[]mapping.RedactRule{{Name: "p"}}, `rules[0] ("p"): a pattern is required`},
		{[]mapping.RedactRule{{Name: "empty", Pattern: "x*"}}, `rules[0] ("empty"): pattern "x*" matches the empty string`},
		{[]mapping.RedactRule{{Name: "ref", Pattern: "(a)", Replace: "$2"}}, `rules[0] ("ref"): replace "$2": $2 refers to no group of the pattern`},
		{[]mapping.RedactRule{{Name: "ref", Pattern: "(a)", Replace: "$1x"}}, `$1x refers to no group of the pattern (write ${1} when a letter follows the group number)`},
		{[]mapping.RedactRule{{Name: "ref", Pattern: "(a)", Replace: "${1"}}, `unclosed ${`},
		{[]mapping.RedactRule{{Name: "ref", Pattern: "(a)", Replace: "$ 1"}}, `a $ that names no group`},
		{nil, `at least one rule`},
	} {
		_, err := mapping.NewRedactor(c.rules...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewRedactor(%v) = %v, want %q", c.rules, err, c.want)
		}
		var re *mapping.RuleError
		if err != nil && c.rules != nil && !errors.As(err, &re) {
			t.Errorf("%v is not a *RuleError", err)
		}
	}
}

// presetCases are what each preset must replace (positive) and leave alone
// (negative), within surrounding text.
var presetCases = map[string]struct{ positive, negative []string }{
	"email": {
		positive: []string{"ann@example.com", "first.last+tag@mail.example.co.uk", "A_B%c-d@sub-domain.io"},
		negative: []string{"@handle", "ann@localhost", "ann@example.c", "user at example dot com", "a@b"},
	},
	"card": {
		positive: []string{"4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005", "6011000990139424"},
		negative: []string{"4111111111111112", "4111 1111 1111 1112", "order 12345678", "1234567890123", "2026-11-24 10:00:00", "+1 415 555 0100"},
	},
	"bearer": {
		positive: []string{"Bearer abcdefghijklmnop1234", "authorization: bearer eyJhbGciOi.JIUzI1NiJ9-_~+/==", "BEARER 0123456789abcdef"},
		negative: []string{"the bearer of bad news", "Bearer short", "bearertoken0123456789abcdef"},
	},
	"api-key": {
		positive: []string{
			"sk-abcdefghijklmnopqrstuvwxyz012345", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx_yz-0123", "sk-ant-api03-abcdefghijklmnopqrstuv",
			"AKIAIOSFODNN7EXAMPLE", "ghp_0123456789abcdefghijABCDEFGHIJ012345", "github_pat_11ABCDEFG0123456789_abcdefghijkl",
			"xoxb-1234567890-abcdefghij", "AIzaSyA-0123456789abcdefghijklmnopqrstu", "sk_live_0123456789abcdefABCD",
		},
		negative: []string{
			"sk-short", "task-abcdefghijklmnopqrstuvwxyz012345", "AKIA1234", "akiaiosfodnn7example", "ghp_short",
			"xoxb-", "AIzaShort", "sk_live_short", "risk-assessment-framework-document-v2",
		},
	},
	"jwt": {
		positive: []string{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"},
		negative: []string{"eyJhbGciOiJIUzI1NiJ9", "eyJ.eyJ.sig", "header.payload.signature"},
	},
}

func TestPresets(t *testing.T) {
	if got, want := mapping.RedactPresets(), slices.Sorted(maps.Keys(presetCases)); !slices.Equal(got, want) {
		t.Fatalf("RedactPresets() = %q, the tests cover %q", got, want)
	}
	for name, c := range presetCases {
		rule, ok := mapping.RedactPreset(name)
		if !ok || rule.Name != name || rule.Pattern == "" {
			t.Fatalf("RedactPreset(%q) = %+v, %v", name, rule, ok)
		}
		r := mustRedactor(t, rule)
		for _, p := range c.positive {
			text := "before " + p + " after"
			got, counts := r.Redact(text)
			if strings.Contains(got, p) || counts[name] != 1 || !strings.HasPrefix(got, "before ") || !strings.HasSuffix(got, " after") {
				t.Errorf("%s: %q → %q (%v), want the value replaced and the rest kept", name, text, got, counts)
			}
		}
		for _, n := range c.negative {
			text := "before " + n + " after"
			if got, counts := r.Redact(text); got != text || counts != nil {
				t.Errorf("%s: %q → %q, want it left alone", name, text, got)
			}
		}
	}
	if _, ok := mapping.RedactPreset("nope"); ok {
		t.Error("RedactPreset of an unknown name succeeded")
	}
}

func TestBearerPresetKeepsTheScheme(t *testing.T) {
	rule, _ := mapping.RedactPreset("bearer")
	got, _ := mustRedactor(t, rule).Redact("Authorization: Bearer abcdefghijklmnop1234")
	if got != "Authorization: Bearer [secret]" {
		t.Errorf("got %q", got)
	}
}

func TestCardPresetKeepsTheLuhnCheckWhenRenamed(t *testing.T) {
	rule, _ := mapping.RedactPreset("card")
	rule.Name, rule.Replace = "pan", "####"
	got, counts := mustRedactor(t, rule).Redact("4111111111111111 4111111111111112")
	if got != "#### 4111111111111112" || counts["pan"] != 1 {
		t.Errorf("got %q %v", got, counts)
	}
}

func TestCardPresetFindsTheCardInALongerRunOfDigits(t *testing.T) {
	rule, _ := mapping.RedactPreset("card")
	r := mustRedactor(t, rule)
	for in, want := range map[string]string{
		"ref 12 4111 1111 1111 1111 paid":  "ref 12 [card] paid",
		"1 4111111111111111":               "1 [card]",
		"4111-1111-1111-1111-99":           "[card]-99",
		"ref 12 4111 1111 1111 1112 paid":  "ref 12 4111 1111 1111 1112 paid", // no run passes
		"0000 0000 0000 0000 0000 0000 01": "[card] 0000 0000 01",             // a match holds 19 digits at most
	} {
		if got, _ := r.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
