package mapping

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// RedactRule replaces every match of a pattern in the content of a result
// (CONTRACT §9): the string values inside input and output, error messages
// and string metadata values. Ids, names and timings are never redacted.
type RedactRule struct {
	// Name identifies the rule in errors and in the redaction counts
	// (spanferry_redactions_total{rule}): keep names few and fixed.
	Name string
	// Pattern is an RE2 regular expression (Go regexp syntax), so that
	// matching time is linear in the text whatever the text holds.
	Pattern string
	// Replace replaces each match; $1, ${1} and ${name} refer to the
	// pattern's groups (regexp.Regexp.Expand), $$ is a dollar sign.
	Replace string

	// narrow, when set, is given each match and returns the part of it to
	// replace, or false to keep it whole: the card preset replaces only
	// digits that pass the Luhn check.
	narrow func(match []byte) (start, end int, ok bool)
	// need, when set, is a cheap test that a text may hold a match: the
	// card preset needs 13 digits (see prefilter).
	need func(text []byte) bool
}

// Redactor applies redaction rules, in order, to strings. It is safe for
// concurrent use. Create it with NewRedactor and give it to a Mapper with
// WithRedactor.
type Redactor struct {
	rules []compiledRule
	names []string
	index literalIndex // the rules' literals, looked for in one pass
}

type compiledRule struct {
	name    string
	re      *regexp.Regexp
	replace []byte
	expand  bool // replace refers to groups
	narrow  func([]byte) (int, int, bool)
	pre     prefilter
}

// RuleError is NewRedactor's error: it names the rule at fault by its
// position and its name.
type RuleError struct {
	Index int    // position of the rule in the list, from 0
	Name  string // the rule's name, if it has one
	Err   error
}

func (e *RuleError) Error() string {
	s := "rules[" + strconv.Itoa(e.Index) + "]"
	if e.Name != "" {
		s += " (" + strconv.Quote(e.Name) + ")"
	}
	return s + ": " + e.Err.Error()
}

func (e *RuleError) Unwrap() error { return e.Err }

// NewRedactor compiles rules. A rule without a name, with an invalid
// pattern, with a pattern that matches the empty string, with a reference
// to a group its pattern lacks, or with the name of an earlier rule is an
// error (a *RuleError).
func NewRedactor(rules ...RedactRule) (*Redactor, error) {
	r := &Redactor{}
	seen := make(map[string]int, len(rules))
	for i, rule := range rules {
		bad := func(format string, args ...any) error {
			return &RuleError{Index: i, Name: rule.Name, Err: fmt.Errorf(format, args...)}
		}
		if rule.Name == "" {
			return nil, bad("a name is required")
		}
		if j, dup := seen[rule.Name]; dup {
			return nil, bad("duplicate name: rules[%d] has it too", j)
		}
		seen[rule.Name] = i
		if rule.Pattern == "" {
			return nil, bad("a pattern is required")
		}
		re, err := regexp.Compile(rule.Pattern)
		if err != nil {
			return nil, bad("invalid pattern: %v", err)
		}
		if re.MatchString("") {
			// It would insert its replacement between every two characters.
			return nil, bad("pattern %q matches the empty string", rule.Pattern)
		}
		expand := strings.Contains(rule.Replace, "$")
		if expand {
			if err := checkTemplate(re, rule.Replace); err != nil {
				return nil, bad("replace %q: %v", rule.Replace, err)
			}
		}
		r.rules = append(r.rules, compiledRule{name: rule.Name, re: re, replace: []byte(rule.Replace), expand: expand, narrow: rule.narrow, pre: newPrefilter(rule.Pattern, rule.need)})
		r.names = append(r.names, rule.Name)
	}
	if len(r.rules) == 0 {
		return nil, errors.New("mapping: a redactor needs at least one rule")
	}
	r.index = newLiteralIndex(r.rules)
	return r, nil
}

// Rules returns the names of the rules, in the order they apply.
func (r *Redactor) Rules() []string { return slices.Clone(r.names) }

