package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/spanferry/spanferry/internal/redact"
)

// validateStartup refuses the settings that used to be accepted and then
// failed on every export, or silently did not apply: an endpoint that
// cannot be a URL, TLS files that cannot be read, an HTTP address that is
// not host:port, an unknown log level or compression, malformed headers.
func (c Config) validateStartup() []error {
	var errs []error
	bad := func(name string, err error) {
		errs = append(errs, fmt.Errorf("config: %s: %w", name, err))
	}
	for _, e := range []struct{ name, value string }{
		{envOTLP + "ENDPOINT", c.OTLPEndpoint},
		{envOTLPTraces + "ENDPOINT", c.OTLPTracesEndpoint},
	} {
		if e.value == "" {
			continue
		}
		if err := CheckOTLPURL(e.value); err != nil {
			bad(e.name, err)
		}
	}
	if tlsConf, err := c.OTLPTLS(); err != nil {
		errs = append(errs, fmt.Errorf("config: %w", err))
	} else if tlsConf != nil && c.Exporter == ExporterOTLP {
		// otlptracehttp refuses TLS settings for an http:// endpoint too,
		// but without naming a variable.
		name, endpoint := envOTLP+"ENDPOINT", c.OTLPEndpoint
		if c.OTLPTracesEndpoint != "" {
			name, endpoint = envOTLPTraces+"ENDPOINT", c.OTLPTracesEndpoint
		}
		if u, err := url.Parse(strings.TrimSpace(endpoint)); err == nil && strings.EqualFold(u.Scheme, "http") {
			bad(name, errors.New("an http:// endpoint cannot use the OTEL_EXPORTER_OTLP_*CERTIFICATE/_CLIENT_KEY settings; use https://"))
		}
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			bad("WORKER_HTTP_ADDR", err)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil && c.LogLevel != "" {
		bad("WORKER_LOG_LEVEL", fmt.Errorf("%q is not debug, info, warn or error", c.LogLevel))
	}
	switch strings.TrimSpace(c.OTLPCompression) {
	case "", "gzip", "none":
	default:
		bad(envOTLP+"COMPRESSION", fmt.Errorf("%q is not gzip or none", c.OTLPCompression))
	}
	if v := c.OTLPTimeout; v != "" {
		// Read by wiring (the worker's own client); refused here already so
		// that a wrong value is a configuration error like the others.
		if ms, err := strconv.Atoi(v); err != nil || ms <= 0 {
			bad(envOTLP+"TIMEOUT", fmt.Errorf("%q is not a positive number of milliseconds", v))
		}
	}
	if err := checkHeaders(c.OTLPHeaders); err != nil {
		bad(envOTLP+"HEADERS", err)
	}
	for _, n := range []struct{ name, value string }{
		{"WORKER_STREAM", c.Stream}, {"WORKER_DLQ_STREAM", c.DLQStream}, {"WORKER_DURABLE", c.Durable},
		{"WORKER_PARK_STREAM", c.ParkStream},
	} {
		if err := checkJetStreamName(n.value); err != nil {
			bad(n.name, err)
		}
	}
	for _, subj := range c.Subjects {
		if err := checkSubject(subj, true); err != nil {
			bad("WORKER_SUBJECTS", err)
		}
	}
	if err := checkSubject(c.DLQSubject, false); err != nil {
		bad("WORKER_DLQ_SUBJECT", err)
	} else {
		for _, subj := range c.Subjects {
			if subjectMatches(subj, c.DLQSubject) {
				bad("WORKER_DLQ_SUBJECT", fmt.Errorf("%q is inside WORKER_SUBJECTS (%q): dead letters would be consumed again as results", c.DLQSubject, subj))
			}
		}
	}
	if c.MaxMessageBytes < 0 {
		bad("WORKER_MAX_MESSAGE_BYTES", errors.New("must not be negative (0 is the server's max payload)"))
	}
	if c.AttrValueLimit < -1 {
		bad("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", fmt.Errorf("must be -1 (no limit) or more, got %d", c.AttrValueLimit))
	}
	return errs
}

// CheckOTLPURL reports why raw cannot be an OTLP/HTTP endpoint: it must
// be an absolute http:// or https:// URL with a host. otlptracehttp
// accepts anything (not-a-url becomes https:///not-a-url/v1/traces) and
// then fails every export; the worker refuses it at start instead. The
// error quotes the URL with its userinfo's secret redacted.
func CheckOTLPURL(raw string) error {
	raw = strings.TrimSpace(raw) // as otlptracehttp reads it
	quoted := quoteURL(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s is not a URL", quoted)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "":
		return fmt.Errorf("%s has no scheme; want http://host:port or https://host:port", quoted)
	default:
		return fmt.Errorf("%s: scheme %q is not http or https", quoted, u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%s has no host", quoted)
	}
	return nil
}

// quoteURL quotes raw for an error without what may be a secret: the
// userinfo's password or token, and the query (some vendors take an API key
// there).
func quoteURL(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i] + "?" + redact.Redacted
	}
	return strconv.Quote(redact.URL(raw))
}

