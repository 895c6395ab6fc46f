package mapping_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/spanferry/spanferry/internal/benchdata"
	"github.com/spanferry/spanferry/mapping"
)

// schemaPath is the JSON Schema publishers validate against before
// publishing. These tests hold it to the mapping: whatever the schema
// accepts, Decode accepts (except for the rules a schema cannot express,
// which the schema's description names), and it describes every field.
const schemaPath = "../docs/workflow-result.schema.json"

// compileSchema compiles the schema as a strict 2020-12 validator would:
// with "format" asserted, as publishers' validators can be told to.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	sch, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	return sch
}

// schemaValid validates one message; a message that is not JSON is invalid.
func schemaValid(t *testing.T, sch *jsonschema.Schema, msg []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(msg))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// exampleMessages returns the messages of one example file: an object, or
// one per line of a .jsonl file.
func exampleMessages(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".jsonl") {
		return [][]byte{data}
	}
	var msgs [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			msgs = append(msgs, slices.Clone(line))
		}
	}
	return msgs
}

func TestSchemaAcceptsTheExamples(t *testing.T) {
	sch := compileSchema(t)
	m := newMapper(t)
	files, err := filepath.Glob("../examples/*.json*")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "testdata/contract-example.json")
	if len(files) < 5 {
		t.Fatalf("found only %v", files)
	}
	check := func(name string, msg []byte) {
		if err := schemaValid(t, sch, msg); err != nil {
			t.Errorf("%s: the schema refuses it: %v", name, err)
		}
		if _, err := m.Decode(msg, mapping.Source{Stored: stored}); err != nil {
			t.Errorf("%s: Decode refuses it: %v", name, err)
		}
	}
	for _, f := range files {
		for i, msg := range exampleMessages(t, f) {
			check(fmt.Sprintf("%s[%d]", f, i), msg)
		}
	}
	check("benchdata", benchdata.Result8Steps)
}

func TestSchemaRefusesTheInvalidExamples(t *testing.T) {
	sch := compileSchema(t)
	m := newMapper(t)
	files, err := filepath.Glob("../examples/invalid/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid examples: %v", err)
	}
	for _, f := range files {
		msg := exampleMessages(t, f)[0]
		if schemaValid(t, sch, msg) == nil {
			t.Errorf("%s: the schema accepts it", f)
		}
		if _, err := m.Decode(msg, mapping.Source{Stored: stored}); err == nil {
			t.Errorf("%s: Decode accepts it", f)
		}
	}
}

