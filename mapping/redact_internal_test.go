package mapping

import (
	"bytes"
	"fmt"
	"testing"
	"unicode/utf8"
)

func TestPrefilterLiterals(t *testing.T) {
	for pattern, want := range map[string]string{
		`[a-z]+@example\.com`:    `["@example.com"]`,
		`(?i)\b(bearer)\s+x`:     `[BEARER/i]`,
		`sk-[a-z]{20}|AKIA\d+`:   `["sk-" "AKIA"]`,
		`(ab)+c{2,}`:             `["ab"]`,
		`a*b?`:                   `[]`,
		`x|[0-9]+`:               `[]`,
		`(?i)key`:                `[]`, // (?i)k also matches the Kelvin sign
		`é+`:                     `["é"]`,
		`gh[pos]_\w+`:            `["gho_" "ghp_" "ghs_"]`,
		`\b[rs]k_(?:live|test)_`: `["rk_live_" "rk_test_" "sk_live_" "sk_test_"]`,
		`(?i)x\bA[BC]`:           `[XAB/i XAC/i XAb/i XAc/i]`,
		`[a-c]`:                  `["a" "b" "c"]`,
	} {
		p := newPrefilter(pattern, nil)
		got := "["
		for i, l := range p.any {
			if i > 0 {
				got += " "
			}
			if l.fold {
				got += string(l.s) + "/i"
			} else {
				got += fmt.Sprintf("%q", l.s)
			}
		}
		if got += "]"; got != want {
			t.Errorf("%s: literals %s, want %s", pattern, got, want)
		}
	}
}

// prefilterPatterns are the presets and patterns that reach every branch
// of required.
var prefilterPatterns = []string{
	`[a-z]+@[a-z]+\.(?:com|org)`, `(?i)bearer\s+\w{3,}`, `(ab|cd)+e{1,3}`, `(?i)ÉTÉ|x{2}`, `\bfoo\b|bar(baz)?`,
	`gh[pos]_\w+`, `\b[rs]k_(?:live|test)_\d`, `(?i)x\bA[BC]`, `^a(b|cd)e$`, `(?m)^q[0-2]$`,
}

func prefilterRules(t testing.TB) []compiledRule {
	var rules []RedactRule
	for _, name := range RedactPresets() {
		r, _ := RedactPreset(name)
		rules = append(rules, r)
	}
	for i, p := range prefilterPatterns {
		rules = append(rules, RedactRule{Name: fmt.Sprint("p", i), Pattern: p, Replace: "<$0>"})
	}
	r, err := NewRedactor(rules...)
	if err != nil {
		t.Fatal(err)
	}
	return r.rules
}

// FuzzPrefilter checks each rule, prefilter and all, against the library's
// path: regexp.ReplaceAll (with the rule's narrowing as ReplaceAllFunc does it).
func FuzzPrefilter(f *testing.F) {
	for _, s := range []string{
		"ann@example.com", "Bearer abcdefghijklmnopqrstu", "BEARER  xyz", "4111 1111 1111 1111", "sk-abcdefghijklmnopqrstuvwxyz",
		"ababee", "été ÉTÉ", "foo bar barbaz", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijklmnop", "\u212a",
	} {
		f.Add(s)
	}
	rules := prefilterRules(f)
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // the mapping repairs every text before redacting it
		}
		for i := range rules {
			c := &rules[i]
			got, n := c.apply([]byte(s))
			var want []byte
			if c.narrow == nil {
				want = c.re.ReplaceAll([]byte(s), c.replace)
			} else {
				want = c.re.ReplaceAllFunc([]byte(s), func(m []byte) []byte {
					if start, end, ok := c.narrow(m); ok {
						return append(append(append([]byte(nil), m[:start]...), c.replace...), m[end:]...)
					}
					return m
				})
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("rule %s on %q: %q, regexp gives %q", c.name, s, got, want)
			}
			if n == 0 && !bytes.Equal(want, []byte(s)) {
				t.Fatalf("rule %s on %q: no replacement counted", c.name, s)
			}
		}
	})
}

// TestPrefilterIsSound runs the fuzz seeds and a few texts that each pass
// one prefilter only, so that go test alone checks that no prefilter
// rejects a text its pattern matches.
func TestPrefilterIsSound(t *testing.T) {
	rules := prefilterRules(t)
	for _, s := range []string{"x@y.org", "bEaReR\tabc", "cdcdeee", "été", "xx", "a foo", "barbaz", "1234567890123"} {
		for i := range rules {
			c := &rules[i]
			if c.re.Match([]byte(s)) && !c.pre.pass([]byte(s)) {
				t.Errorf("rule %s: the prefilter rejects %q, which the pattern matches", c.name, s)
			}
		}
	}
}

// referenceRedact is the library's path for a whole redactor: each rule's
// regexp.ReplaceAll (ReplaceAllFunc for a narrowing rule) in turn, with no
// prefilter.
func referenceRedact(rules []compiledRule, s []byte) []byte {
	for i := range rules {
		c := &rules[i]
		if c.narrow == nil {
			s = c.re.ReplaceAll(s, c.replace)
			continue
		}
		s = c.re.ReplaceAllFunc(s, func(m []byte) []byte {
			if start, end, ok := c.narrow(m); ok {
				return append(append(append([]byte(nil), m[:start]...), c.replace...), m[end:]...)
			}
			return m
		})
	}
	return s
}

// FuzzRedactor checks Redactor.apply, whose literal index serves every rule
// in one pass, against referenceRedact, with rules whose replacements make
// the next rules' literals.
func FuzzRedactor(f *testing.F) {
	for _, s := range []string{"x ann@example.com", "bEaReR abcdefghijklmnopq", "4111 1111 1111 1111 x", "ghp_x", "yy"} {
		f.Add(s)
	}
	var rules []RedactRule
	for _, name := range RedactPresets() {
		r, _ := RedactPreset(name)
		rules = append(rules, r)
	}
	rules = append([]RedactRule{
		{Name: "makes-key", Pattern: `\bx\b`, Replace: "sk-abcdefghijklmnopqrstuvwxyz"},
		{Name: "makes-mail", Pattern: `yy`, Replace: "a@b.io"},
	}, rules...)
	for i, p := range prefilterPatterns {
		rules = append(rules, RedactRule{Name: fmt.Sprint("p", i), Pattern: p, Replace: "<$0>"})
	}
	red, err := NewRedactor(rules...)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		got, _ := red.apply([]byte(s), &Stats{})
		if want := referenceRedact(red.rules, []byte(s)); !bytes.Equal(got, want) {
			t.Fatalf("%q: %q, the regexps give %q", s, got, want)
		}
	})
}

func TestRulesPastTheLiteralIndex(t *testing.T) {
	var rules []RedactRule
	for i := range 70 {
		rules = append(rules, RedactRule{Name: fmt.Sprint("r", i), Pattern: fmt.Sprintf(`tok%02d\b`, i), Replace: fmt.Sprint("[", i, "]")})
	}
	red, err := NewRedactor(rules...)
	if err != nil {
		t.Fatal(err)
	}
	got, counts := red.Redact("tok00 tok63 tok64 tok69 tok70")
	if want := "[0] [63] [64] [69] tok70"; got != want || len(counts) != 4 {
		t.Errorf("Redact = %q %v, want %q", got, counts, want)
	}
}
