package mapping

import (
	"bytes"
	"regexp/syntax"
	"unicode/utf8"
)

// A prefilter rejects, cheaply, text that a rule's pattern cannot match, so
// that most content strings cost a few substring searches per rule rather
// than a run of the regexp engine (Go's regexp uses a literal prefix only
// when the whole pattern starts with one, and runs its backtracker or NFA
// over every other text). It is sound: it passes every text the pattern
// can match. redact_internal_test.go checks it against the plain regexp.
type prefilter struct {
	// any lists literals of which the text must hold one; empty: no
	// requirement.
	any  []literal
	need func([]byte) bool // a preset's own requirement, or nil
}

type literal struct {
	s    []byte
	fold bool // ASCII case-insensitive
}

// pass reports whether the pattern may match b.
func (p *prefilter) pass(b []byte) bool {
	if p.need != nil && !p.need(b) {
		return false
	}
	if len(p.any) == 0 {
		return true
	}
	for _, l := range p.any {
		if l.fold {
			if indexFold(b, l.s) >= 0 {
				return true
			}
		} else if bytes.Contains(b, l.s) {
			return true
		}
	}
	return false
}

// newPrefilter derives the literals every match of pattern contains. A
// pattern it cannot reason about gets no requirement.
func newPrefilter(pattern string, need func([]byte) bool) prefilter {
	p := prefilter{need: need}
	re, err := syntax.Parse(pattern, syntax.Perl) // as regexp.Compile parses
	if err != nil {
		return p
	}
	if lits, ok := required(re); ok && !(shortest(lits) == 1 && len(lits) > 4) {
		// Many single bytes ([0-9]) would pass nearly every text, after
		// as many searches.
		p.any = lits
	}
	return p
}

// required returns literals of which every match of re contains one, and
// false when there are none to say.
func required(re *syntax.Regexp) ([]literal, bool) {
	switch re.Op {
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
		return nil, false
	case syntax.OpConcat:
		return requiredConcat(re.Sub)
	case syntax.OpAlternate:
		// One branch must match: the text holds a literal of one of them.
		var all []literal
		for _, sub := range re.Sub {
			lits, ok := required(sub)
			if !ok {
				return nil, false
			}
			all = append(all, lits...)
		}
		return all, len(all) > 0
	}
	return exact(re)
}

// requiredConcat finds the best requirement of a concatenation: every part
// must match, so any part's requirement will do, and a run of parts that
// each match one of a few strings requires one of their concatenations
// (gh[pousr]_ requires ghp_, gho_, … rather than gh).
func requiredConcat(subs []*syntax.Regexp) ([]literal, bool) {
	var best, run []literal
	consider := func(lits []literal) {
		if lits != nil && better(lits, best) {
			best = lits
		}
	}
	for _, sub := range subs {
		switch sub.Op {
		case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
			syntax.OpWordBoundary, syntax.OpNoWordBoundary:
			continue // they match no text: the run goes on across them
		}
		if e, ok := exact(sub); ok {
			if run == nil {
				run = e
			} else if p := product(run, e); p != nil {
				run = p
			} else {
				consider(run)
				run = e
			}
			continue
		}
		consider(run)
		run = nil
		if lits, ok := required(sub); ok {
			consider(lits)
		}
	}
	consider(run)
	return best, best != nil
}

// maxExact bounds the strings of an exact set.
const maxExact = 16

// exact returns every string re matches, when they are a few literals.
func exact(re *syntax.Regexp) ([]literal, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		fold := re.Flags&syntax.FoldCase != 0
		for _, r := range re.Rune {
			// (?i) beyond ASCII, and of k and s, which it also matches to
			// the Kelvin sign and the long s: not worth it here.
			if fold && (r >= utf8.RuneSelf || lower(byte(r)) == 'k' || lower(byte(r)) == 's') {
				return nil, false
			}
		}
		s := []byte(string(re.Rune))
		return []literal{{s: s, fold: fold}}, len(s) > 0
	case syntax.OpCharClass:
		var lits []literal
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if r >= utf8.RuneSelf || len(lits) == maxExact {
					return nil, false
				}
				lits = append(lits, literal{s: []byte{byte(r)}})
			}
		}
		return lits, len(lits) > 0
	case syntax.OpCapture:
		return exact(re.Sub[0])
	case syntax.OpAlternate:
		var all []literal
		for _, sub := range re.Sub {
			e, ok := exact(sub)
			if !ok || len(all)+len(e) > maxExact {
				return nil, false
			}
			all = append(all, e...)
		}
		return all, true
	case syntax.OpConcat:
		var run []literal
		for _, sub := range re.Sub {
			e, ok := exact(sub)
			if !ok {
				return nil, false
			}
			if run == nil {
				run = e
			} else if run = product(run, e); run == nil {
				return nil, false
			}
		}
		return run, run != nil
	}
	return nil, false
}

