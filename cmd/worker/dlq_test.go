package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/mapping"
)

// dlqRun runs `worker dlq args…` as main would and returns its stdout,
// stderr and exit code.
func dlqRun(t *testing.T, cfg config.Config, args ...string) (string, string, int) {
	t.Helper()
	cfg.LogLevel = "info" // the default: no log line on success
	var out, errOut bytes.Buffer
	err := dlqCmd(t.Context(), cfg, args, &out, &errOut)
	code := exitCode(&errOut, err)
	return out.String(), errOut.String(), code
}

// dlqOK runs a command that must succeed quietly: exit 0 and nothing on
// stderr (no log line).
func dlqOK(t *testing.T, cfg config.Config, args ...string) string {
	t.Helper()
	out, errOut, code := dlqRun(t, cfg, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("dlq %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// dlqJSON runs `dlq list --json args…` and decodes every line.
func dlqJSON(t *testing.T, cfg config.Config, args ...string) []letterJSON {
	t.Helper()
	out := dlqOK(t, cfg, append([]string{"list", "--json"}, args...)...)
	var letters []letterJSON
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l letterJSON
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("list --json line %q: %v", sc.Text(), err)
		}
		letters = append(letters, l)
	}
	return letters
}

func seqsOf(letters []letterJSON) []uint64 {
	var out []uint64
	for _, l := range letters {
		out = append(out, l.Seq)
	}
	return out
}

// createDLQStream creates the dead-letter stream as a worker does.
func createDLQStream(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "WORKFLOW_DLQ", Subjects: []string{"workflows.dlq"}}); err != nil {
		t.Fatal(err)
	}
}

