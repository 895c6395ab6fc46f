package mapping_test

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanferry/spanferry/mapping"
)

const fullResult = `{
  "version": 1, "id": "run_1", "name": "support-agent", "service": "backend-workflows",
  "started_at": "2026-11-24T10:00:00Z", "ended_at": "2026-11-24T10:00:02.35Z",
  "status": "failed", "error": {"type": "TimeoutError", "message": "step timed out"},
  "input": {"question": "where is my order?"}, "output": {"answer": "it ships today"},
  "organization": "acme", "experiment_id": "exp-123", "customer_id": "cust-42", "thread_id": "thread-7",
  "metadata": {"plan": "pro", "retries": 2, "ratio": 0.5, "beta": true, "none": null},
  "steps": [
    {"id": "s1", "name": "plan", "kind": "agent", "latency_ms": 10, "steps": [
      {"id": "s1a", "name": "search", "kind": "tool", "input": "where is my order?", "output": ["doc-1"], "latency_ms": 5, "steps": [
        {"name": "lookup", "kind": "retriever", "latency_ms": 1}
      ]}
    ]},
    {"id": "s2", "name": "answer", "kind": "llm", "model": "gpt-4o", "provider": "openai",
     "usage": {"input_tokens": 812, "output_tokens": 64}, "cost": 0.00231, "latency_ms": 900,
     "metadata": {"temperature": 0.2}},
    {"id": "s3", "name": "embed", "kind": "embedding", "model": "text-embedding-3-small", "latency_ms": 3},
    {"id": "s4", "name": "sub", "kind": "workflow", "latency_ms": 3},
    {"id": "s5", "name": "rerank", "kind": "reranker", "latency_ms": 3},
    {"id": "s6", "name": "plain", "latency_ms": 3, "status": "cancelled"},
    {"id": "s7", "name": "broken", "status": "error", "latency_ms": 3},
    {"id": "s8", "name": "crashed", "status": "failed", "error": {"type": "ValueError", "message": "bad tool args"}, "latency_ms": 3}
  ]
}`

func TestAttributeFamilies(t *testing.T) {
	spans, _ := mapJSON(t, newMapper(t), fullResult, mapping.Source{})
	str := attribute.StringValue
	cases := []struct {
		span string
		want map[attribute.Key]attribute.Value
		none []attribute.Key
	}{{
		span: "support-agent",
		want: map[attribute.Key]attribute.Value{
			"traceloop.span.kind": str("workflow"), "gen_ai.operation.name": str("invoke_workflow"),
			"traceloop.entity.name": str("support-agent"), "traceloop.workflow.name": str("support-agent"),
			"traceloop.entity.input":                         str(`{"question": "where is my order?"}`),
			"traceloop.entity.output":                        str(`{"answer": "it ships today"}`),
			"keywordsai.customer_params.customer_identifier": str("cust-42"),
			"keywordsai.threads.thread_identifier":           str("thread-7"),
			"keywordsai.metadata.organization":               str("acme"),
			"keywordsai.metadata.experiment_id":              str("exp-123"),
			"keywordsai.metadata.plan":                       str("pro"),
			"keywordsai.metadata.retries":                    attribute.Int64Value(2),
			"keywordsai.metadata.ratio":                      attribute.Float64Value(0.5),
			"keywordsai.metadata.beta":                       attribute.BoolValue(true),
			"spanferry.result.id":                            str("run_1"), "spanferry.status": str("failed"),
		},
		none: []attribute.Key{"keywordsai.metadata.none", "spanferry.step.id", "spanferry.step.kind"},
	}, {
		span: "plan",
		want: map[attribute.Key]attribute.Value{"traceloop.span.kind": str("agent"), "spanferry.step.kind": str("agent"),
			"gen_ai.operation.name": str("invoke_agent"), "traceloop.entity.path": str(""),
			"traceloop.workflow.name": str("support-agent"), "spanferry.step.id": str("s1"), "spanferry.status": str("completed")},
	}, {
		span: "search",
		want: map[attribute.Key]attribute.Value{"traceloop.span.kind": str("tool"), "traceloop.entity.path": str("plan"),
			"gen_ai.operation.name":  str("execute_tool"),
			"traceloop.entity.input": str(`"where is my order?"`), "traceloop.entity.output": str(`["doc-1"]`)},
	}, {
		span: "lookup",
		want: map[attribute.Key]attribute.Value{"traceloop.span.kind": str("task"), "spanferry.step.kind": str("retriever"),
			"traceloop.entity.path": str("plan.search")},
		none: []attribute.Key{"spanferry.step.id", "gen_ai.operation.name"},
	}, {
		span: "answer",
		want: map[attribute.Key]attribute.Value{"traceloop.span.kind": str("task"), "spanferry.step.kind": str("llm"),
			"gen_ai.operation.name": str("chat"), "gen_ai.request.model": str("gpt-4o"), "gen_ai.provider.name": str("openai"),
			"gen_ai.usage.input_tokens": attribute.Int64Value(812), "gen_ai.usage.output_tokens": attribute.Int64Value(64),
			"gen_ai.usage.cost": attribute.Float64Value(0.00231), "keywordsai.metadata.temperature": attribute.Float64Value(0.2)},
	}, {
		span: "embed",
		want: map[attribute.Key]attribute.Value{"traceloop.span.kind": str("task"), "gen_ai.operation.name": str("embeddings"),
			"gen_ai.request.model": str("text-embedding-3-small")},
	}, {
		span: "sub",
		want: map[attribute.Key]attribute.Value{"traceloop.span.kind": str("workflow"), "spanferry.step.kind": str("workflow")},
	}, {
		span: "rerank",
		want: map[attribute.Key]attribute.Value{"traceloop.span.kind": str("task"), "spanferry.step.kind": str("reranker")},
	}, {
		span: "plain",
		want: map[attribute.Key]attribute.Value{"spanferry.status": str("cancelled"), "spanferry.step.kind": str("task")},
	}}
	for _, tc := range cases {
		s, ok := spans[tc.span]
		if !ok {
			t.Fatalf("no span %q", tc.span)
		}
		got := attrs(s)
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v", tc.span, k, got[k].Emit(), v.Emit())
			}
		}
		for _, k := range tc.none {
			if _, ok := got[k]; ok {
				t.Errorf("%s: unexpected %s = %v", tc.span, k, got[k].Emit())
			}
		}
		if s.SpanKind() != trace.SpanKindInternal {
			t.Errorf("%s: kind %v, want internal", tc.span, s.SpanKind())
		}
	}
}

