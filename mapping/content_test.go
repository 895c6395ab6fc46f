package mapping_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/spanferry/spanferry/mapping"
)

// everything but the content: what capture off must leave unchanged.
func withoutContent(spans map[string]sdktrace.ReadOnlySpan) map[string]map[attribute.Key]attribute.Value {
	out := map[string]map[attribute.Key]attribute.Value{}
	for name, s := range spans {
		a := attrs(s)
		delete(a, mapping.AttrTraceloopEntityInput)
		delete(a, mapping.AttrTraceloopEntityOutput)
		out[name] = a
	}
	return out
}

func TestCaptureContentOffDropsInputAndOutputOnly(t *testing.T) {
	on, _ := mapJSON(t, newMapper(t), fullResult, mapping.Source{})
	off, _ := mapJSON(t, newMapper(t, mapping.WithCaptureContent(func(string) bool { return false })), fullResult, mapping.Source{})

	// fullResult has input and output on the root and on a step.
	if _, ok := attrs(on["search"])[mapping.AttrTraceloopEntityInput]; !ok {
		t.Fatal("the reference mapping has no input on step search")
	}
	for name, s := range off {
		for _, kv := range s.Attributes() {
			if kv.Key == mapping.AttrTraceloopEntityInput || kv.Key == mapping.AttrTraceloopEntityOutput {
				t.Errorf("span %s carries %s with capture off", name, kv.Key)
			}
		}
		ref := on[name]
		if !s.SpanContext().Equal(ref.SpanContext()) || !s.Parent().Equal(ref.Parent()) || s.StartTime() != ref.StartTime() ||
			s.EndTime() != ref.EndTime() || s.Status() != ref.Status() || !reflect.DeepEqual(s.Events(), ref.Events()) {
			t.Errorf("span %s differs beyond its content", name)
		}
	}
	if a, b := withoutContent(on), withoutContent(off); !reflect.DeepEqual(a, b) {
		t.Errorf("attributes besides the content differ:\n on: %v\noff: %v", a, b)
	}
}

func TestCaptureContentIsAskedOncePerResultWithItsOrganization(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	m := newMapper(t, mapping.WithCaptureContent(func(org string) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, org)
		return org != "acme"
	}))
	acme, _ := mapJSON(t, m, fullResult, mapping.Source{})
	other, _ := mapJSON(t, m, `{"id":"r","name":"wf","input":"hello","steps":[{"name":"s","output":"bye"}]}`, mapping.Source{})
	if want := []string{"acme", ""}; !reflect.DeepEqual(asked, want) {
		t.Errorf("capture asked for %q, want %q (once per result)", asked, want)
	}
	if _, ok := attrs(acme["support-agent"])[mapping.AttrTraceloopEntityInput]; ok {
		t.Error("acme's content was captured")
	}
	if v := attrs(other["wf"])[mapping.AttrTraceloopEntityInput]; v.AsString() != `"hello"` {
		t.Errorf("the other result's input = %q", v.AsString())
	}
	if v := attrs(other["s"])[mapping.AttrTraceloopEntityOutput]; v.AsString() != `"bye"` {
		t.Errorf("the other result's step output = %q", v.AsString())
	}
}

