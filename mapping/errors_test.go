package mapping_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spanferry/spanferry/mapping"
)

func TestDecodeErrorsNameTheField(t *testing.T) {
	cases := []struct {
		name, msg, want string
		sentinel        error
	}{
		{"missing id", `{"name":"n"}`, "id: required", nil},
		{"missing name", `{"id":"r"}`, "name: required", nil},
		{"missing step name", `{"id":"r","name":"n","steps":[{"name":"a"},{"id":"x"}]}`, "steps[1].name: required", nil},
		{"nested step name", `{"id":"r","name":"n","steps":[{"name":"a"},{"name":"b"},{"name":"c","steps":[{"kind":"llm"}]}]}`, "steps[2].steps[0].name: required", nil},
		{"wrong type deep", `{"id":"r","name":"n","steps":[{"name":"a"},{"name":"b","steps":[{"name":5}]}]}`, "steps[1].steps[0].name: must be a string, got number", nil},
		{"wrong type latency", `{"id":"r","name":"n","steps":[{"name":"a","latency_ms":"fast"}]}`, "steps[0].latency_ms: must be a number, got string", nil},
		{"steps not an array", `{"id":"r","name":"n","steps":{"name":"a"}}`, "steps: must be an array, got object", nil},
		{"usage tokens type", `{"id":"r","name":"n","steps":[{"name":"a","usage":{"input_tokens":1.5}}]}`, "steps[0].usage.input_tokens: must be a number, got number 1.5", nil},
		{"not an object", `[{"id":"r"}]`, "message is a JSON array, want an object", nil},
		{"invalid JSON", `{"id":"r",`, "invalid JSON", nil},
		{"empty", ``, "invalid JSON", nil},
		{"bad trace_id", `{"id":"r","name":"n","trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736"}`, "trace_id: must be 32 lowercase hex", nil},
		{"zero trace_id", `{"id":"r","name":"n","trace_id":"00000000000000000000000000000000"}`, "trace_id: must be 32 lowercase hex characters, not all zero", nil},
		{"bad span_id", `{"id":"r","name":"n","steps":[{"name":"a","span_id":"xyz"}]}`, "steps[0].span_id: must be 16 lowercase hex", nil},
		{"bad started_at", `{"id":"r","name":"n","started_at":"yesterday"}`, `started_at: must be an RFC 3339 time, got "yesterday"`, nil},
		{"bad step ended_at", `{"id":"r","name":"n","steps":[{"name":"a","ended_at":"2026-13-01T00:00:00Z"}]}`, "steps[0].ended_at: must be an RFC 3339 time", nil},
		{"ended before started", `{"id":"r","name":"n","started_at":"2026-11-24T10:00:01Z","ended_at":"2026-11-24T10:00:00Z"}`, "ended_at: is before started_at", nil},
		{"negative latency", `{"id":"r","name":"n","steps":[{"name":"a","latency_ms":-1}]}`, "steps[0].latency_ms: must be a non-negative number", nil},
		{"huge latency", `{"id":"r","name":"n","latency_ms":1e300}`, "latency_ms: must be a non-negative number", nil},
		{"negative tokens", `{"id":"r","name":"n","steps":[{"name":"a","usage":{"output_tokens":-3}}]}`, "steps[0].usage.output_tokens: must not be negative", nil},
		{"negative cost", `{"id":"r","name":"n","steps":[{"name":"a","cost":-0.1}]}`, "steps[0].cost: must be a non-negative number", nil},
		{"metadata object", `{"id":"r","name":"n","metadata":{"plan":{"tier":"pro"}}}`, "metadata.plan: must be a string, number, boolean or null", nil},
		{"step metadata array", `{"id":"r","name":"n","steps":[{"name":"a","metadata":{"tags":[1]}}]}`, "steps[0].metadata.tags: must be a string, number, boolean or null", nil},
		{"duplicate sibling ids", `{"id":"r","name":"n","steps":[{"id":"x","name":"a"},{"id":"y","name":"b"},{"id":"x","name":"c"}]}`, `steps[2].id: duplicates steps[0].id ("x")`, nil},
		{"version 2", `{"version":2,"id":"r","name":"n"}`, "version: unsupported version 2", mapping.ErrUnsupportedVersion},
		{"version 0", `{"version":0,"id":"r","name":"n"}`, "version: unsupported version 0", mapping.ErrUnsupportedVersion},
		{"version not a number", `{"version":"one","id":"r","name":"n"}`, "version", nil},
	}
	m := newMapper(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Decode([]byte(tc.msg), mapping.Source{Stored: stored})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if !mapping.IsPermanent(err) || !errors.Is(err, mapping.ErrInvalid) {
				t.Errorf("error %v is not permanent", err)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("error %v does not match %v", err, tc.sentinel)
			}
			var fe *mapping.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %T is not a *FieldError", err)
			}
		})
	}
}