// Redact applies the rules to s and returns the result and the number of
// replacements of each rule that replaced anything (nil when none did).
func (r *Redactor) Redact(s string) (string, map[string]int) {
	var st Stats
	out, changed := r.apply([]byte(s), &st)
	if !changed {
		return s, nil
	}
	return string(out), st.Redactions
}

// apply runs every rule over b in order, counting replacements in st, and
// reports whether anything was replaced. b is not modified: a changed text
// is a new slice.
func (r *Redactor) apply(b []byte, st *Stats) ([]byte, bool) {
	found := r.index.scan(b)
	changed := false
	for i := range r.rules {
		c := &r.rules[i]
		if !r.index.may(found, i, c, b) {
			continue
		}
		out, n := c.replaceAll(b)
		if n > 0 {
			b, changed = out, true
			st.addRedactions(c.name, n)
			// The replacement may have made or unmade the next rules'
			// literals.
			found = r.index.scan(b)
		}
	}
	return b, changed
}

// apply replaces the rule's matches in b, after its prefilter, and returns
// the new text and the number of replacements (b itself when there were
// none). Redactor.apply does the same for all rules at once.
func (c *compiledRule) apply(b []byte) ([]byte, int) {
	if !c.pre.pass(b) {
		return b, 0
	}
	return c.replaceAll(b)
}

// replaceAll replaces the rule's matches in b.
func (c *compiledRule) replaceAll(b []byte) ([]byte, int) {
	var matches [][]int
	if c.expand {
		matches = c.re.FindAllSubmatchIndex(b, -1)
	} else {
		matches = c.re.FindAllIndex(b, -1)
	}
	if matches == nil {
		return b, 0
	}
	var out []byte
	last, n := 0, 0
	for _, m := range matches {
		if m[0] == m[1] {
			continue
		}
		if c.narrow != nil {
			start, end, ok := c.narrow(b[m[0]:m[1]])
			if !ok {
				continue
			}
			m = append([]int{m[0] + start, m[0] + end}, m[2:]...)
		}
		if out == nil {
			out = make([]byte, 0, len(b)+len(c.replace)*len(matches))
		}
		out = append(out, b[last:m[0]]...)
		if c.expand {
			out = c.re.Expand(out, c.replace, b, m)
		} else {
			out = append(out, c.replace...)
		}
		last = m[1]
		n++
	}
	if n == 0 {
		return b, 0
	}
	return append(out, b[last:]...), n
}

// checkTemplate reports a group reference of tmpl that re has no group
// for. regexp.Expand replaces such a reference with nothing, silently:
// "$1x" refers to a group named 1x, not to group 1 followed by x.
func checkTemplate(re *regexp.Regexp, tmpl string) error {
	for {
		i := strings.IndexByte(tmpl, '$')
		if i < 0 {
			return nil
		}
		tmpl = tmpl[i+1:]
		if strings.HasPrefix(tmpl, "$") {
			tmpl = tmpl[1:]
			continue
		}
		var name string
		if rest, ok := strings.CutPrefix(tmpl, "{"); ok {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return errors.New("unclosed ${")
			}
			name, tmpl = rest[:end], rest[end+1:]
		} else {
			end := 0
			for end < len(tmpl) && isGroupNameByte(tmpl[end]) {
				end++
			}
			name, tmpl = tmpl[:end], tmpl[end:]
		}
		if name == "" {
			return errors.New("a $ that names no group (write $$ for a dollar sign)")
		}
		if !hasGroup(re, name) {
			hint := ""
			if n := strings.TrimRight(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"); n != name && n != "" {
				hint = " (write ${" + n + "} when a letter follows the group number)"
			}
			return fmt.Errorf("$%s refers to no group of the pattern%s", name, hint)
		}
	}
}

func isGroupNameByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func hasGroup(re *regexp.Regexp, name string) bool {
	if n, err := strconv.Atoi(name); err == nil {
		return n >= 0 && n <= re.NumSubexp()
	}
	return re.SubexpIndex(name) >= 0
}
