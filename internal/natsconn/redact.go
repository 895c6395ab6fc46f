package natsconn

import (
	"net/url"
	"strings"
)

// Redacted is what a secret is replaced with in logs and errors.
const Redacted = "***"

// RedactURL returns rawURL with the secret part of its userinfo replaced by
// [Redacted]: the password of user:password, or the whole userinfo when it is
// a single word, which NATS reads as a token
// (nats://user:pass@host → nats://user:***@host, nats://tok@host → nats://***@host).
// A URL without userinfo is returned unchanged.
//
// It works on the text rather than on a parsed url.URL so that a URL that
// does not parse (and may end up quoted in an error message) is redacted too.
func RedactURL(rawURL string) string {
	start, end, ok := userinfoBounds(rawURL)
	if !ok {
		return rawURL
	}
	redacted := Redacted
	if user, _, ok := strings.Cut(rawURL[start:end], ":"); ok {
		redacted = user + ":" + Redacted
	}
	return rawURL[:start] + redacted + rawURL[end:]
}

// RedactURLs redacts each URL of a comma-separated list, as NATS_URL holds,
// and joins them with commas.
func RedactURLs(urls string) string {
	parts := splitURLs(urls)
	for i, u := range parts {
		parts[i] = RedactURL(u)
	}
	return strings.Join(parts, ",")
}

// userinfoBounds returns where the userinfo of rawURL starts and ends (the
// index of its '@'), and whether it has one. A URL without a scheme, which
// nats.go accepts, is read as an authority.
func userinfoBounds(rawURL string) (start, end int, ok bool) {
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

// splitURLs splits a comma-separated URL list, dropping empty entries, the
// way nats.Connect does.
func splitURLs(urls string) []string {
	var out []string
	for u := range strings.SplitSeq(urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// urlSecrets returns the passwords and tokens held in the userinfo of urls,
// both as written and percent-decoded, so that a scrubber finds either form.
func urlSecrets(urls []string) []string {
	var out []string
	for _, raw := range urls {
		start, end, ok := userinfoBounds(raw)
		if !ok {
			continue
		}
		secret := raw[start:end]
		if _, pw, ok := strings.Cut(secret, ":"); ok {
			secret = pw
		}
		out = append(out, secret)
		if dec, err := url.PathUnescape(secret); err == nil && dec != secret {
			out = append(out, dec)
		}
	}
	return out
}

// scrubber replaces known secrets in text that may have picked them up from a
// library's message (url.Parse errors, for one, quote the whole URL).
type scrubber []string

func newScrubber(secrets ...string) scrubber {
	var s scrubber
	for _, secret := range secrets {
		if secret != "" {
			s = append(s, secret)
		}
	}
	return s
}

func (s scrubber) scrub(text string) string {
	for _, secret := range s {
		text = strings.ReplaceAll(text, secret, Redacted)
	}
	return text
}

// scrubbedError is an error whose message has had secrets removed; it still
// unwraps to the original so that errors.Is keeps working.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrubError returns err with the secrets of s removed from its message.
func (s scrubber) scrubError(err error) error {
	if err == nil {
		return nil
	}
	msg := s.scrub(err.Error())
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}