// putLetter stores a dead letter as a worker writes one and returns its
// sequence.
func putLetter(t *testing.T, js jetstream.JetStream, subject, id, reason, tenant string) uint64 {
	t.Helper()
	msg := nats.NewMsg("workflows.dlq")
	msg.Data = testResult(id, 1)
	msg.Header.Set(jetstream.MsgIDHeader, id)
	msg.Header.Set(consumer.HeaderError, reason)
	msg.Header.Set(consumer.HeaderSubject, subject)
	msg.Header.Set(consumer.HeaderStream, "WORKFLOW_RESULTS")
	msg.Header.Set(consumer.HeaderStreamSeq, "1")
	msg.Header.Set(consumer.HeaderDeliveries, "2")
	if tenant != "" {
		msg.Header.Set(consumer.HeaderTenant, tenant)
	}
	ack, err := js.PublishMsg(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// derivedSpans maps a body as the worker does: span id → "trace parent".
func derivedSpans(t *testing.T, body []byte, traceparent string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range mapBody(t, body, traceparent) {
		out[s.SpanContext().SpanID().String()] = s.SpanContext().TraceID().String() + " " + s.Parent().SpanID().String()
	}
	return out
}

func receivedSpans(recv *otlptest.Receiver, resultID string) map[string]string {
	out := map[string]string{}
	for _, s := range recv.Spans() {
		if s.Attributes[string(mapping.AttrResultID)] == resultID {
			parent := s.ParentSpanID
			if parent == "" {
				parent = "0000000000000000"
			}
			out[s.SpanID] = s.TraceID + " " + parent
		}
	}
	return out
}

// TestDLQRedriveThroughTheWorker is the runbook on the real pipeline: the
// receiver refuses a result for good, the worker dead-letters it; list and
// show find it; a dry run changes nothing; a redrive while the cause lasts
// is dead-lettered again; once the cause is fixed, a redrive republishes the
// body and the original headers and the worker exports the spans the body
// derives.
func TestDLQRedriveThroughTheWorker(t *testing.T) {
	srv := natstest.Start(t)
	recv := otlptest.StartT(t)
	var refuse atomic.Bool
	refuse.Store(true)
	recv.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
		if refuse.Load() {
			return otlptest.Response{Status: http.StatusBadRequest, ErrorMessage: "schema rejected"}
		}
		return otlptest.Response{}
	})
	cfg := testConfig(t, srv.ClientURL())
	withReceiver(t, &cfg, recv)
	w := runWorker(t, cfg)
	await(t, "ready", func() bool { code, _ := w.get("/readyz"); return code == http.StatusOK })

	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	body := []byte(`{"id":"run-redrive","name":"support-agent","started_at":"2026-11-24T10:00:00Z","steps":[{"id":"s1","name":"retrieve","latency_ms":120},{"id":"s2","name":"answer","kind":"llm","latency_ms":900}]}`)
	orig := nats.NewMsg("workflows.results.support")
	orig.Data = body
	orig.Header.Set(jetstream.MsgIDHeader, "run-redrive")
	orig.Header.Set("traceparent", traceparent)
	orig.Header["X-Origin"] = []string{"backend-a", "backend-b"}
	if _, err := srv.JS.PublishMsg(t.Context(), orig); err != nil {
		t.Fatal(err)
	}
	await(t, "the dead letter", func() bool { return len(srv.StreamMsgs(t, "WORKFLOW_DLQ")) == 1 })
	awaitSettled(t, srv.JS)

	// Find it, and read why.
	out := dlqOK(t, cfg, "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(strings.TrimSpace(lines[0]), "SEQ") {
		t.Fatalf("list:\n%s", out)
	}
	fields := strings.Fields(lines[1])
	if fields[0] != "1" || fields[2] != "workflows.results.support" || fields[3] != "run-redrive" || fields[4] != "1" || fields[5] != "-" ||
		!strings.Contains(lines[1], "status 400") || !strings.Contains(lines[1], "schema rejected") {
		t.Errorf("list line %q", lines[1])
	}
	if ts, err := time.Parse(letterTime, fields[1]); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("list time %q: %v", fields[1], err)
	}
	letters := dlqJSON(t, cfg)
	if len(letters) != 1 {
		t.Fatalf("list --json: %+v", letters)
	}
	l := letters[0]
	if l.Seq != 1 || l.Subject != "workflows.results.support" || l.ID != "run-redrive" || l.Deliveries != 1 || l.Tenant != "" ||
		!strings.Contains(l.Reason, "status 400") || l.Headers["X-Origin"] != "backend-a" || l.Headers["traceparent"] != traceparent ||
		l.Headers[consumer.HeaderStream] != "WORKFLOW_RESULTS" {
		t.Errorf("list --json: %+v", l)
	}
	show := dlqOK(t, cfg, "show", "1")
	for _, want := range []string{"dead letter 1 in WORKFLOW_DLQ", "X-Origin: backend-a\nX-Origin: backend-b\n", "traceparent: " + traceparent,
		"Spanferry-Error: rejected by the OTLP receiver (status 400", "Spanferry-Subject: workflows.results.support", "\n{\n  \"id\": \"run-redrive\",\n"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}

	// A dry run publishes and deletes nothing.
	resultsBefore := len(srv.StreamMsgs(t, "WORKFLOW_RESULTS"))
	out = dlqOK(t, cfg, "redrive", "--dry-run", "1")
	if out != "would redrive 1 (id run-redrive) to workflows.results.support as run-redrive.redrive.1\n"+
		"redrive: 1 would be redriven, 0 could not be (dry run: nothing published or deleted)\n" {
		t.Errorf("dry run:\n%s", out)
	}
	if n := len(srv.StreamMsgs(t, "WORKFLOW_RESULTS")); n != resultsBefore {
		t.Errorf("a dry run published: %d results, was %d", n, resultsBefore)
	}
	if got := seqsOf(dlqJSON(t, cfg)); !slices.Equal(got, []uint64{1}) {
		t.Errorf("a dry run changed the letters: %v", got)
	}

	// Redriven while the cause lasts: dead-lettered again, as any result.
	out = dlqOK(t, cfg, "redrive", "1")
	if !strings.HasPrefix(out, "redriven 1 (id run-redrive) to workflows.results.support: WORKFLOW_RESULTS seq 2\n") ||
		!strings.HasSuffix(out, "redrive: 1 redriven (0 already stored by an earlier redrive), 0 failed\n") {
		t.Errorf("redrive:\n%s", out)
	}
	await(t, "the second dead letter", func() bool { return len(srv.StreamMsgs(t, "WORKFLOW_DLQ")) == 1 })
	again := dlqJSON(t, cfg)
	if len(again) != 1 || again[0].Seq != 2 || again[0].ID != "run-redrive" || again[0].Headers[consumer.HeaderRedrivenFrom] != "1" ||
		again[0].Headers[jetstream.MsgIDHeader] != "run-redrive.redrive.1" || !strings.Contains(again[0].Reason, "status 400") {
		t.Fatalf("after a failing redrive: %+v", again)
	}

	// Fix the cause, redrive, check it arrived with the ids its body derives.
	refuse.Store(false)
	out = dlqOK(t, cfg, "redrive", "--grep", "schema REJECTED")
	if !strings.HasPrefix(out, "redriven 2 (id run-redrive) to workflows.results.support: WORKFLOW_RESULTS seq 3\n") {
		t.Errorf("redrive --grep:\n%s", out)
	}
	want := derivedSpans(t, body, traceparent)
	var got map[string]string
	await(t, "the redriven result exported", func() bool { got = receivedSpans(recv, "run-redrive"); return len(got) >= len(want) })
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("exported spans (id → trace parent)\n%v\nwant\n%v", got, want)
	}
	awaitSettled(t, srv.JS)
	if n := len(srv.StreamMsgs(t, "WORKFLOW_DLQ")); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
	if out := dlqOK(t, cfg, "list"); out != "no dead letters in WORKFLOW_DLQ\n" {
		t.Errorf("empty list: %q", out)
	}

	// The republished message: the body, the original headers, the redrive's
	// own, and no other Spanferry-* header.
	results := srv.StreamMsgs(t, "WORKFLOW_RESULTS")
	last := results[len(results)-1]
	if last.Subject != "workflows.results.support" || !bytes.Equal(last.Data, body) {
		t.Errorf("redriven message %s %q", last.Subject, last.Data)
	}
	wantHeader := nats.Header{
		"traceparent":               {traceparent},
		"X-Origin":                  {"backend-a", "backend-b"},
		jetstream.MsgIDHeader:       {"run-redrive.redrive.2"},
		consumer.HeaderRedrivenFrom: {"2"},
	}
	if fmt.Sprint(last.Header) != fmt.Sprint(wantHeader) {
		t.Errorf("redriven headers\n%v\nwant\n%v", last.Header, wantHeader)
	}
}

