package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/mapping"
)

// TestRunAppliesTheContentControls runs the worker with capture off and
// the example redact file: the receiver gets no input or output, redacted
// metadata and error messages, untouched ids, and /metrics counts each
// rule's replacements.
func TestRunAppliesTheContentControls(t *testing.T) {
	srv := natstest.Start(t)
	recv := otlptest.StartT(t)
	createStream(t, srv.JS)
	body, err := os.ReadFile("../../examples/redact/support-ticket.json")
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg("workflows.results.test")
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, "ticket")
	if _, err := srv.JS.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}

	t.Setenv("WORKER_CAPTURE_CONTENT", "false")
	t.Setenv("WORKER_REDACT_FILE", "../../examples/redact/rules.yaml")
	cfg := testConfig(t, srv.ClientURL())
	withReceiver(t, &cfg, recv)
	w := runWorker(t, cfg)

	await(t, "the ticket's 4 spans", func() bool { return recv.SpanCount() == 4 })
	awaitSettled(t, srv.JS)
	for _, s := range recv.Spans() {
		for _, k := range []string{string(mapping.AttrTraceloopEntityInput), string(mapping.AttrTraceloopEntityOutput)} {
			if _, ok := s.Attributes[k]; ok {
				t.Errorf("span %s carries %s with capture off", s.Name, k)
			}
		}
		if s.ParentSpanID != "" {
			continue
		}
		for k, want := range map[string]any{
			"keywordsai.metadata.reporter":                   "[email]",
			"keywordsai.metadata.priority":                   int64(2),
			"keywordsai.metadata.organization":               "acme",
			"keywordsai.customer_params.customer_identifier": "cust-ann-lee",
			string(mapping.AttrResultID):                     "run_01JDB2REDACT7Q4M8ZK3XW9T5C",
		} {
			if s.Attributes[k] != want {
				t.Errorf("root %s = %v, want %v", k, s.Attributes[k], want)
			}
		}
		if s.StatusMessage != "could not notify [email]: mailbox full" {
			t.Errorf("root status message %q", s.StatusMessage)
		}
	}
	await(t, "the redactions counted", func() bool {
		_, m := w.get("/metrics")
		return strings.Contains(m, `spanferry_redactions_total{rule="email"} 3`)
	})
	_, m := w.get("/metrics")
	for _, rule := range []string{"card", "bearer", "api-key", "jwt", "phone", "iban"} {
		if want := `spanferry_redactions_total{rule="` + rule + `"} 0`; !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestRunCapturesContentPerTenant runs the worker with capture off and a
// tenants file in which one tenant turns it back on and another keeps it
// off: only the first tenant's spans carry input and output; the other
// tenant's and an unlisted organization's follow WORKER_CAPTURE_CONTENT.
func TestRunCapturesContentPerTenant(t *testing.T) {
	srv := natstest.Start(t)
	recv := otlptest.StartT(t)
	createStream(t, srv.JS)
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	writeTenants(t, path, "tenants:\n  acme:\n    capture_content: true\n  globex:\n    capture_content: false\n")
	t.Setenv("WORKER_CAPTURE_CONTENT", "false")
	t.Setenv("WORKER_TENANTS_FILE", path)
	cfg := testConfig(t, srv.ClientURL())
	withReceiver(t, &cfg, recv)
	runWorker(t, cfg)

	for _, org := range []string{"acme", "globex", "other"} {
		msg := nats.NewMsg("workflows.results.test")
		msg.Data = fmt.Appendf(nil, `{"id":"run-%s","name":"wf","organization":%q,"input":{"q":"hi"},"output":"ok",`+
			`"steps":[{"id":"s1","name":"answer","input":"hi","output":"ok"}]}`, org, org)
		if _, err := srv.JS.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	await(t, "the three results' 6 spans", func() bool { return recv.SpanCount() == 6 })
	awaitSettled(t, srv.JS)
	captured := map[string]int{}
	for _, s := range recv.Spans() {
		_, in := s.Attributes[string(mapping.AttrTraceloopEntityInput)]
		_, out := s.Attributes[string(mapping.AttrTraceloopEntityOutput)]
		if in != out {
			t.Errorf("span %s of %v: input %v, output %v", s.Name, s.Attributes[string(mapping.AttrResultID)], in, out)
		}
		if in {
			captured[s.Attributes[string(mapping.AttrResultID)].(string)]++
		}
	}
	if want := map[string]int{"run-acme": 2}; !maps.Equal(captured, want) {
		t.Errorf("spans with content, by result: %v, want %v", captured, want)
	}
}