func TestStatusAndErrors(t *testing.T) {
	spans, _ := mapJSON(t, newMapper(t), fullResult, mapping.Source{})
	cases := []struct {
		span      string
		code      codes.Code
		desc      string
		exception [2]string
	}{
		{"support-agent", codes.Error, "step timed out", [2]string{"TimeoutError", "step timed out"}},
		{"broken", codes.Error, "error", [2]string{}},
		{"crashed", codes.Error, "bad tool args", [2]string{"ValueError", "bad tool args"}},
		{"plain", codes.Unset, "", [2]string{}},
		{"answer", codes.Unset, "", [2]string{}},
	}
	for _, tc := range cases {
		s := spans[tc.span]
		if s.Status().Code != tc.code || s.Status().Description != tc.desc {
			t.Errorf("%s: status %v %q, want %v %q", tc.span, s.Status().Code, s.Status().Description, tc.code, tc.desc)
		}
		if tc.exception == ([2]string{}) {
			if len(s.Events()) != 0 {
				t.Errorf("%s: unexpected events %v", tc.span, s.Events())
			}
			continue
		}
		if len(s.Events()) != 1 {
			t.Fatalf("%s: %d events, want one exception", tc.span, len(s.Events()))
		}
		ev := s.Events()[0]
		got := map[attribute.Key]string{}
		for _, kv := range ev.Attributes {
			got[kv.Key] = kv.Value.AsString()
		}
		if ev.Name != "exception" || got["exception.type"] != tc.exception[0] || got["exception.message"] != tc.exception[1] {
			t.Errorf("%s: event %s %v", tc.span, ev.Name, got)
		}
		if !ev.Time.Equal(s.EndTime()) {
			t.Errorf("%s: exception at %v, want the span's end %v", tc.span, ev.Time, s.EndTime())
		}
	}
}