// TestSchemaAgreesWithDecode holds the schema to the mapping's validation
// on the edges of each rule: the schema's verdict is as expected, and a
// message the schema accepts is one Decode accepts, except the few rules
// no schema can express, which only Decode enforces.
func TestSchemaAgreesWithDecode(t *testing.T) {
	sch := compileSchema(t)
	m := newMapper(t)
	const (
		valid      = iota // both accept
		invalid           // both refuse
		decodeOnly        // the schema accepts, Decode refuses: a rule a schema cannot express
		schemaOnly        // Decode tolerates what publishers should not send
	)
	step := func(fields string) string { return `{"id":"r","name":"n","steps":[{"name":"s",` + fields + `}]}` }
	root := func(fields string) string { return `{"id":"r","name":"n",` + fields + `}` }
	cases := []struct {
		msg  string
		want int
	}{
		{`{"id":"r","name":"n"}`, valid},
		{`{"name":"n"}`, invalid},
		{`{"id":"r"}`, invalid},
		{`{"id":"","name":"n"}`, invalid},
		{`{"id":"r","name":""}`, invalid},
		{`{"id":7,"name":"n"}`, invalid},
		{`[{"id":"r","name":"n"}]`, invalid},
		{root(`"future_field":{"x":[1]}`), valid},

		{root(`"version":1`), valid},
		{root(`"version":1.3`), valid},
		{root(`"version":2`), invalid},
		{root(`"version":0`), invalid},
		{root(`"version":"one"`), invalid},
		{root(`"version":"1"`), schemaOnly},
		{root(`"version":1e0`), decodeOnly}, // a schema sees numbers, not how they are written

		{root(`"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`), valid},
		{root(`"trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736"`), invalid},
		{root(`"trace_id":"4bf92f3577b34da6a3ce929d0e0e473"`), invalid},
		{root(`"trace_id":"4bf92f3577b34da6a3ce929d0e0e47366"`), invalid},
		{root(`"trace_id":"00000000000000000000000000000000"`), invalid},

		{root(`"started_at":"2026-11-24T10:00:00Z"`), valid},
		{root(`"started_at":"2026-11-24T10:00:00.123456789Z"`), valid},
		{root(`"started_at":"2026-11-24T10:00:00.1+01:00"`), valid},
		{root(`"started_at":"2024-02-29T23:59:59-05:30"`), valid},
		{root(`"started_at":"2026-02-29T10:00:00Z"`), invalid},
		{root(`"started_at":"2026-13-01T10:00:00Z"`), invalid},
		{root(`"started_at":"2026-11-24T24:00:00Z"`), invalid},
		{root(`"started_at":"2026-11-24T10:00:00"`), invalid},
		{root(`"started_at":"2026-11-24 10:00:00Z"`), invalid},
		{root(`"started_at":"yesterday"`), invalid},
		{root(`"ended_at":1764000000`), invalid},
		{root(`"started_at":"2026-11-24T10:00:01Z","ended_at":"2026-11-24T10:00:00Z"`), decodeOnly},

		{root(`"latency_ms":0`), valid},
		{root(`"latency_ms":2350.25`), valid},
		{root(`"latency_ms":-1`), invalid},
		{root(`"latency_ms":1e300`), invalid},
		{root(`"latency_ms":"fast"`), invalid},

		{root(`"status":"whatever"`), valid},
		{root(`"status":3`), invalid},
		{root(`"error":{"type":"TimeoutError","message":"late"}`), valid},
		{root(`"error":"late"`), invalid},
		{root(`"error":{"message":5}`), invalid},
		{root(`"input":"text","output":[1,{"a":null}]`), valid},
		{root(`"organization":"acme","experiment_id":"e","customer_id":"c","thread_id":"t","service":"s"`), valid},
		{root(`"organization":1`), invalid},
		{root(`"customer_id":{}`), invalid},

		{root(`"metadata":{"plan":"pro","retries":2,"beta":true,"gone":null}`), valid},
		{root(`"metadata":{"plan":{"tier":"pro"}}`), invalid},
		{root(`"metadata":{"tags":[1]}`), invalid},
		{root(`"metadata":{"":"x"}`), invalid},
		{root(`"metadata":[]`), invalid},

		{root(`"steps":{"name":"s"}`), invalid},
		{root(`"steps":[{"kind":"llm"}]`), invalid},
		{root(`"steps":[{"name":5}]`), invalid},
		{root(`"steps":[{"name":"a"},{"name":"b","steps":[{"name":"c","steps":[{}]}]}]`), invalid},
		{root(`"steps":[{"id":"x","name":"a"},{"id":"x","name":"b"}]`), decodeOnly},
		{root(`"steps":[{"id":"x","name":"a","steps":[{"id":"x","name":"b"}]}]`), valid},

		{step(`"kind":"guardrail","model":"m","provider":"p","id":"s1"`), valid},
		{step(`"kind":7`), invalid},
		{step(`"span_id":"a3ce929d0e0e4736"`), valid},
		{step(`"span_id":"A3CE929D0E0E4736"`), invalid},
		{step(`"span_id":"a3ce929d0e0e473"`), invalid},
		{step(`"span_id":"0000000000000000"`), invalid},
		{step(`"usage":{"input_tokens":812,"output_tokens":0}`), valid},
		{step(`"usage":{"input_tokens":1.5}`), invalid},
		{step(`"usage":{"input_tokens":812.0}`), decodeOnly}, // likewise
		{step(`"usage":{"output_tokens":-3}`), invalid},
		{step(`"usage":{"input_tokens":"812"}`), invalid},
		{step(`"cost":0.00231`), valid},
		{step(`"cost":-0.1`), invalid},
		{step(`"cost":"0.1"`), invalid},
		{step(`"latency_ms":-1`), invalid},
		{step(`"ended_at":"2026-13-01T00:00:00Z"`), invalid},
		{step(`"metadata":{"k":{}}`), invalid},
		{step(`"status":"failed","error":{"type":"E"}`), valid},
	}
	for _, tc := range cases {
		schemaErr := schemaValid(t, sch, []byte(tc.msg))
		_, decodeErr := m.Decode([]byte(tc.msg), mapping.Source{Stored: stored})
		wantSchema := tc.want == valid || tc.want == decodeOnly
		wantDecode := tc.want == valid || tc.want == schemaOnly
		if (schemaErr == nil) != wantSchema {
			t.Errorf("%s: schema accepts: %v, want %v (%v)", tc.msg, schemaErr == nil, wantSchema, schemaErr)
		}
		if (decodeErr == nil) != wantDecode {
			t.Errorf("%s: Decode accepts: %v, want %v (%v)", tc.msg, decodeErr == nil, wantDecode, decodeErr)
		}
	}
}

