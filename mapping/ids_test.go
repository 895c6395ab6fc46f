package mapping_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/spanferry/spanferry/mapping"
)

// The README documents these derivations; this test recomputes them from
// that description, so a change to either is caught.
func TestDerivedIDsFollowTheDocumentedFormula(t *testing.T) {
	sum := sha256.Sum256([]byte("spanferry.trace.v1\x00run_42"))
	wantTrace := hex.EncodeToString(sum[:16])
	if got := mapping.DeriveTraceID("run_42").String(); got != wantTrace {
		t.Fatalf("trace id %s, want %s", got, wantTrace)
	}
	// Golden value: replays depend on it never changing.
	if wantTrace != "f43be7f9c2ebafcbab0dfee1ad523e46" {
		t.Fatalf("derived trace id changed: %s", wantTrace)
	}

	spans, _ := mapJSON(t, newMapper(t), `{"id":"run_42","name":"root","steps":[
		{"id":"plan","name":"a","steps":[{"name":"b"}]}]}`, mapping.Source{})
	tid, _ := trace.TraceIDFromHex(wantTrace)
	prefix := append([]byte("spanferry.span.v1\x00"), tid[:]...)
	prefix = binary.AppendUvarint(prefix, uint64(len("run_42")))
	prefix = append(prefix, "run_42"...)
	spanID := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:8]) }

	rootWant := spanID(prefix)
	aPath := append(append(append([]byte{}, prefix...), 's', 4), "plan"...)
	aWant := spanID(aPath)
	bWant := spanID(append(append([]byte{}, aPath...), 'i', 0))
	for name, want := range map[string]string{"root": rootWant, "a": aWant, "b": bWant} {
		if got := spans[name].SpanContext().SpanID().String(); got != want {
			t.Errorf("%s span id %s, want %s", name, got, want)
		}
		if got := spans[name].SpanContext().TraceID().String(); got != wantTrace {
			t.Errorf("%s trace id %s, want %s", name, got, wantTrace)
		}
	}
}

func TestSameInputSameIDs(t *testing.T) {
	ids := func() map[string]string {
		spans, _ := mapJSON(t, newMapper(t), fullResult, mapping.Source{})
		out := map[string]string{}
		for name, s := range spans {
			out[name] = s.SpanContext().TraceID().String() + "/" + s.SpanContext().SpanID().String() + "/" + s.Parent().SpanID().String()
		}
		return out
	}
	first, second := ids(), ids()
	seen := map[string]string{}
	for name, id := range first {
		if second[name] != id {
			t.Errorf("%s: %s then %s", name, id, second[name])
		}
		if other, dup := seen[id[33:49]]; dup {
			t.Errorf("%s and %s share span id %s", name, other, id[33:49])
		}
		seen[id[33:49]] = name
	}
}

func TestStepPathsGiveDistinctIDs(t *testing.T) {
	m := newMapper(t)
	get := func(msg string) map[string]trace.SpanID {
		spans, _ := mapJSON(t, m, msg, mapping.Source{})
		out := map[string]trace.SpanID{}
		for n, s := range spans {
			out[n] = s.SpanContext().SpanID()
		}
		return out
	}
	base := get(`{"id":"r","name":"root","steps":[{"id":"x","name":"a"},{"name":"b"},{"name":"c"}]}`)
	// Appending a step keeps the ids of the steps before it.
	more := get(`{"id":"r","name":"root","steps":[{"id":"x","name":"a"},{"name":"b"},{"name":"c"},{"name":"d"}]}`)
	for _, n := range []string{"root", "a", "b", "c"} {
		if base[n] != more[n] {
			t.Errorf("%s changed when a later step was added", n)
		}
	}
	// A step's id, not its name or position, identifies it when given.
	moved := get(`{"id":"r","name":"root","steps":[{"name":"b"},{"id":"x","name":"a"}]}`)
	if moved["a"] != base["a"] {
		t.Error("a step with an id changed span id when it moved")
	}
	if moved["b"] == base["b"] {
		t.Error("a step without an id is identified by its index: moving it must change its span id")
	}
	// The same id under another parent is another span.
	nested := get(`{"id":"r","name":"root","steps":[{"id":"p","name":"p","steps":[{"id":"x","name":"a"}]}]}`)
	if nested["a"] == base["a"] {
		t.Error("same step id under another parent gave the same span id")
	}
	// Another result id is another trace and other spans.
	other := get(`{"id":"r2","name":"root","steps":[{"id":"x","name":"a"},{"name":"b"},{"name":"c"}]}`)
	if other["a"] == base["a"] || other["root"] == base["root"] {
		t.Error("another result id gave the same span ids")
	}
	// An index is not confused with an id of the same digits.
	digits := get(`{"id":"r","name":"root","steps":[{"id":"0","name":"zero"},{"name":"b"}]}`)
	indexed := get(`{"id":"r","name":"root","steps":[{"name":"zero"}]}`)
	if digits["zero"] == indexed["zero"] {
		t.Error(`step id "0" and index 0 gave the same span id`)
	}
}

func TestTraceIdentity(t *testing.T) {
	const bodyTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	const header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	m := newMapper(t)
	cases := []struct {
		name, msg, traceparent string
		trace, parentSpan      string
	}{
		{"trace_id from the body", `{"id":"r","name":"root","trace_id":"` + bodyTrace + `"}`, "", bodyTrace, ""},
		{"body wins over traceparent", `{"id":"r","name":"root","trace_id":"` + bodyTrace + `"}`, header, bodyTrace, ""},
		{"traceparent continues a remote trace", `{"id":"r","name":"root"}`, header, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"},
		{"bad traceparent falls back to the derived id", `{"id":"r","name":"root"}`, "00-zz-yy-01", mapping.DeriveTraceID("r").String(), ""},
		{"derived from id", `{"id":"r","name":"root"}`, "", mapping.DeriveTraceID("r").String(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spans, _ := mapJSON(t, m, tc.msg, mapping.Source{Traceparent: tc.traceparent})
			root := spans["root"]
			if got := root.SpanContext().TraceID().String(); got != tc.trace {
				t.Errorf("trace %s, want %s", got, tc.trace)
			}
			if tc.parentSpan == "" {
				if root.Parent().IsValid() {
					t.Errorf("unexpected parent %s", root.Parent().SpanID())
				}
				return
			}
			if root.Parent().SpanID().String() != tc.parentSpan || !root.Parent().IsRemote() {
				t.Errorf("parent %s remote=%v, want remote %s", root.Parent().SpanID(), root.Parent().IsRemote(), tc.parentSpan)
			}
		})
	}
}

func TestExplicitSpanID(t *testing.T) {
	spans, _ := mapJSON(t, newMapper(t), `{"id":"r","name":"root","steps":[{"name":"a","span_id":"00f067aa0ba902b7","steps":[{"name":"b"}]}]}`, mapping.Source{})
	if got := spans["a"].SpanContext().SpanID().String(); got != "00f067aa0ba902b7" {
		t.Fatalf("span id %s", got)
	}
	if spans["b"].Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Fatal("child not under the explicit span id")
	}
}
