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

// FuzzDecodeFast holds the fast decoder to encoding/json, the reference:
// whatever the fast path accepts, encoding/json accepts and decodes to the
// same Result; and Decode (fast path, then encoding/json) returns what
// Decode with encoding/json alone does: the same Decoded, or the same
// error, field path and text included.
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
	m := newMapper(f, mapping.WithLimits(mapping.Limits{MaxAttrValueLen: 16}))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastDecode(t, data)
		checkDecodeAsStd(t, m, data)
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
	`{"id":"r","name":"n","usage":{"input_tokens":1},"steps":[{"name":"s","Usage":{"input_tokens":2},"usage":{"output_tokens":3}}]}`,
	`{"id":"r","name":"n","steps":[{"name":"s","usage":{"input_tokens":1}},{"name":"t","usage":{"input_tokens":1},"usage":{"output_tokens":2}}]}`,
	`{"id":"r","name":"n","STEPS":[{"NAME":"s"}],"Metadata":{"a":1},"metadata":{"b":2}}`,
	`{"id":"r","name":"n","ſervice":"long s","ſteps":[{"name":"x"}]}`,
	`{"id":"r","name":"n","error":{"type":"a"},"error":{"message":"b"}}`,
}

func TestFastDecodeEdgeCases(t *testing.T) {
	m := newMapper(t)
	for _, in := range append(fastEdgeCases, goldenInputs...) {
		checkFastDecode(t, []byte(in))
		checkDecodeAsStd(t, m, []byte(in))
	}
}

// TestDecodeKeysAsEncodingJSON checks that duplicate keys and keys spelled
// in another case decode as encoding/json decodes them (the last of
// duplicates wins, objects merge, case-insensitive matching): the fast
// path leaves such messages to encoding/json.
func TestDecodeKeysAsEncodingJSON(t *testing.T) {
	m := newMapper(t)
	for _, tc := range []struct {
		in    string
		check func(r mapping.Result) bool
	}{
		{`{"id":"a","id":"b","name":"n"}`, func(r mapping.Result) bool { return r.ID == "b" }},
		{`{"ID":"a","name":"n"}`, func(r mapping.Result) bool { return r.ID == "a" }},
		{`{"id":"a","NAME":"n","Name":"m"}`, func(r mapping.Result) bool { return r.Name == "m" }},
		{`{"id":"a","name":"n","Steps":[{"Name":"s","KIND":"llm"}]}`, func(r mapping.Result) bool {
			return len(r.Steps) == 1 && r.Steps[0].Name == "s" && r.Steps[0].Kind == "llm"
		}},
		{`{"id":"a","name":"n","steps":[{"name":"s","usage":{"input_tokens":1},"usage":{"output_tokens":2}}]}`, func(r mapping.Result) bool {
			u := r.Steps[0].Usage
			return u.InputTokens != nil && *u.InputTokens == 1 && u.OutputTokens != nil && *u.OutputTokens == 2
		}},
		{`{"id":"a","name":"n","metadata":{"k":1,"k":2}}`, func(r mapping.Result) bool { return string(r.Metadata["k"]) == "2" }},
		{`{"id":"a","name":"n","ſervice":"s"}`, func(r mapping.Result) bool { return r.Service == "s" }}, // U+017F folds to s
	} {
		d, err := m.Decode([]byte(tc.in), mapping.Source{Stored: stored})
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if !tc.check(d.Result) {
			t.Errorf("%s: decoded %+v", tc.in, d.Result)
		}
		checkDecodeAsStd(t, m, []byte(tc.in))
	}
}

// TestFastDecodeTakesTheUsualMessages checks that the fast path is taken
// for the examples: a fallback would be correct, only slow.
func TestFastDecodeTakesTheUsualMessages(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.json")
	more, _ := filepath.Glob("testdata/*.json")
	bench, _ := filepath.Glob("../internal/benchdata/*.json")
	for _, file := range append(append(files, more...), bench...) {
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

// checkFastDecode: whatever the fast path accepts, encoding/json decodes
// to the same Result.
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
	// Step arrays cut from a slab, as once Decodeds are recycled: from a
	// fresh one, and from one with some of its room used already.
	for _, slab := range [][]mapping.Step{nil, make([]mapping.Step, 3, 5)} {
		var cut mapping.Result
		if !mapping.DecodeFastSlab(data, &cut, &slab) {
			t.Fatalf("%q: the fast decoder refuses with a slab what it takes without", data)
		}
		if !reflect.DeepEqual(cut, std) {
			t.Fatalf("%q:\nfast, slab %#v\njson %#v", data, cut, std)
		}
	}
}

// checkDecodeAsStd: Decode returns what Decode with encoding/json alone
// returns, errors included.
func checkDecodeAsStd(t *testing.T, m *mapping.Mapper, data []byte) {
	t.Helper()
	src := mapping.Source{Stored: stored, Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	got, gotErr := m.Decode(data, src)
	want, wantErr := mapping.DecodeStd(m, data, src)
	if (gotErr != nil) != (wantErr != nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%q: Decode: %v; with encoding/json alone: %v", data, gotErr, wantErr)
	}
	if gotErr == nil && !reflect.DeepEqual(mapping.WithoutSlab(got), mapping.WithoutSlab(want)) {
		t.Fatalf("%q:\nDecode %#v\nencoding/json alone %#v", data, got, want)
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