// TestDLQRedriveAfterACrashPublishesOnce: a redrive that stopped between
// its publish and its delete is run again; the duplicate window drops the
// second publish and the worker exports the result once.
func TestDLQRedriveAfterACrashPublishesOnce(t *testing.T) {
	srv := natstest.Start(t)
	recv := otlptest.StartT(t)
	cfg := testConfig(t, srv.ClientURL())
	withReceiver(t, &cfg, recv)
	w := runWorker(t, cfg) // creates the streams, the results one with a duplicate window
	await(t, "ready", func() bool { code, _ := w.get("/readyz"); return code == http.StatusOK })
	seq := putLetter(t, srv.JS, "workflows.results.test", "crash-1", "rejected by the OTLP receiver (status 400)", "")

	letters, err := consumer.OpenDeadLetters(t.Context(), srv.JS, "WORKFLOW_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	l, err := letters.Get(t.Context(), seq)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := l.RedriveMsg()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.JS.PublishMsg(t.Context(), msg); err != nil { // the crash: published, not deleted
		t.Fatal(err)
	}
	await(t, "the first publish exported", func() bool { return roots(recv)["crash-1"] == 1 })

	out := dlqOK(t, cfg, "redrive", strconv.FormatUint(seq, 10))
	if !strings.Contains(out, "already stored by an earlier redrive (WORKFLOW_RESULTS seq 1), duplicate dropped") ||
		!strings.HasSuffix(out, "redrive: 1 redriven (1 already stored by an earlier redrive), 0 failed\n") {
		t.Errorf("second redrive:\n%s", out)
	}
	if n := len(srv.StreamMsgs(t, "WORKFLOW_RESULTS")); n != 1 {
		t.Errorf("results stream holds %d messages, want 1", n)
	}
	if n := len(srv.StreamMsgs(t, "WORKFLOW_DLQ")); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
	awaitSettled(t, srv.JS)
	if n := roots(recv)["crash-1"]; n != 1 {
		t.Errorf("exported %d times, want 1", n)
	}
}