// product returns every a followed by every b, or nil when they are more
// than maxExact.
func product(a, b []literal) []literal {
	if len(a)*len(b) > maxExact {
		return nil
	}
	out := make([]literal, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			s := append(append(make([]byte, 0, len(x.s)+len(y.s)), x.s...), y.s...)
			out = append(out, literal{s: s, fold: x.fold || y.fold})
		}
	}
	return out
}

// better reports whether a is a stronger requirement than b: its shortest
// literal is longer, or as long with fewer literals.
func better(a, b []literal) bool {
	if b == nil {
		return true
	}
	ma, mb := shortest(a), shortest(b)
	return ma > mb || ma == mb && len(a) < len(b)
}

func shortest(lits []literal) int {
	n := -1
	for _, l := range lits {
		if n < 0 || len(l.s) < n {
			n = len(l.s)
		}
	}
	return n
}

// indexFold is bytes.Index with ASCII letters matched in either case.
func indexFold(b, lit []byte) int {
	for i := 0; i+len(lit) <= len(b); i++ {
		if asciiEqualFold(b[i:i+len(lit)], lit) {
			return i
		}
	}
	return -1
}

func asciiEqualFold(a, b []byte) bool {
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// atLeastDigits returns a requirement of n ASCII digits.
func atLeastDigits(n int) func([]byte) bool {
	return func(b []byte) bool {
		k := n
		for _, c := range b {
			if '0' <= c && c <= '9' {
				if k--; k == 0 {
					return true
				}
			}
		}
		return false
	}
}

// literalIndex looks for the literals of the first 64 rules in one pass
// over a text, rather than one search per literal per rule: the api-key
// preset alone has 19.
type literalIndex struct {
	first [256][]literalRef // by the literal's first byte, in either case when folded
	all   uint64            // the bits of the rules with literals
}

type literalRef struct {
	literal
	bit uint64
}

func newLiteralIndex(rules []compiledRule) literalIndex {
	var x literalIndex
	for i := range rules {
		if i == 64 || len(rules[i].pre.any) == 0 {
			continue
		}
		bit := uint64(1) << i
		x.all |= bit
		for _, l := range rules[i].pre.any {
			ref := literalRef{literal: l, bit: bit}
			c := l.s[0]
			x.first[c] = append(x.first[c], ref)
			if l.fold {
				if u := upper(c); u != c {
					x.first[u] = append(x.first[u], ref)
				}
				if lc := lower(c); lc != c {
					x.first[lc] = append(x.first[lc], ref)
				}
			}
		}
	}
	return x
}

// scan returns the bits of the rules whose literals b holds.
func (x *literalIndex) scan(b []byte) uint64 {
	if x.all == 0 {
		return 0
	}
	var found uint64
	for i, c := range b {
		for _, ref := range x.first[c] {
			if found&ref.bit != 0 || len(b)-i < len(ref.s) {
				continue
			}
			if ref.fold && asciiEqualFold(b[i:i+len(ref.s)], ref.s) || !ref.fold && bytes.HasPrefix(b[i:], ref.s) {
				if found |= ref.bit; found == x.all {
					return found
				}
			}
		}
	}
	return found
}

// may reports whether rule i (c) may match b, given the bits scan found.
func (x *literalIndex) may(found uint64, i int, c *compiledRule, b []byte) bool {
	if c.pre.need != nil && !c.pre.need(b) {
		return false
	}
	switch {
	case len(c.pre.any) == 0:
		return true
	case i >= 64:
		return c.pre.pass(b)
	}
	return found&(uint64(1)<<i) != 0
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}