// TestSchemaDescribesEveryField checks, by reflection over the json tags,
// that the schema names every field the mapping reads, at the level it
// reads it, and no field the mapping does not read.
func TestSchemaDescribesEveryField(t *testing.T) {
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	lookup := func(path ...string) map[string]any {
		var v any = doc
		for _, p := range path {
			v = v.(map[string]any)[p]
			if v == nil {
				t.Fatalf("schema has no %s", strings.Join(path, "/"))
			}
		}
		return v.(map[string]any)
	}
	for _, tc := range []struct {
		typ  reflect.Type
		path []string
	}{
		{reflect.TypeFor[mapping.Result](), []string{"properties"}},
		{reflect.TypeFor[mapping.Step](), []string{"$defs", "step", "properties"}},
		{reflect.TypeFor[mapping.ErrorInfo](), []string{"$defs", "error", "properties"}},
		{reflect.TypeFor[mapping.Usage](), []string{"$defs", "step", "properties", "usage", "properties"}},
	} {
		props := lookup(tc.path...)
		fields := jsonFields(tc.typ)
		for _, f := range fields {
			if _, ok := props[f]; !ok {
				t.Errorf("%s.%s (json %q) is not in the schema's %s", tc.typ.Name(), f, f, strings.Join(tc.path, "/"))
			}
		}
		for p := range props {
			if !slices.Contains(fields, p) {
				t.Errorf("the schema's %s has %q, which %s does not read", strings.Join(tc.path, "/"), p, tc.typ.Name())
			}
		}
	}
	if reqd := lookup("$defs", "step")["required"]; !reflect.DeepEqual(reqd, []any{"name"}) {
		t.Errorf("a step requires %v, want [name]", reqd)
	}
	if reqd := doc["required"]; !reflect.DeepEqual(reqd, []any{"id", "name"}) {
		t.Errorf("a result requires %v, want [id name]", reqd)
	}
}

// jsonFields returns the JSON names of a struct's fields, those of its
// embedded structs (Execution) included, as encoding/json flattens them.
func jsonFields(typ reflect.Type) []string {
	var names []string
	for f := range typ.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tag == "-" || !f.IsExported():
		case f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct:
			names = append(names, jsonFields(f.Type)...)
		case tag != "":
			names = append(names, tag)
		default:
			names = append(names, f.Name)
		}
	}
	return names
}

// FuzzSchemaImpliesDecode looks for messages the schema accepts and Decode
// refuses, other than for the rules the schema's description says it cannot
// express: go test -run '^$' -fuzz FuzzSchemaImpliesDecode ./mapping/
func FuzzSchemaImpliesDecode(f *testing.F) {
	files, _ := filepath.Glob("../examples/*.json*")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			f.Add(line)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"id":"r","name":"n","started_at":"2026-11-24T10:00:00.5+01:00","latency_ms":1,"steps":[{"name":"s","usage":{"input_tokens":1}}]}`))
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(schemaPath)
	if err != nil {
		f.Fatal(err)
	}
	m, err := mapping.New()
	if err != nil {
		f.Fatal(err)
	}
	inexpressible := []string{"duplicates steps[", "is before started_at", "got number"}
	known := map[string]bool{}
	for _, typ := range []reflect.Type{reflect.TypeFor[mapping.Result](), reflect.TypeFor[mapping.Step](), reflect.TypeFor[mapping.ErrorInfo](), reflect.TypeFor[mapping.Usage]()} {
		for _, name := range jsonFields(typ) {
			known[name] = true
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(msg))
		if err != nil || sch.Validate(v) != nil || otherCase(v, known) || duplicateKeys(msg) {
			return
		}
		_, err = m.Decode(msg, mapping.Source{Stored: stored})
		if err == nil || errors.Is(err, mapping.ErrTooLarge) {
			return
		}
		for _, s := range inexpressible {
			if strings.Contains(err.Error(), s) {
				return
			}
		}
		if strings.HasPrefix(err.Error(), "version: unsupported version ") && strings.ContainsAny(err.Error(), "eE") {
			return // 1e0: a whole number not written as one
		}
		t.Fatalf("the schema accepts what Decode refuses: %v\n%s", err, msg)
	})
}

// otherCase reports whether v has a key that is a field's name in another
// case ("Latency_MS"): the schema knows field names exactly, and an unknown
// key is allowed; encoding/json, which Decode uses, also matches the field
// in any case.
func otherCase(v any, known map[string]bool) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if lower := strings.ToLower(k); lower != k && known[lower] || otherCase(e, known) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if otherCase(e, known) {
				return true
			}
		}
	}
	return false
}

// duplicateKeys reports whether an object of msg has a key twice. JSON
// leaves their meaning open: the schema's validator sees the last value,
// encoding/json decodes each in turn and may refuse the first.
func duplicateKeys(msg []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(msg))
	type frame struct {
		keys     map[string]bool
		wantsKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && top.keys != nil {
				top.wantsKey = true
			}
			stack = append(stack, &frame{keys: map[string]bool{}, wantsKey: true})
			continue
		case json.Delim('['):
			if top != nil && top.keys != nil {
				top.wantsKey = true
			}
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			continue
		}
		if top == nil || top.keys == nil {
			continue
		}
		if top.wantsKey {
			k := tok.(string)
			if top.keys[k] {
				return true
			}
			top.keys[k] = true
			top.wantsKey = false
		} else {
			top.wantsKey = true
		}
	}
}
