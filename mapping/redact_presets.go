package mapping

import "slices"

// The named presets of RedactPreset: the rules users most often write, kept
// here so that each is written once and tested with what it must and must
// not match.
var redactPresets = map[string]RedactRule{
	// E-mail addresses: a local part, @, and a dotted domain ending in a
	// top-level domain of two letters or more.
	"email": {
		Pattern: `[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`,
		Replace: "[email]",
	},
	// Payment card numbers: 13 to 19 digits, optionally grouped by spaces
	// or dashes, that pass the Luhn check, so order numbers, phone numbers
	// and timestamps of the same length are mostly left alone. A run of
	// groups that fails it is searched for groups that pass: in
	// "ref 12 4111 1111 1111 1111" the card is the last four.
	"card": {
		Pattern: `\b(?:\d[ -]?){12,18}\d\b`,
		Replace: "[card]",
		narrow:  luhnGroups,
		need:    atLeastDigits(13),
	},
	// Bearer tokens, as in an Authorization header: the scheme is kept, the
	// credential replaced. Sixteen characters at least, so that prose ("the
	// bearer of this letter") is left alone.
	"bearer": {
		Pattern: `(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{16,}=*`,
		Replace: "$1 [secret]",
	},
	// API keys of common shapes: OpenAI and Anthropic (sk-…), AWS access
	// key ids (AKIA…, ASIA…), GitHub tokens (ghp_…, github_pat_…), Slack
	// tokens (xox?-…), Google API keys (AIza…) and Stripe keys (sk_live_…).
	"api-key": {
		Pattern: `\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}` +
			`|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b` +
			`|\bgh[pousr]_[A-Za-z0-9]{36,}` +
			`|\bgithub_pat_[A-Za-z0-9_]{22,}` +
			`|\bxox[abprs]-[A-Za-z0-9-]{10,}` +
			`|\bAIza[0-9A-Za-z_-]{35}` +
			`|\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}`,
		Replace: "[secret]",
	},
	// JSON Web Tokens: three base64url parts, the first two JSON objects
	// ("eyJ" is how `{"` encodes).
	"jwt": {
		Pattern: `\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}`,
		Replace: "[secret]",
	},
}

// RedactPreset returns the preset rule of that name, named after it:
// "email", "card" (with a Luhn check), "bearer", "api-key" or "jwt"
// (RedactPresets lists them). A redact file names one with
// `- preset: email`.
func RedactPreset(name string) (RedactRule, bool) {
	r, ok := redactPresets[name]
	r.Name = name
	return r, ok
}

// RedactPresets returns the names of the presets, sorted.
func RedactPresets() []string {
	names := make([]string, 0, len(redactPresets))
	for n := range redactPresets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// luhnGroups returns the longest run of whole digit groups of m (digits
// split by spaces or dashes) with 13 to 19 digits that passes the Luhn
// check, m itself when it does. m holds at most 19 digits (the pattern's
// bound), so the search is bounded too.
func luhnGroups(m []byte) (start, end int, ok bool) {
	if luhn(m) {
		return 0, len(m), true
	}
	// The groups' bounds and the digits before each.
	type group struct{ start, end, before int }
	var room [19]group // a match holds 19 digits at most
	groups := room[:0]
	digits := 0
	for i := 0; i < len(m); {
		if m[i] < '0' || m[i] > '9' {
			i++
			continue
		}
		g := group{start: i, before: digits}
		for i < len(m) && '0' <= m[i] && m[i] <= '9' {
			i++
			digits++
		}
		g.end = i
		groups = append(groups, g)
	}
	bestLen := 0
	for i := range groups {
		for j := i; j < len(groups); j++ {
			n := groups[j].before + (groups[j].end - groups[j].start) - groups[i].before
			if n < 13 || n > 19 || n <= bestLen || (i == 0 && j == len(groups)-1) {
				continue
			}
			if luhn(m[groups[i].start:groups[j].end]) {
				start, end, bestLen = groups[i].start, groups[j].end, n
			}
		}
	}
	return start, end, bestLen > 0
}

// luhn reports whether the digits of b (other bytes are skipped) pass the
// Luhn check that every payment card number passes.
func luhn(b []byte) bool {
	sum, n := 0, 0
	for i := len(b) - 1; i >= 0; i-- {
		c := b[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if n%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
	}
	return n > 0 && sum%10 == 0
}
