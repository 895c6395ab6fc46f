package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestCheckPrintsTheSpanTree(t *testing.T) {
	var out, errOut bytes.Buffer
	code := realMain([]string{"check", "../../examples/agent-tools.json", "../../examples/batch.jsonl"}, nil, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"agent-tools.json: result run_01JDA4M7Q2R8TZ3K9XW5C1V6HB, trace 2634b3696b34f184ef226d12cc5b4778, 10 spans",
		"\n  support-agent  6.42s  [workflow]",
		"\n      plan  1.18s  [llm]  gpt-4o  tokens 1240→86  $0.00396",
		"batch.jsonl[4]: result",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCheckNamesTheInvalidField(t *testing.T) {
	var out, errOut bytes.Buffer
	stdin := strings.NewReader(`{"id":"ok","name":"fine"}
{"id":"bad","name":"n","steps":[{"name":"a"},{"kind":"llm"}]}`)
	code := realMain([]string{"check", "-"}, stdin, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "-[1]: invalid: steps[1].name: required") {
		t.Errorf("stderr %q does not name the field", errOut.String())
	}
	if !strings.Contains(out.String(), "-[0]: result ok") {
		t.Errorf("the valid result was not printed: %q", out.String())
	}
}

func TestHelpListsEveryVariableAndCommand(t *testing.T) {
	var out bytes.Buffer
	if code := realMain([]string{"-h"}, nil, &out, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"publish", "check", "healthcheck", "NATS_URL", "WORKER_BATCH_SIZE", "OTEL_EXPORTER_OTLP_ENDPOINT", "WORKER_SHUTDOWN_TIMEOUT"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %s", want)
		}
	}
}
