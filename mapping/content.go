package mapping

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// contentOptions are the content controls of CONTRACT §9 a Mapper applies.
type contentOptions struct {
	capture  func(organization string) bool // nil: capture everything
	redactor *Redactor                      // nil: redact nothing
}

// WithCaptureContent decides, for each result, whether its spans carry its
// content: capture is called once per result with the result's
// organization (empty when it has none), and when it returns false no span
// of the result has a traceloop.entity.input or traceloop.entity.output
// attribute; everything else is mapped as usual (CONTRACT §9, the
// equivalent of Traceloop's TRACELOOP_TRACE_CONTENT=false). A nil capture,
// or no WithCaptureContent at all, captures every result's content.
//
// WORKER_CAPTURE_CONTENT=false is a capture that always returns false; a
// per-tenant switch (a tenant's capture_content) is one that looks the
// organization up. capture is called concurrently when the Mapper is
// shared, and must not block. The last WithCaptureContent given wins.
func WithCaptureContent(capture func(organization string) bool) Option {
	return func(c *config) error {
		c.content.capture = capture
		return nil
	}
}

// WithRedactor applies r's rules to every result (CONTRACT §9): to each
// string value inside input and output (object keys are left alone, and
// the text stays valid JSON), to error messages and to string metadata
// values, before the attribute value limit truncates them. Ids, names,
// timings and the other fields are never redacted. Map counts the
// replacements in Stats.Redactions. A nil r redacts nothing.
func WithRedactor(r *Redactor) Option {
	return func(c *config) error {
		c.content.redactor = r
		return nil
	}
}

// Redactor returns the redactor in force, or nil.
func (m *Mapper) Redactor() *Redactor { return m.content.redactor }

// content is one Map call's content controls, held by the walker: without
// rules they cost Map no allocation.
type content struct {
	capture  bool
	redactor *Redactor
	buf      *redactBuf // made when redactJSON first changes a value
}

// redactBuf holds the buffers of redactJSON, reused across one Map call.
type redactBuf struct {
	enc    *json.Encoder // re-encodes redacted string values into encBuf
	encBuf bytes.Buffer
	out    []byte // the redacted JSON text being built
}

// contentFor resolves the controls for one result.
func (o *contentOptions) contentFor(r *Result) content {
	return content{
		capture:  o.capture == nil || o.capture(r.Organization),
		redactor: o.redactor,
	}
}

// addRedactions counts n replacements by rule.
func (s *Stats) addRedactions(rule string, n int) {
	if s.Redactions == nil {
		s.Redactions = make(map[string]int, 1)
	}
	s.Redactions[rule] += n
}

// redact applies the redaction rules to an error message or a metadata
// value.
func (w *walker) redact(s string) string {
	if w.content.redactor == nil {
		return s
	}
	return w.redactString(s)
}

func (w *walker) redactString(s string) string {
	b, changed := w.content.redactor.apply([]byte(s), &w.stats)
	if !changed {
		return s
	}
	return w.keep(b)
}

// redactJSON returns the text of the JSON value raw (which the decoder
// validated) with the rules applied to each of its string values and not
// to object keys, numbers or the JSON's own syntax: a rule can never match
// across a quote, and the text stays valid JSON. Invalid UTF-8 is repaired
// as Map does for unredacted text.
func (w *walker) redactJSON(raw []byte) string {
	if !utf8.Valid(raw) {
		raw = []byte(strings.ToValidUTF8(string(raw), "\uFFFD"))
	}
	// out is built only once a value changes: raw[done:] is what it lacks.
	var out []byte
	done := 0
	for i := 0; ; {
		q := bytes.IndexByte(raw[i:], '"')
		if q < 0 {
			break
		}
		q += i
		end := stringEnd(raw, q)
		i = end
		if isKey(raw[end:]) {
			continue
		}
		str := raw[q:end]
		value := str[1 : len(str)-1]
		if bytes.IndexByte(value, '\\') >= 0 {
			var s string
			if json.Unmarshal(str, &s) != nil {
				continue // unreachable: the decoder validated it
			}
			value = []byte(s)
		}
		red, changed := w.content.redactor.apply(value, &w.stats)
		if !changed {
			continue
		}
		if w.content.buf == nil {
			w.content.buf = &redactBuf{}
		}
		if out == nil {
			out = w.content.buf.out[:0]
		}
		out = append(out, raw[done:q]...)
		out = w.content.buf.appendString(out, red)
		done = end
	}
	if out == nil {
		return w.keep(raw)
	}
	out = append(out, raw[done:]...)
	w.content.buf.out = out
	return w.keep(out)
}

// appendString appends s encoded as a JSON string, as encoding/json
// encodes it but leaving <, > and & as they are.
func (c *redactBuf) appendString(dst, s []byte) []byte {
	if c.enc == nil {
		c.enc = json.NewEncoder(&c.encBuf)
		c.enc.SetEscapeHTML(false)
	}
	c.encBuf.Reset()
	_ = c.enc.Encode(string(s)) // a string always encodes
	return append(dst, bytes.TrimSuffix(c.encBuf.Bytes(), []byte("\n"))...)
}

// stringEnd returns the index just past the JSON string that starts with
// the quote at raw[q].
func stringEnd(raw []byte, q int) int {
	for i := q + 1; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(raw) // unreachable for validated JSON
}

// isKey reports whether the JSON that follows a string makes it an object
// key: in valid JSON, only a key is followed by a colon.
func isKey(rest []byte) bool {
	for _, c := range rest {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case ':':
			return true
		}
		return false
	}
	return false
}
