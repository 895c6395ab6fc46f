package mapping_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/spanferry/spanferry/mapping"
)

// redactReference is the library's way to redact a JSON value: decode it
// with encoding/json, redact every string that is not an object key, and
// compare decoded values. The mapping's scanner over the raw text must
// agree with it on every input.
func redactReference(r *mapping.Redactor, v any) any {
	switch v := v.(type) {
	case string:
		s, _ := r.Redact(v)
		return s
	case []any:
		for i := range v {
			v[i] = redactReference(r, v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = redactReference(r, v[k])
		}
	}
	return v
}

func decodeAny(t *testing.T, text []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%q does not decode: %v", text, err)
	}
	return v
}

// FuzzRedactJSON checks the redacted input against redactReference: the
// same values, and valid JSON text.
func FuzzRedactJSON(f *testing.F) {
	for _, seed := range []string{
		`{"k":"ann@example.com","ann@example.com":["x",1,{"y":"bob@example.com"}]}`,
		`"a\"@b.com\\" `, `["a", "b"]`, `{"a" : "\u0061@b.com"}`, `[1,2.5e3,true,null,"\ud800x@y.com"]`,
		`{"s":"a\nb@c.com\t<&>"}`, ` "x@y.com" `, `{"":""}`,
	} {
		f.Add([]byte(seed))
	}
	r := mustRedactor(f,
		mapping.RedactRule{Name: "mail", Pattern: `[a-z]+@[a-z]+\.com`, Replace: `<"$0">`},
		mapping.RedactRule{Name: "quote", Pattern: `"`, Replace: `\`},
		mapping.RedactRule{Name: "ab", Pattern: `a", "b|b`, Replace: "B"},
	)
	m := newMapper(f, mapping.WithRedactor(r))
	f.Fuzz(func(t *testing.T, input []byte) {
		if !json.Valid(input) || !utf8.Valid(input) {
			return
		}
		msg := append([]byte(`{"id":"r","name":"wf","input":`), input...)
		msg = append(msg, '}')
		d, err := m.Decode(msg, mapping.Source{Stored: stored})
		if err != nil {
			return // a null input, say
		}
		c, _ := m.NewCollector(d, nil)
		if _, err := m.Map(c, d); err != nil {
			t.Fatal(err)
		}
		got, ok := attrs(c.Spans()[0])[mapping.AttrTraceloopEntityInput]
		if !ok {
			if !bytes.Equal(bytes.TrimSpace(input), []byte("null")) {
				t.Fatalf("no input attribute for %q", input)
			}
			return
		}
		text := []byte(got.AsString())
		if !json.Valid(text) {
			t.Fatalf("redacted %q into invalid JSON %q", input, text)
		}
		want := redactReference(r, decodeAny(t, input))
		if have := decodeAny(t, text); !reflect.DeepEqual(have, want) {
			t.Fatalf("redacted %q into %q:\n got %#v\nwant %#v", input, text, have, want)
		}
	})
}