// TestDLQWithTheWorkerStopped: with no worker running the letters can be
// listed and redriven; the redriven result waits in the stream and the next
// worker to start exports it. The limit that dead-lettered it was raised
// meanwhile, as the runbook does.
func TestDLQWithTheWorkerStopped(t *testing.T) {
	srv := natstest.Start(t)
	recv := otlptest.StartT(t)
	cfg := testConfig(t, srv.ClientURL())
	withReceiver(t, &cfg, recv)
	small := cfg
	small.MaxSteps = 2
	w := runWorker(t, small)
	ids := publishResults(t, srv.JS, "big", 3) // 3 steps each: over the limit
	await(t, "three dead letters", func() bool { return len(srv.StreamMsgs(t, "WORKFLOW_DLQ")) == 3 })
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}

	letters := dlqJSON(t, cfg, "--grep", "limit of 2 steps")
	if len(letters) != 3 {
		t.Fatalf("list --grep: %+v", letters)
	}
	out := dlqOK(t, cfg, "redrive", "--all", "--limit", "2")
	if !strings.HasSuffix(out, "redrive: 2 redriven (0 already stored by an earlier redrive), 0 failed\n") {
		t.Errorf("redrive --all --limit 2:\n%s", out)
	}
	if got := seqsOf(dlqJSON(t, cfg)); !slices.Equal(got, []uint64{3}) {
		t.Errorf("left after redriving the 2 oldest: %v", got)
	}
	dlqOK(t, cfg, "redrive", "--all")

	runWorker(t, cfg) // the limit raised
	await(t, "every redriven result exported", func() bool { return len(roots(recv)) == len(ids) })
	awaitSettled(t, srv.JS)
	assertExactlyOnce(t, recv, ids)
}

