// Package redactfile reads WORKER_REDACT_FILE: the redaction rules of
// CONTRACT §9, as YAML (JSON is valid YAML).
//
//	rules:
//	  - preset: email                # a named preset (mapping.RedactPresets)
//	  - preset: card
//	    replace: '[pan]'             # a preset's replacement may be changed
//	  - name: order-id
//	    pattern: 'order #(\d{2})\d+' # RE2, as Go's regexp reads it
//	    replace: 'order #${1}…'      # $1, ${1}, ${name}: the pattern's groups
//
// A malformed file, an unknown key, an unknown preset, an invalid pattern
// or a duplicate name is an error naming the file and the rule.
package redactfile

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/spanferry/spanferry/mapping"
)

// file is the document.
type file struct {
	Rules []rule `yaml:"rules"`
}

// rule is one entry of rules: a preset, or a name, pattern and replace.
type rule struct {
	Preset  string  `yaml:"preset"`
	Name    string  `yaml:"name"`
	Pattern string  `yaml:"pattern"`
	Replace *string `yaml:"replace"` // nil: not given
}

// Load reads and compiles the rules of the file at path.
func Load(path string) (*mapping.Redactor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("redact file: %w", err)
	}
	return Parse(path, data)
}

// Parse compiles the rules of data, read from path (named in errors).
func Parse(path string, data []byte) (*mapping.Redactor, error) {
	fail := func(err error) error { return fmt.Errorf("redact file %s: %w", path, err) }
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	// Unknown keys are errors: a misspelt "replace" must not export what
	// it was meant to hide.
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail(errors.New("no rules: the file is empty"))
		}
		return nil, fail(explain(data, err))
	}
	if len(f.Rules) == 0 {
		return nil, fail(errors.New("no rules (the file holds a list under rules:)"))
	}
	rules := make([]mapping.RedactRule, len(f.Rules))
	for i, r := range f.Rules {
		rr, err := r.compile()
		if err != nil {
			return nil, fail(&mapping.RuleError{Index: i, Name: cmp.Or(r.Name, r.Preset), Err: err})
		}
		rules[i] = rr
	}
	red, err := mapping.NewRedactor(rules...)
	if err != nil {
		return nil, fail(err)
	}
	return red, nil
}

func (r rule) compile() (mapping.RedactRule, error) {
	if r.Preset != "" {
		p, ok := mapping.RedactPreset(r.Preset)
		if !ok {
			return p, fmt.Errorf("unknown preset %q (presets: %s)", r.Preset, strings.Join(mapping.RedactPresets(), ", "))
		}
		if r.Pattern != "" {
			return p, errors.New("a preset takes no pattern: write a rule of your own instead")
		}
		if r.Name != "" {
			p.Name = r.Name
		}
		if r.Replace != nil {
			p.Replace = *r.Replace
		}
		return p, nil
	}
	if r.Replace == nil {
		return mapping.RedactRule{}, errors.New("replace is required (write replace: '' to delete what the pattern matches)")
	}
	return mapping.RedactRule{Name: r.Name, Pattern: r.Pattern, Replace: *r.Replace}, nil
}

// yamlLine matches the messages of yaml.TypeError.
var (
	yamlLine     = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlUnknown  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	yamlMismatch = regexp.MustCompile(`^cannot unmarshal (\S+)(?: .*)? into \S+$`)
)

// explain rewrites a decoding error to name the rule (by its position and
// name) and the key at fault, rather than the Go types they decode into.
func explain(data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	starts := ruleStarts(data)
	msgs := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		m := yamlLine.FindStringSubmatch(e)
		if m == nil {
			msgs = append(msgs, e)
			continue
		}
		line, _ := strconv.Atoi(m[1])
		what := m[2]
		if u := yamlUnknown.FindStringSubmatch(what); u != nil {
			what = "unknown key " + strconv.Quote(u[1])
		} else if u := yamlMismatch.FindStringSubmatch(what); u != nil {
			what = "unexpected " + u[1]
		}
		where := "line " + m[1]
		if i := ruleAt(starts, line); i >= 0 {
			where = "rules[" + strconv.Itoa(i) + "]"
			if name := starts[i].name; name != "" {
				where += " (" + strconv.Quote(name) + ")"
			}
			where += ", line " + m[1]
		}
		msgs = append(msgs, where+": "+what)
	}
	return errors.New(strings.Join(msgs, "; "))
}

type ruleStart struct {
	line int
	name string
}

// ruleStarts returns the first line and the name (or preset) of each rule,
// read leniently from the document's node tree.
func ruleStarts(data []byte) []ruleStart {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil
	}
	var out []ruleStart
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "rules" || root.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for _, item := range root.Content[i+1].Content {
			s := ruleStart{line: item.Line}
			for j := 0; item.Kind == yaml.MappingNode && j+1 < len(item.Content); j += 2 {
				switch k := item.Content[j].Value; {
				case k == "name", k == "preset" && s.name == "":
					s.name = item.Content[j+1].Value
				}
			}
			out = append(out, s)
		}
	}
	return out
}

// ruleAt returns the index of the rule that line falls in, or -1.
func ruleAt(starts []ruleStart, line int) int {
	at := -1
	for i, s := range starts {
		if s.line <= line {
			at = i
		}
	}
	return at
}
