package main

import (
	"bytes"
	"os"
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

func TestCheckAppliesTheContentControls(t *testing.T) {
	t.Setenv("WORKER_REDACT_FILE", "../../examples/redact/rules.yaml")
	var out, errOut bytes.Buffer
	if code := realMain([]string{"check", "--show-content", "../../examples/redact/support-ticket.json"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"content: input and output captured; 7 redaction rules from ../../examples/redact/rules.yaml (email, card, bearer, api-key, jwt, phone, iban)\n",
		"4 spans, 11 redactions (email 5, card 2, bearer 1, api-key 1, phone 1, iban 1)\n",
		`      input: {"ticket":"T-99120","from":"Ann Lee <[email]>","body":"My card [card] was charged twice. Call me on [phone].","headers":{"authorization":"Bearer [secret]"}}` + "\n",
		"      metadata: organization=acme priority=2 reporter=[email]\n",
		"ERROR: could not notify [email]: mailbox full",
		`        input: {"email":"[email]","api_key":"[secret]"}` + "\n",
		"        error: 552 mailbox full for [email]\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, leak := range []string{"ann.lee@example.com", "4111", "sk-proj", "9f8e7d6c", "+1 415"} {
		if strings.Contains(out.String(), leak) {
			t.Errorf("output shows %q", leak)
		}
	}

	t.Setenv("WORKER_CAPTURE_CONTENT", "false")
	out.Reset()
	if code := realMain([]string{"check", "--show-content", "../../examples/redact/support-ticket.json"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if strings.Contains(out.String(), "input:") || strings.Contains(out.String(), "output:") {
		t.Errorf("capture off, yet the tree shows content:\n%s", out.String())
	}
	for _, want := range []string{"content: input and output not captured (WORKER_CAPTURE_CONTENT=false)", "metadata: organization=acme priority=2 reporter=[email]", "4 spans, 3 redactions (email 3)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("capture off: output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCheckStopsOnABadRedactFile(t *testing.T) {
	bad := t.TempDir() + "/rules.yaml"
	if err := os.WriteFile(bad, []byte("rules:\n  - preset: email\n  - preset: email\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WORKER_REDACT_FILE", bad)
	var out, errOut bytes.Buffer
	if code := realMain([]string{"check", "../../examples/agent-tools.json"}, nil, &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if want := `rules[1] ("email"): duplicate name`; !strings.Contains(errOut.String(), want) || !strings.Contains(errOut.String(), bad) {
		t.Errorf("stderr %q names neither the file nor the rule", errOut.String())
	}
}