func TestAcceptedVersions(t *testing.T) {
	m := newMapper(t)
	for _, v := range []string{``, `"version":1,`, `"version":1.3,`, `"version":"1",`} {
		if _, err := m.Decode([]byte(`{`+v+`"id":"r","name":"n","future_field":{"x":1}}`), mapping.Source{Stored: stored}); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
}

func TestLimits(t *testing.T) {
	steps := func(n int) string {
		return `{"id":"r","name":"n","steps":[` + strings.TrimSuffix(strings.Repeat(`{"name":"s"},`, n), ",") + `]}`
	}
	deep := func(n int) string {
		return `{"id":"r","name":"n","steps":` + strings.Repeat(`[{"name":"s","steps":`, n) + `[]` + strings.Repeat(`}]`, n) + `}`
	}
	cases := []struct {
		name   string
		limits mapping.Limits
		msg    string
		want   string // "" for accepted
	}{
		{"bytes", mapping.Limits{MaxBytes: 100}, steps(10), "message is 161 bytes, over the limit of 100"},
		{"steps at the limit", mapping.Limits{MaxSteps: 10}, steps(10), ""},
		{"steps over the limit", mapping.Limits{MaxSteps: 10}, steps(11), "steps[10]: more than the limit of 10 steps"},
		{"depth at the limit", mapping.Limits{MaxDepth: 3}, deep(3), ""},
		{"depth over the limit", mapping.Limits{MaxDepth: 3}, deep(4), "steps[0].steps[0].steps[0].steps: nested deeper than the limit of 3"},
		{"default depth", mapping.Limits{}, deep(65), "nested deeper than the limit of 64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMapper(t, mapping.WithLimits(tc.limits))
			_, err := m.Decode([]byte(tc.msg), mapping.Source{Stored: stored})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if !errors.Is(err, mapping.ErrTooLarge) || !mapping.IsPermanent(err) {
				t.Fatalf("error %v does not match ErrTooLarge and ErrInvalid", err)
			}
		})
	}
}

// A 10,000-deep or 1,000,000-step message is refused quickly with a clear
// error: no stack overflow, no out-of-memory. The durations are logged,
// not asserted (timing belongs to benchmarks); a regression here shows up
// as a test that hangs or crashes.
func TestHostileSizesAreRefusedCleanly(t *testing.T) {
	deep := `{"id":"r","name":"n","steps":` + strings.Repeat(`[{"name":"s","steps":`, 10_000) + `[]` + strings.Repeat(`}]`, 10_000) + `}`
	wide := `{"id":"r","name":"n","steps":[` + strings.TrimSuffix(strings.Repeat(`{"name":"s"},`, 1_000_000), ",") + `]}`
	cases := []struct {
		name, msg string
		limits    mapping.Limits
		want      string
	}{
		{"10,000 deep", deep, mapping.Limits{}, "steps: nested deeper than the limit of 64"},
		{"10,000 deep under a large depth limit", deep, mapping.Limits{MaxDepth: 1 << 20}, "nested more than 10000 levels deep"},
		{"1,000,000 steps", wide, mapping.Limits{}, "over the limit of 1048576"},
		{"1,000,000 steps under a large byte limit", wide, mapping.Limits{MaxBytes: 64 << 20}, "more than the limit of 10000 steps"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMapper(t, mapping.WithLimits(tc.limits))
			start := time.Now()
			_, err := m.Decode([]byte(tc.msg), mapping.Source{Stored: stored})
			t.Logf("refused %d bytes in %v", len(tc.msg), time.Since(start))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, mapping.ErrTooLarge) {
				t.Fatalf("error %v, want %q matching ErrTooLarge", err, tc.want)
			}
		})
	}
}

func TestMapRefusesACollectorOfAnotherTrace(t *testing.T) {
	m := newMapper(t)
	a, err := m.Decode([]byte(`{"id":"a","name":"n"}`), mapping.Source{Stored: stored})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Decode([]byte(`{"id":"b","name":"n"}`), mapping.Source{Stored: stored})
	c, _ := m.NewCollector(b, nil)
	if _, err := m.Map(c, a); err == nil {
		t.Fatal("mapped a result into a collector of another trace")
	}
}

// The pre-scan of large messages must count exactly what validation counts:
// "steps" keys inside input, output or metadata are not steps.
func TestPrescanCountsOnlySteps(t *testing.T) {
	pad := strings.Repeat("x", 70<<10) // over the pre-scan threshold
	decoy := `{"steps":[{"steps":[{"steps":[{}]}]},{},{},{}],"a":"\"steps\":[{"}`
	msg := `{"id":"r","name":"n","input":` + decoy + `,"output":[` + decoy + `],"metadata":{"k":"` + pad + `"},
		"steps":[{"name":"a","input":` + decoy + `,"steps":[{"name":"b"}]},{"name":"c"}]}`
	m := newMapper(t, mapping.WithLimits(mapping.Limits{MaxSteps: 3, MaxDepth: 2, MaxBytes: 1 << 20}))
	d, err := m.Decode([]byte(msg), mapping.Source{Stored: stored})
	if err != nil {
		t.Fatalf("decoys counted as steps: %v", err)
	}
	if d.Steps() != 3 {
		t.Fatalf("Steps() = %d, want 3", d.Steps())
	}
	tight := newMapper(t, mapping.WithLimits(mapping.Limits{MaxSteps: 2, MaxBytes: 1 << 20}))
	if _, err := tight.Decode([]byte(msg), mapping.Source{Stored: stored}); !errors.Is(err, mapping.ErrTooLarge) {
		t.Fatalf("3 steps under a limit of 2: %v", err)
	}
	shallow := newMapper(t, mapping.WithLimits(mapping.Limits{MaxDepth: 1, MaxBytes: 1 << 20}))
	if _, err := shallow.Decode([]byte(msg), mapping.Source{Stored: stored}); !errors.Is(err, mapping.ErrTooLarge) {
		t.Fatalf("depth 2 under a limit of 1: %v", err)
	}
}