// TestDLQEmbeddedDefault: with NATS_URL unset the commands reach the
// embedded server of the worker running on this machine, and say so when
// none runs.
func TestDLQEmbeddedDefault(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.EmbeddedAddr = "127.0.0.1:0"
	cfg.MaxSteps = 1
	w := runWorker(t, cfg)
	await(t, "ready", func() bool { code, _ := w.get("/readyz"); return code == http.StatusOK })
	client := cfg
	client.EmbeddedAddr = w.embedded.Addr().String()
	nc, err := nats.Connect("nats://" + client.EmbeddedAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	publishResults(t, js, "embedded", 1)
	await(t, "the dead letter", func() bool {
		out, _, _ := dlqRun(t, client, "list")
		return strings.Contains(out, "embedded-0")
	})
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := dlqRun(t, client, "list")
	if code != 1 || !strings.Contains(errOut, "NATS_URL is unset, so dlq expects a worker running on this machine") {
		t.Errorf("no worker running: exit %d, %s", code, errOut)
	}
}

func TestDLQListFiltersAndTenant(t *testing.T) {
	srv := natstest.Start(t)
	createDLQStream(t, srv.JS)
	cfg := testConfig(t, srv.ClientURL())
	s1 := putLetter(t, srv.JS, "workflows.results.acme", "acme-1", "rejected by the OTLP receiver (status 400)", "acme")
	s2 := putLetter(t, srv.JS, "workflows.results.globex", "globex-1", "tenant globex is not configured", "globex")
	s3 := putLetter(t, srv.JS, "workflows.results.eu.acme", "eu-1", "invalid JSON", "")

	out := dlqOK(t, cfg, "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("list:\n%s", out)
	}
	if f := strings.Fields(lines[1]); f[5] != "acme" || f[4] != "2" {
		t.Errorf("tenant column: %q", lines[1])
	}
	if f := strings.Fields(lines[3]); f[5] != "-" || strings.Join(f[6:], " ") != "invalid JSON" {
		t.Errorf("no tenant: %q", lines[3])
	}
	all := dlqJSON(t, cfg)
	if len(all) != 3 || all[0].Tenant != "acme" || all[1].Tenant != "globex" || all[2].Tenant != "" || all[0].Headers[consumer.HeaderTenant] != "acme" {
		t.Errorf("tenants: %+v", all)
	}
	if _, err := time.Parse(time.RFC3339, all[0].Time); err != nil {
		t.Errorf("time %q: %v", all[0].Time, err)
	}

	for _, tt := range []struct {
		args []string
		want []uint64
	}{
		{[]string{"--grep", "GLOBEX"}, []uint64{s2}},
		{[]string{"--grep", "acme"}, []uint64{s1, s3}}, // the subject matches
		{[]string{"--subject", "workflows.results.*"}, []uint64{s1, s2}},
		{[]string{"--subject", "workflows.results.>"}, []uint64{s1, s2, s3}},
		{[]string{"--subject", "workflows.*.eu.acme"}, []uint64{s3}},
		{[]string{"--limit", "2"}, []uint64{s1, s2}},
		{[]string{"--since", all[1].Time}, []uint64{s2, s3}},
		{[]string{"--since", time.Now().Add(time.Hour).Format(time.RFC3339)}, nil},
		{[]string{"--subject", "workflows.results.>", "--grep", "json"}, []uint64{s3}},
	} {
		if got := seqsOf(dlqJSON(t, cfg, tt.args...)); !slices.Equal(got, tt.want) {
			t.Errorf("list %v: %v, want %v", tt.args, got, tt.want)
		}
	}
	if out := dlqOK(t, cfg, "list", "--grep", "nothing like it"); out != "no dead letters in WORKFLOW_DLQ match\n" {
		t.Errorf("no match: %q", out)
	}

	// show: several letters, a body that is not JSON, unknown sequences.
	show := dlqOK(t, cfg, "show", strconv.FormatUint(s3, 10), strconv.FormatUint(s1, 10))
	if i, j := strings.Index(show, "dead letter 3 "), strings.Index(show, "dead letter 1 "); i != 0 || j < 0 {
		t.Errorf("show 3 1: letters out of order:\n%s", show)
	}
	if !strings.Contains(show, "Spanferry-Tenant: acme\n") {
		t.Errorf("show lacks the tenant:\n%s", show)
	}
	out, errOut, code := dlqRun(t, cfg, "show", "1", "77", "78")
	if code != 1 || out != "" || !strings.Contains(errOut, "no dead letters 77, 78 in WORKFLOW_DLQ") {
		t.Errorf("show of unknown sequences: exit %d\n%s\n%s", code, out, errOut)
	}
	raw := nats.NewMsg("workflows.dlq")
	raw.Data = []byte("\xff\xfe binary")
	raw.Header.Set(consumer.HeaderError, "invalid JSON")
	ack, err := srv.JS.PublishMsg(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	show = dlqOK(t, cfg, "show", strconv.FormatUint(ack.Sequence, 10))
	if !strings.Contains(show, "(9 bytes, not UTF-8; Go-quoted)\n\"\\xff\\xfe binary\"\n") {
		t.Errorf("show of a binary body:\n%s", show)
	}
	if l := dlqJSON(t, cfg, "--grep", "invalid")[1]; l.ID != "-" || l.Subject != "" || l.Deliveries != 0 {
		t.Errorf("a letter without id, subject or deliveries: %+v", l)
	}
	// A letter without Spanferry-Subject cannot be redriven: exit 1, named.
	out, errOut, code = dlqRun(t, cfg, "redrive", strconv.FormatUint(ack.Sequence, 10))
	if code != 1 || !strings.Contains(errOut, "dlq redrive: dead letter 4: no Spanferry-Subject header: the original subject is unknown (id -)") || !strings.Contains(out, "0 redriven (0 already stored by an earlier redrive), 1 failed") {
		t.Errorf("redrive without a subject: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestDLQPurge(t *testing.T) {
	srv := natstest.Start(t)
	createDLQStream(t, srv.JS)
	cfg := testConfig(t, srv.ClientURL())
	for i := range 6 {
		reason := "invalid JSON"
		if i%2 == 1 {
			reason = "rejected (status 400)"
		}
		putLetter(t, srv.JS, "workflows.results.test", fmt.Sprint("p-", i), reason, "")
	}
	if out := dlqOK(t, cfg, "purge", "--dry-run", "--all"); out != "purge: 6 dead letters would be deleted from WORKFLOW_DLQ (dry run: nothing deleted)\n" {
		t.Errorf("dry run --all: %q", out)
	}
	if out := dlqOK(t, cfg, "purge", "--grep", "STATUS 400", "--dry-run"); out != "purge: 3 dead letters would be deleted from WORKFLOW_DLQ (dry run: nothing deleted)\n" {
		t.Errorf("dry run --grep: %q", out)
	}
	if got := seqsOf(dlqJSON(t, cfg)); len(got) != 6 {
		t.Fatalf("a dry run deleted: %v", got)
	}
	_, errOut, code := dlqRun(t, cfg, "purge", "1", "9")
	if code != 1 || !strings.Contains(errOut, "no dead letter 9 in WORKFLOW_DLQ") {
		t.Errorf("purge of an unknown sequence: exit %d %s", code, errOut)
	}
	if got := seqsOf(dlqJSON(t, cfg)); len(got) != 6 {
		t.Fatalf("a purge with an unknown sequence deleted: %v", got)
	}
	if out := dlqOK(t, cfg, "purge", "1", "3"); out != "purge: deleted 2 dead letters from WORKFLOW_DLQ\n" {
		t.Errorf("purge 1 3: %q", out)
	}
	if out := dlqOK(t, cfg, "purge", "--grep", "status 400"); out != "purge: deleted 3 dead letters from WORKFLOW_DLQ\n" {
		t.Errorf("purge --grep: %q", out)
	}
	if got := seqsOf(dlqJSON(t, cfg)); !slices.Equal(got, []uint64{5}) {
		t.Errorf("left: %v", got)
	}
	if out := dlqOK(t, cfg, "purge", "--all"); out != "purge: deleted 1 dead letter from WORKFLOW_DLQ\n" {
		t.Errorf("purge --all: %q", out)
	}
	if out := dlqOK(t, cfg, "list"); out != "no dead letters in WORKFLOW_DLQ\n" {
		t.Errorf("after purge --all: %q", out)
	}
}

func TestDLQErrors(t *testing.T) {
	srv := natstest.Start(t)
	cfg := testConfig(t, srv.ClientURL())
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"list"}, "dead-letter stream WORKFLOW_DLQ not found (WORKER_DLQ_STREAM)"},
		{[]string{"redrive", "--all"}, "dead-letter stream WORKFLOW_DLQ not found"},
		{[]string{}, "dlq: no command given"},
		{[]string{"drop"}, `dlq: unknown command "drop"`},
		{[]string{"list", "--since", "yesterday"}, `--since "yesterday" is not an RFC 3339 time`},
		{[]string{"list", "--subject", "a.>.b"}, "> must be the last token"},
		{[]string{"list", "--limit", "-1"}, "--limit -1: must not be negative"},
		{[]string{"list", "7"}, `unexpected argument "7"`},
		{[]string{"show"}, "give the sequence number of at least one dead letter"},
		{[]string{"show", "x"}, `"x" is not a dead-letter sequence number`},
		{[]string{"redrive"}, "choose the dead letters: SEQ..., --grep TEXT, --subject S, --since TIME, or --all"},
		{[]string{"purge", "--limit", "3"}, "choose the dead letters"},
		{[]string{"redrive", "3", "--all"}, "give sequence numbers or --grep/--subject/--since/--limit/--all, not both"},
		{[]string{"purge", "--all", "--grep", "x"}, "--all chooses every dead letter"},
		{[]string{"redrive", "--all", "--progress", "fancy"}, `--progress "fancy"`},
	} {
		_, errOut, code := dlqRun(t, cfg, tt.args...)
		if code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("dlq %v: exit %d, stderr %q; want it to contain %q", tt.args, code, errOut, tt.want)
		}
	}
	if out, _, code := dlqRun(t, cfg, "-h"); code != 0 || !strings.Contains(out, "usage: worker dlq COMMAND") {
		t.Errorf("dlq -h: exit %d %q", code, out)
	}
	if _, errOut, code := dlqRun(t, cfg, "redrive", "-h"); code != 0 || !strings.Contains(errOut, "-dry-run") {
		t.Errorf("dlq redrive -h: exit %d %q", code, errOut)
	}
}

