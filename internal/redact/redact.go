// Package redact hides the secrets NATS URLs may carry (user:password@ or a
// token@) before a URL is logged or quoted in an error. The configuration's
// log value and the NATS connection both use it, so there is one rule.
package redact

import "strings"

// Redacted is what a secret is replaced with in logs and errors.
const Redacted = "***"

// URL returns rawURL with the secret part of its userinfo replaced by
// [Redacted]: the password of user:password, or the whole userinfo when it is
// a single word, which NATS reads as a token
// (nats://user:pass@host → nats://user:***@host, nats://tok@host → nats://***@host).
// A URL without userinfo is returned unchanged.
//
// It works on the text rather than on a parsed url.URL so that a URL that
// does not parse (and may end up quoted in an error message) is redacted too.
func URL(rawURL string) string {
	start, end, ok := Userinfo(rawURL)
	if !ok {
		return rawURL
	}
	redacted := Redacted
	if user, _, ok := strings.Cut(rawURL[start:end], ":"); ok {
		redacted = user + ":" + Redacted
	}
	return rawURL[:start] + redacted + rawURL[end:]
}

// URLs redacts each URL of a comma-separated list, as NATS_URL holds,
// and joins them with commas.
func URLs(urls string) string {
	parts := SplitURLs(urls)
	for i, u := range parts {
		parts[i] = URL(u)
	}
	return strings.Join(parts, ",")
}

// Userinfo returns where the userinfo of rawURL starts and ends (the
// index of its '@'), and whether it has one. A URL without a scheme, which
// nats.go accepts, is read as an authority.
func Userinfo(rawURL string) (start, end int, ok bool) {
	if i := strings.Index(rawURL, "://"); i >= 0 {
		start = i + len("://")
	}
	authority := rawURL[start:]
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority = authority[:i]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return 0, 0, false
	}
	return start, start + at, true
}

// SplitURLs splits a comma-separated URL list, dropping empty entries, the
// way nats.Connect does.
func SplitURLs(urls string) []string {
	var out []string
	for u := range strings.SplitSeq(urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}
