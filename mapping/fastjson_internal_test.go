package mapping

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestFastDecoderKnowsEveryField reflects over the json tags of the
// schema's structs: a field added to Result, Step, Execution, ErrorInfo or
// Usage that the fast decoder does not decode would be dropped silently
// (the fast path skips unknown keys), so this fails until it learns it.
func TestFastDecoderKnowsEveryField(t *testing.T) {
	for _, tc := range []struct {
		typ  reflect.Type
		keys []string
	}{
		{reflect.TypeFor[Result](), resultKeys},
		{reflect.TypeFor[Step](), stepKeys},
		{reflect.TypeFor[ErrorInfo](), errorKeys},
		{reflect.TypeFor[Usage](), usageKeys},
	} {
		want := jsonKeys(tc.typ)
		got := slices.Sorted(slices.Values(tc.keys))
		if !slices.Equal(got, want) {
			t.Errorf("%s: the fast decoder knows %v, the struct's json tags are %v", tc.typ.Name(), got, want)
		}
	}
	// Execution is decoded by execution() for both: its keys must be in both lists.
	for _, k := range jsonKeys(reflect.TypeFor[Execution]()) {
		if !slices.Contains(resultKeys, k) || !slices.Contains(stepKeys, k) {
			t.Errorf("Execution's %q is unknown to the fast decoder", k)
		}
	}
}

// jsonKeys returns the JSON keys encoding/json decodes into a struct of
// type typ, embedded structs' fields included, sorted.
func jsonKeys(typ reflect.Type) []string {
	var keys []string
	for f := range typ.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tag == "-":
		case f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct:
			keys = append(keys, jsonKeys(f.Type)...)
		case !f.IsExported():
		case tag == "":
			keys = append(keys, f.Name)
		default:
			keys = append(keys, tag)
		}
	}
	slices.Sort(keys)
	return keys
}