func mustRedactor(t testing.TB, rules ...mapping.RedactRule) *mapping.Redactor {
	t.Helper()
	r, err := mapping.NewRedactor(rules...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var emailRule = mapping.RedactRule{Name: "mail", Pattern: `[a-z]+@[a-z]+\.com`, Replace: "[email]"}

func TestRedactionReachesEveryContentValueAndNoId(t *testing.T) {
	const e = "ann@example.com"
	msg := `{
	  "id": "` + e + `", "name": "` + e + `", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
	  "organization": "` + e + `", "experiment_id": "` + e + `", "customer_id": "` + e + `", "thread_id": "` + e + `",
	  "service": "` + e + `", "status": "failed",
	  "started_at": "2026-11-24T10:00:00Z", "latency_ms": 5,
	  "error": {"type": "` + e + `", "message": "mail to ` + e + ` bounced"},
	  "input": {"` + e + `": "from ` + e + `", "list": ["` + e + `", 1, true, null, {"k": "x\u0040y.com \u00e9 \"q\""}]},
	  "output": "` + e + `",
	  "metadata": {"contact": "` + e + `", "n": 42},
	  "steps": [{"id": "` + e + `", "name": "step ` + e + `", "kind": "` + e + `", "model": "` + e + `", "provider": "` + e + `",
	             "input": "` + e + `", "metadata": {"who": "` + e + `"}}]
	}`
	m := newMapper(t, mapping.WithRedactor(mustRedactor(t, emailRule)))
	spans, st := mapJSON(t, m, msg, mapping.Source{})
	root, step := attrs(spans[e]), attrs(spans["step "+e])

	str := attribute.StringValue
	want := map[attribute.Key]attribute.Value{
		mapping.AttrTraceloopEntityInput:                       str(`{"` + e + `": "from [email]", "list": ["[email]", 1, true, null, {"k": "[email] é \"q\""}]}`),
		mapping.AttrTraceloopEntityOutput:                      str(`"[email]"`),
		mapping.AttrKeywordsAIMetadataPrefix + "contact":       str("[email]"),
		mapping.AttrKeywordsAIMetadataPrefix + "n":             attribute.Int64Value(42),
		mapping.AttrResultID:                                   str(e),
		mapping.AttrTraceloopEntityName:                        str(e),
		mapping.AttrTraceloopWorkflowName:                      str(e),
		mapping.AttrKeywordsAICustomer:                         str(e),
		mapping.AttrKeywordsAIThread:                           str(e),
		mapping.AttrKeywordsAIMetadataPrefix + "organization":  str(e),
		mapping.AttrKeywordsAIMetadataPrefix + "experiment_id": str(e),
	}
	for k, v := range want {
		if root[k] != v {
			t.Errorf("root %s = %q, want %q", k, root[k].Emit(), v.Emit())
		}
	}
	if !json.Valid([]byte(root[mapping.AttrTraceloopEntityInput].AsString())) {
		t.Error("the redacted input is not valid JSON")
	}
	for k, v := range map[attribute.Key]attribute.Value{
		mapping.AttrTraceloopEntityInput:             str(`"[email]"`),
		mapping.AttrKeywordsAIMetadataPrefix + "who": str("[email]"),
		mapping.AttrStepID:                           str(e),
		mapping.AttrTraceloopEntityName:              str("step " + e),
		mapping.AttrStepKind:                         str(e),
		mapping.AttrGenAIRequestModel:                str(e),
		mapping.AttrGenAIProviderName:                str(e),
	} {
		if step[k] != v {
			t.Errorf("step %s = %q, want %q", k, step[k].Emit(), v.Emit())
		}
	}
	s := spans[e]
	if got := s.Status().Description; got != "mail to [email] bounced" {
		t.Errorf("status description %q", got)
	}
	ev := map[attribute.Key]string{}
	for _, kv := range s.Events()[0].Attributes {
		ev[kv.Key] = kv.Value.AsString()
	}
	if ev[semconv.ExceptionMessageKey] != "mail to [email] bounced" || ev[semconv.ExceptionTypeKey] != e {
		t.Errorf("exception event %v", ev)
	}
	if sn, _ := s.Resource().Set().Value(semconv.ServiceNameKey); sn.AsString() != e {
		t.Errorf("service.name %q was redacted", sn.AsString())
	}
	// input 3 (the key is not counted), output 1, error 1, metadata 1; the
	// step's input and metadata 2.
	if want := map[string]int{"mail": 8}; !maps.Equal(st.Redactions, want) {
		t.Errorf("Stats.Redactions = %v, want %v", st.Redactions, want)
	}
}

func TestRedactionNeverMatchesAcrossTheJSONSyntax(t *testing.T) {
	// In the raw text `["a", "b"]` a pattern may match `", "`: it must not,
	// since it would turn two strings into one (or break the JSON).
	r := mustRedactor(t,
		mapping.RedactRule{Name: "across", Pattern: `a", "b`, Replace: "X"},
		mapping.RedactRule{Name: "key", Pattern: `secret`, Replace: `"quoted" \ back`},
	)
	m := newMapper(t, mapping.WithRedactor(r))
	spans, st := mapJSON(t, m, `{"id":"r","name":"wf","input":["a", "b"],"output":{"secret":"a secret"}}`, mapping.Source{})
	a := attrs(spans["wf"])
	if got := a[mapping.AttrTraceloopEntityInput].AsString(); got != `["a", "b"]` {
		t.Errorf("input %s", got)
	}
	out := a[mapping.AttrTraceloopEntityOutput].AsString()
	if out != `{"secret":"a \"quoted\" \\ back"}` {
		t.Errorf("output %s", out)
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); err != nil || v["secret"] != `a "quoted" \ back` {
		t.Errorf("output does not decode to the replaced value: %v %v", v, err)
	}
	if want := map[string]int{"key": 1}; !maps.Equal(st.Redactions, want) {
		t.Errorf("Stats.Redactions = %v", st.Redactions)
	}
}

func TestRedactionComesBeforeTruncation(t *testing.T) {
	long := strings.Repeat("x", 40) + "@example.com"
	m := newMapper(t,
		mapping.WithLimits(mapping.Limits{MaxAttrValueLen: 20}),
		mapping.WithRedactor(mustRedactor(t, mapping.RedactRule{Name: "mail", Pattern: `x+@example\.com`, Replace: "[email]"})))
	spans, st := mapJSON(t, m, `{"id":"r","name":"wf","input":"`+long+`","metadata":{"m":"`+long+`"}}`, mapping.Source{})
	a := attrs(spans["wf"])
	// Truncated first, neither would match any more, and the address's
	// first 20 characters would be exported.
	if got := a[mapping.AttrTraceloopEntityInput].AsString(); got != `"[email]"` {
		t.Errorf("input %q", got)
	}
	if got := a[mapping.AttrKeywordsAIMetadataPrefix+"m"].AsString(); got != "[email]" {
		t.Errorf("metadata %q", got)
	}
	if st.Truncations != 0 || st.Redactions["mail"] != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestRedactionAppliesWithCaptureOff(t *testing.T) {
	m := newMapper(t,
		mapping.WithCaptureContent(func(string) bool { return false }),
		mapping.WithRedactor(mustRedactor(t, emailRule)))
	spans, st := mapJSON(t, m, `{"id":"r","name":"wf","status":"failed","error":{"message":"to ann@example.com"},"input":"ann@example.com","metadata":{"m":"bob@example.com"}}`, mapping.Source{})
	a := attrs(spans["wf"])
	if _, ok := a[mapping.AttrTraceloopEntityInput]; ok {
		t.Error("input exported with capture off")
	}
	if got := a[mapping.AttrKeywordsAIMetadataPrefix+"m"].AsString(); got != "[email]" {
		t.Errorf("metadata %q", got)
	}
	if got := spans["wf"].Status().Description; got != "to [email]" {
		t.Errorf("status %q", got)
	}
	// Only what is exported is counted: the input was not.
	if st.Redactions["mail"] != 2 {
		t.Errorf("Stats.Redactions = %v", st.Redactions)
	}
}

func TestNoRedactorLeavesStatsEmpty(t *testing.T) {
	_, st := mapJSON(t, newMapper(t), fullResult, mapping.Source{})
	if st.Redactions != nil {
		t.Errorf("Stats.Redactions = %v without rules", st.Redactions)
	}
	_, st = mapJSON(t, newMapper(t, mapping.WithRedactor(mustRedactor(t, emailRule))), fullResult, mapping.Source{})
	if st.Redactions != nil {
		t.Errorf("Stats.Redactions = %v with nothing to redact", st.Redactions)
	}
}

// TestRedactionIsSafeForConcurrentMaps maps results on one Mapper from
// several goroutines (run it with -race): rules and the capture switch are
// shared, every Map's buffers and counts its own.
func TestRedactionIsSafeForConcurrentMaps(t *testing.T) {
	m := newMapper(t,
		mapping.WithCaptureContent(func(org string) bool { return org != "quiet" }),
		mapping.WithRedactor(mustRedactor(t, emailRule)))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				org := "loud"
				if i%2 == 0 {
					org = "quiet"
				}
				msg := fmt.Sprintf(`{"id":"r%d-%d","name":"wf","organization":%q,"input":{"to":"ann@example.com","n":%d},"metadata":{"m":"bob@example.com"}}`, g, i, org, i)
				spans, st := mapJSON(t, m, msg, mapping.Source{})
				a := attrs(spans["wf"])
				in, has := a[mapping.AttrTraceloopEntityInput]
				switch {
				case org == "quiet" && has:
					t.Errorf("%s: input captured", org)
				case org == "loud" && in.AsString() != fmt.Sprintf(`{"to":"[email]","n":%d}`, i):
					t.Errorf("input %q", in.AsString())
				}
				if want := 1 + map[string]int{"loud": 1}[org]; st.Redactions["mail"] != want {
					t.Errorf("%s: %d redactions, want %d", org, st.Redactions["mail"], want)
				}
			}
		})
	}
	wg.Wait()
}