func TestNestingAndResource(t *testing.T) {
	base := resource.NewSchemaless(attribute.String("deployment.environment.name", "prod"), attribute.String("service.name", "from-env"))
	m := newMapper(t, mapping.WithResource(base), mapping.WithDefaultService("fallback"))
	spans, _ := mapJSON(t, m, fullResult, mapping.Source{})
	parentOf := map[string]string{"plan": "support-agent", "search": "plan", "lookup": "search", "answer": "support-agent", "crashed": "support-agent"}
	for child, parent := range parentOf {
		if spans[child].Parent().SpanID() != spans[parent].SpanContext().SpanID() {
			t.Errorf("%s's parent is not %s", child, parent)
		}
	}
	if spans["support-agent"].Parent().IsValid() {
		t.Error("root has a parent without traceparent")
	}
	res := attrsOf(spans["answer"].Resource())
	if res["service.name"] != "backend-workflows" || res["deployment.environment.name"] != "prod" {
		t.Errorf("resource %v: want the result's service over the base", res)
	}
	noService, _ := mapJSON(t, newMapper(t, mapping.WithResource(base)), `{"id":"x","name":"n"}`, mapping.Source{})
	if got := attrsOf(noService["n"].Resource())["service.name"]; got != "from-env" {
		// The base resource (OTEL_SERVICE_NAME via resource.WithFromEnv)
		// names the service when the result does not.
		t.Errorf("service.name = %q, want the base resource's", got)
	}
	explicit, _ := mapJSON(t, m, `{"id":"x","name":"n"}`, mapping.Source{})
	if got := attrsOf(explicit["n"].Resource())["service.name"]; got != "fallback" {
		t.Errorf("service.name = %q, want the configured default", got)
	}
	plain, _ := mapJSON(t, newMapper(t, mapping.WithDefaultService("fallback")), `{"id":"x","name":"n"}`, mapping.Source{})
	if got := attrsOf(plain["n"].Resource())["service.name"]; got != "fallback" {
		t.Errorf("service.name = %q, want fallback", got)
	}
	if plain["n"].InstrumentationScope().Name != mapping.ScopeName {
		t.Errorf("scope %q", plain["n"].InstrumentationScope().Name)
	}
}

func attrsOf(r *resource.Resource) map[string]string {
	out := map[string]string{}
	for _, kv := range r.Attributes() {
		out[string(kv.Key)] = kv.Value.Emit()
	}
	return out
}

func TestAttributeValueLimitTruncatesAndCounts(t *testing.T) {
	m := newMapper(t, mapping.WithLimits(mapping.Limits{MaxAttrValueLen: 9}))
	msg := `{"id":"r","name":"root","input":"ééééééééééé","output":"short","metadata":{"long":"0123456789"},
		"steps":[{"name":"s","output":{"k":"long value"}}]}`
	spans, st := mapJSON(t, m, msg, mapping.Source{})
	root := attrs(spans["root"])
	// Nine characters, cut on a rune boundary: the opening quote and 8 é.
	if got := root["traceloop.entity.input"].AsString(); got != `"éééééééé` {
		t.Errorf("input = %q", got)
	}
	if got := root["traceloop.entity.output"].AsString(); got != `"short"` {
		t.Errorf("output = %q, want untouched", got)
	}
	if got := root["keywordsai.metadata.long"].AsString(); got != "012345678" {
		t.Errorf("metadata = %q", got)
	}
	if got := attrs(spans["s"])["traceloop.entity.output"].AsString(); got != `{"k":"lon` {
		t.Errorf("step output = %q", got)
	}
	if st.Truncations != 3 {
		t.Errorf("Truncations = %d, want 3", st.Truncations)
	}
	_, st = mapJSON(t, newMapper(t), msg, mapping.Source{})
	if st.Truncations != 0 {
		t.Errorf("no limit: Truncations = %d", st.Truncations)
	}
}

func TestInvalidUTF8InRawValuesIsRepaired(t *testing.T) {
	msg := "{\"id\":\"r\",\"name\":\"root\",\"input\":\"a\xffb\",\"output\":{\"k\":\"\xc3\"}}"
	spans, _ := mapJSON(t, newMapper(t), msg, mapping.Source{})
	a := attrs(spans["root"])
	for _, k := range []attribute.Key{"traceloop.entity.input", "traceloop.entity.output"} {
		v := a[k].AsString()
		if !strings.Contains(v, "\uFFFD") || !isValidUTF8(v) {
			t.Errorf("%s = %q, want valid UTF-8 with a replacement character", k, v)
		}
	}
}

func isValidUTF8(s string) bool { return strings.ToValidUTF8(s, "") == s }