// TestDLQListLarge: a listing of many letters streams every one, in order.
func TestDLQListLarge(t *testing.T) {
	srv := natstest.Start(t)
	createDLQStream(t, srv.JS)
	cfg := testConfig(t, srv.ClientURL())
	const n = 20_000
	publishBulkLetters(t, srv.JS, n)
	out := dlqOK(t, cfg, "list")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n+1 {
		t.Fatalf("list printed %d lines, want %d", len(lines), n+1)
	}
	for i, line := range lines[1:] {
		f := strings.Fields(line)
		if f[0] != strconv.Itoa(i+1) || f[3] != fmt.Sprint("bulk-", i) {
			t.Fatalf("line %d: %q", i+1, line)
		}
	}
}

func TestDLQProgress(t *testing.T) {
	var errOut bytes.Buffer
	if p, err := newDLQProgress("auto", &bytes.Buffer{}, &errOut); err != nil || p != nil {
		t.Errorf("auto off a terminal: %v, %v (want no progress)", p, err)
	}
	p, err := newDLQProgress("bar", &bytes.Buffer{}, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	p.interval, p.total = 0, 10
	p.tick(3, 1)
	p.finish()
	if got := errOut.String(); !strings.HasPrefix(got, "\r\033[K[============                  ] redrive: 4/10 letters, 1 failed, ") || !strings.HasSuffix(got, "\r\033[K") {
		t.Errorf("bar: %q", got)
	}
	errOut.Reset()
	p, _ = newDLQProgress("lines", &bytes.Buffer{}, &errOut)
	p.interval, p.total = 0, 10
	p.tick(10, 0)
	if got := errOut.String(); !strings.HasPrefix(got, "redrive: 10/10 letters, 0 failed, ") || !strings.HasSuffix(got, " letters/s\n") {
		t.Errorf("lines: %q", got)
	}
}

// BenchmarkDLQRedrive redrives 10,000 dead letters per iteration (with
// `worker dlq redrive --all`): publish, PubAck, delete, one letter at a time.
func BenchmarkDLQRedrive(b *testing.B) {
	srv := natstest.Start(b)
	if _, err := srv.JS.CreateStream(b.Context(), jetstream.StreamConfig{Name: "WORKFLOW_RESULTS", Subjects: []string{"workflows.results.>"}, Duplicates: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	if _, err := srv.JS.CreateStream(b.Context(), jetstream.StreamConfig{Name: "WORKFLOW_DLQ", Subjects: []string{"workflows.dlq"}}); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load()
	if err != nil {
		b.Fatal(err)
	}
	cfg.NATSURL = srv.ClientURL()
	const n = 10_000
	for b.Loop() {
		b.StopTimer()
		publishBulkLetters(b, srv.JS, n)
		b.StartTimer()
		var out, errOut bytes.Buffer
		if err := dlqCmd(b.Context(), cfg, []string{"redrive", "--all"}, &out, &errOut); err != nil {
			b.Fatalf("%v\n%s", err, errOut.String())
		}
		if !strings.HasSuffix(out.String(), fmt.Sprintf("redrive: %d redriven (0 already stored by an earlier redrive), 0 failed\n", n)) {
			b.Fatalf("redrive: %s", out.String()[max(0, out.Len()-200):])
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "letters/s")
}

// publishBulkLetters stores n dead letters bulk-0… of the subject
// workflows.results.bulk, through natstest.PublishAll.
func publishBulkLetters(tb testing.TB, js jetstream.JetStream, n int) {
	tb.Helper()
	natstest.PublishAll(tb, js, n, func(i int) *nats.Msg {
		msg := nats.NewMsg("workflows.dlq")
		msg.Data = fmt.Appendf(nil, `{"id":"bulk-%d","name":"wf"}`, i)
		msg.Header.Set(consumer.HeaderError, "rejected by the OTLP receiver (status 400)")
		msg.Header.Set(consumer.HeaderSubject, "workflows.results.bulk")
		return msg
	})
}

// TestDLQRedriveAndPurgeSelection: --subject, --since and --limit choose
// the letters redrive and purge act on, as they do for list.
func TestDLQRedriveAndPurgeSelection(t *testing.T) {
	srv := natstest.Start(t)
	createStream(t, srv.JS)
	createDLQStream(t, srv.JS)
	cfg := testConfig(t, srv.ClientURL())
	putLetter(t, srv.JS, "workflows.results.eu.a", "eu-1", "why", "")
	putLetter(t, srv.JS, "workflows.results.us", "us-1", "why", "")
	putLetter(t, srv.JS, "workflows.results.eu.b", "eu-2", "why", "")
	third := dlqJSON(t, cfg)[2].Time

	for _, tt := range []struct {
		args []string
		want string // the seqs chosen
	}{
		{[]string{"--subject", "workflows.results.eu.*"}, "1 3"},
		{[]string{"--subject", "workflows.results.>", "--limit", "2"}, "1 2"},
		{[]string{"--since", third}, "3"},
		{[]string{"--all", "--limit", "1"}, "1"},
		{[]string{"3", "1"}, "3 1"},
	} {
		out := dlqOK(t, cfg, append([]string{"redrive", "--dry-run"}, tt.args...)...)
		var got []string
		for line := range strings.Lines(out) {
			if f := strings.Fields(line); f[0] == "would" {
				got = append(got, f[2])
			}
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("redrive --dry-run %v chose %v, want %s", tt.args, got, tt.want)
		}
		out = dlqOK(t, cfg, append([]string{"purge", "--dry-run"}, tt.args...)...)
		if n := len(strings.Fields(tt.want)); !strings.HasPrefix(out, fmt.Sprintf("purge: %s would be deleted", deadLetters(uint64(n)))) {
			t.Errorf("purge --dry-run %v: %q, want %d", tt.args, out, n)
		}
	}
	if n := len(srv.StreamMsgs(t, "WORKFLOW_RESULTS")); n != 0 {
		t.Fatalf("a dry run published %d results", n)
	}

	out := dlqOK(t, cfg, "redrive", "--subject", "workflows.results.eu.*")
	if !strings.Contains(out, "redriven 1 (id eu-1) to workflows.results.eu.a: WORKFLOW_RESULTS seq 1\n") ||
		!strings.Contains(out, "redriven 3 (id eu-2) to workflows.results.eu.b: WORKFLOW_RESULTS seq 2\n") {
		t.Errorf("redrive --subject:\n%s", out)
	}
	if out := dlqOK(t, cfg, "purge", "--subject", "workflows.results.us"); out != "purge: deleted 1 dead letter from WORKFLOW_DLQ\n" {
		t.Errorf("purge --subject: %q", out)
	}
	if n := len(srv.StreamMsgs(t, "WORKFLOW_DLQ")); n != 0 {
		t.Errorf("%d letters left", n)
	}
}
