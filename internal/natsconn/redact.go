package natsconn

import (
	"net/url"
	"strings"

	"github.com/spanferry/spanferry/internal/redact"
)

// urlSecrets returns the passwords and tokens held in the userinfo of urls,
// both as written and percent-decoded, so that a scrubber finds either form.
func urlSecrets(urls []string) []string {
	var out []string
	for _, raw := range urls {
		start, end, ok := redact.Userinfo(raw)
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
		text = strings.ReplaceAll(text, secret, redact.Redacted)
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
