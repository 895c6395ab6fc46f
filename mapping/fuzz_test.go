package mapping_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/spanferry/spanferry/mapping"
)

// FuzzDecode feeds arbitrary bytes and traceparent headers through Decode
// and Map: neither may panic, every refusal must be a permanent
// *FieldError, and every accepted message must map to one span per step
// plus the root, all in the result's trace.
func FuzzDecode(f *testing.F) {
	for _, pattern := range []string{"../examples/*.json", "../examples/invalid/*.json", "testdata/*.json"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data, "")
		}
	}
	f.Add([]byte(fullResult), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	f.Add([]byte(`{"id":"r","name":"n","steps":[{"name":"a","steps":[{"name":"b","span_id":"00f067aa0ba902b7"}]}]}`), "")
	f.Add([]byte(`{"id":"r","name":"n","latency_ms":1.5,"metadata":{"a":null,"b":-1e3}}`), "garbage")

	m, err := mapping.New(mapping.WithLimits(mapping.Limits{MaxAttrValueLen: 16}))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, traceparent string) {
		d, err := m.Decode(data, mapping.Source{Traceparent: traceparent, Stored: stored})
		if err != nil {
			if !mapping.IsPermanent(err) {
				t.Fatalf("refusal is not permanent: %v", err)
			}
			return
		}
		c, err := m.NewCollector(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		st, err := m.Map(c, d)
		if err != nil {
			t.Fatalf("valid message failed to map: %v", err)
		}
		if st.Spans != d.Steps()+1 || c.Len() != st.Spans {
			t.Fatalf("%d spans for %d steps", c.Len(), d.Steps())
		}
		for _, s := range c.Spans() {
			if s.SpanContext().TraceID() != d.TraceID || s.EndTime().Before(s.StartTime()) {
				t.Fatalf("span %q: trace %s, %s..%s", s.Name(), s.SpanContext().TraceID(), s.StartTime(), s.EndTime())
			}
		}
	})
}

// FuzzDecodeFast holds the fast decoder to encoding/json: whatever it
// accepts, encoding/json accepts too and decodes to the same Result.
func FuzzDecodeFast(f *testing.F) {
	for _, pattern := range []string{"../examples/*.json", "../examples/invalid/*.json", "testdata/*.json", "testdata/fuzz/FuzzDecode/*"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			if strings.Contains(file, "testdata/fuzz/") {
				data = corpusBytes(data)
			}
			f.Add(data)
		}
	}
	for _, in := range goldenInputs {
		f.Add([]byte(in))
	}
	for _, in := range fastEdgeCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastDecode(t, data)
	})
}

// fastEdgeCases are messages on the fast decoder's edges: what it must
// decode as encoding/json does, and what it must leave to it.
var fastEdgeCases = []string{
	`{}`, `null`, `[]`, `{"id":"a"} x`, ` {"id":"a"} `, `{"id":"a"}{}`,
	`{"ID":"x","id":"y"}`, `{"id":"x","Id":"y"}`, `{"id":"x","id":"y"}`, `{"na\u006de":"x"}`, `{"\u212ad":"k"}`,
	`{"id":null,"steps":null,"metadata":null,"error":null,"input":null,"latency_ms":null,"version":null}`,
	`{"steps":[],"metadata":{},"input":{},"output":[]}`,
	`{"steps":[{"steps":[{"steps":[]}]},{}],"metadata":{"a":1,"a":2}}`,
	`{"latency_ms":1e400}`, `{"latency_ms":-0}`, `{"latency_ms":01}`, `{"latency_ms":1.}`, `{"latency_ms":"1"}`,
	`{"steps":[{"usage":{"input_tokens":1.0}}]}`, `{"steps":[{"usage":{"input_tokens":9223372036854775808}}]}`,
	`{"steps":[{"usage":{"input_tokens":-9223372036854775808,"output_tokens":0}}]}`,
	`{"version":"1"}`, `{"version":1.5e3}`, `{"id":"\u00e9"}`, "{\"id\":\"\xff\"}", "{\"id\":\"a\tb\"}",
	`{"input":"\ud800"}`, `{"input":"\x"}`, `{"input":[1,2,{"a":[true,false,null]}]}`, `{"input":tru}`,
	`{"unknown":{"deep":[1,"x",{"y":null}]},"id":"a"}`, `{"error":{"type":"t","message":"m","extra":1}}`,
	`{"error":"boom"}`, `{"metadata":{null:1}}`, `{"metadata":{"k":"v",}}`, `{"id":"a",}`, `{"id" "a"}`,
	"{\"id\":\"a\"}\n", "\t{\r\n\"id\" : \"a\" , \"name\":\"n\"\n}",
}

func TestFastDecodeEdgeCases(t *testing.T) {
	for _, in := range fastEdgeCases {
		checkFastDecode(t, []byte(in))
	}
	for _, in := range goldenInputs {
		checkFastDecode(t, []byte(in))
	}
}

// TestFastDecodeTakesTheUsualMessages checks that the fast path is taken
// for the examples: a fallback would be correct, only slow.
func TestFastDecodeTakesTheUsualMessages(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.json")
	more, _ := filepath.Glob("testdata/*.json")
	for _, file := range append(files, more...) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var r mapping.Result
		if !mapping.DecodeFast(data, &r) {
			t.Errorf("%s: left to encoding/json", file)
		}
	}
}

func checkFastDecode(t *testing.T, data []byte) {
	t.Helper()
	var fast mapping.Result
	if !mapping.DecodeFast(data, &fast) {
		return
	}
	var std mapping.Result
	if err := json.Unmarshal(data, &std); err != nil {
		t.Fatalf("%q: the fast decoder accepts what encoding/json refuses: %v", data, err)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("%q:\nfast %#v\njson %#v", data, fast, std)
	}
}

// corpusBytes extracts the []byte of a "go test fuzz v1" corpus file.
func corpusBytes(file []byte) []byte {
	for _, line := range strings.Split(string(file), "\n") {
		if v, ok := strings.CutPrefix(line, "[]byte("); ok {
			if s, err := strconv.Unquote(strings.TrimSuffix(v, ")")); err == nil {
				return []byte(s)
			}
		}
	}
	return nil
}