// checkHeaders checks OTEL_EXPORTER_OTLP_HEADERS as otlptracehttp parses
// it (key=value, comma separated, values URL-encoded). otlptracehttp skips
// a bad entry and logs it, value included: refusing it keeps a secret out
// of the log. The error names the entry by position, never by content.
func checkHeaders(v string) error {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	for i, entry := range strings.Split(v, ",") {
		key, value, ok := strings.Cut(entry, "=")
		switch {
		case !ok:
			return fmt.Errorf("entry %d is not key=value", i+1)
		case !isToken(strings.TrimSpace(key)):
			return fmt.Errorf("entry %d: the key is not a valid header name", i+1)
		}
		if _, err := url.PathUnescape(value); err != nil {
			return fmt.Errorf("entry %d (%s): the value is not URL-encoded correctly", i+1, strings.TrimSpace(key))
		}
	}
	return nil
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2), what a
// header name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= 0x7f || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// checkJetStreamName refuses what JetStream refuses in a stream or
// consumer name, and which would otherwise fail every attempt to bind:
// whitespace, '.', '*', '>', path separators, control characters. An empty
// name is left to the required checks.
func checkJetStreamName(name string) error {
	if i := strings.IndexFunc(name, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune(`.*>/\`, r)
	}); i >= 0 {
		return fmt.Errorf("%q: a JetStream name cannot contain %q", name, name[i])
	}
	return nil
}

// checkSubject refuses a subject NATS would refuse: empty tokens,
// whitespace, and wildcards ('*' a whole token, '>' the last one) where
// they are not allowed. An empty subject is left to the required checks.
func checkSubject(subject string, wildcards bool) error {
	if subject == "" {
		return nil
	}
	tokens := strings.Split(subject, ".")
	for i, tok := range tokens {
		switch {
		case tok == "":
			return fmt.Errorf("%q has an empty token", subject)
		case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			return fmt.Errorf("%q contains whitespace", subject)
		case (tok == "*" || tok == ">") && !wildcards:
			return fmt.Errorf("%q: a wildcard cannot be published to", subject)
		case tok == ">" && i != len(tokens)-1:
			return fmt.Errorf("%q: '>' must be the last token", subject)
		case tok != "*" && tok != ">" && strings.ContainsAny(tok, "*>"):
			return fmt.Errorf("%q: a wildcard must be a whole token", subject)
		}
	}
	return nil
}

// subjectMatches reports whether the subject filter pattern matches the
// literal subject.
func subjectMatches(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		switch {
		case p == ">":
			return len(st) > i
		case i >= len(st):
			return false
		case p != "*" && p != st[i]:
			return false
		}
	}
	return len(pt) == len(st)
}
