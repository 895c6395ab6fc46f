package redactfile_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spanferry/spanferry/internal/redactfile"
)

func TestParseRulesAndPresets(t *testing.T) {
	r, err := redactfile.Parse("r.yaml", []byte(`
rules:
  - preset: email
  - preset: card
    name: pan
    replace: '[pan]'
  - name: order
    pattern: 'order #(\d{2})\d+'
    replace: 'order #${1}xx'
  - name: drop
    pattern: 'secret'
    replace: ''
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Rules(); !slices.Equal(got, []string{"email", "pan", "order", "drop"}) {
		t.Errorf("rules %q", got)
	}
	got, counts := r.Redact("ann@example.com paid with 4111 1111 1111 1111 for order #123456, a secret")
	if want := "[email] paid with [pan] for order #12xx, a "; got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if want := map[string]int{"email": 1, "pan": 1, "order": 1, "drop": 1}; !maps.Equal(counts, want) {
		t.Errorf("counts %v", counts)
	}
}

func TestJSONIsAccepted(t *testing.T) {
	if _, err := redactfile.Parse("r.json", []byte(`{"rules":[{"preset":"jwt"},{"name":"x","pattern":"x+","replace":"y"}]}`)); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsNameTheFileAndTheRule(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"", "redact file bad.yaml: no rules: the file is empty"},
		{"rules: []", "no rules"},
		{"rule:\n  - preset: email\n", `redact file bad.yaml: line 1: unknown key "rule"`},
		{"rules:\n  - preset: email\n  - name: ok\n    pattern: a\n    replacement: b\n", `redact file bad.yaml: rules[1] ("ok"), line 5: unknown key "replacement"`},
		{"rules:\n  - name: a\n    pattern: 'x(('\n    replace: y\n", `redact file bad.yaml: rules[0] ("a"): invalid pattern: error parsing regexp: missing closing )`},
		{"rules:\n  - preset: email\n  - preset: email\n", `rules[1] ("email"): duplicate name: rules[0] has it too`},
		{"rules:\n  - preset: emails\n", `rules[0] ("emails"): unknown preset "emails" (presets: api-key, bearer, card, email, jwt)`},
		{"rules:\n  - preset: email\n    pattern: x\n", `rules[0] ("email"): a preset takes no pattern`},
		{"rules:\n  - name: a\n    pattern: x\n", `rules[0] ("a"): replace is required`},
		{"rules:\n  - name: a\n    pattern: x\n    replace: [1]\n", `rules[0] ("a"), line 4: unexpected !!seq`},
		{"rules:\n  - pattern: x\n    replace: y\n", `rules[0]: a name is required`},
		{"rules: {", "redact file bad.yaml: yaml: line 1: did not find expected node content"},
	} {
		_, err := redactfile.Parse("bad.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to contain %q", c.yaml, err, c.want)
		}
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if _, err := redactfile.Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte("rules:\n  - preset: bearer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := redactfile.Load(path)
	if err != nil || !slices.Equal(r.Rules(), []string{"bearer"}) {
		t.Fatalf("Load = %v, %v", r, err)
	}
}

func TestTheExampleFileLoads(t *testing.T) {
	r, err := redactfile.Load("../../examples/redact/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rules()) < 5 {
		t.Errorf("the example has %d rules", len(r.Rules()))
	}
}

// TestTheReadmeExampleParses keeps the README's rules compiling, and
// doing what the README says they do.
func TestTheReadmeExampleParses(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Content: what is captured, and redaction")
	_, block, ok2 := strings.Cut(section, "```yaml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("the README has no YAML example in its Content section")
	}
	r, err := redactfile.Parse("README.md", []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := r.Redact("ann@example.com, 4111 1111 1111 1111, order #123456")
	if want := "[email], [pan], order #12…"; got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
}
