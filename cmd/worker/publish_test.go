package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/natstest"
)

// publishServer is an embedded JetStream server for publish tests.
type publishServer struct {
	cfg config.Config
	srv *natstest.Server
}

// startPublishServer starts an embedded server on a free port and, when
// withStream, the stream a worker would create.
func startPublishServer(t *testing.T, withStream bool) publishServer {
	t.Helper()
	srv := natstest.Start(t)
	if withStream {
		_, err := srv.JS.CreateStream(t.Context(), jetstream.StreamConfig{Name: "WORKFLOW_RESULTS", Subjects: []string{"workflows.results.>"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return publishServer{
		cfg: config.Config{NATSURL: srv.ClientURL(), Subjects: []string{"workflows.results.>"}},
		srv: srv,
	}
}

// publish runs publishCmd and returns its stdout.
func (p publishServer) publish(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := publishCmd(t.Context(), p.cfg, args, strings.NewReader(stdin), &out, &errOut, slog.New(slog.DiscardHandler))
	return out.String(), err
}

// stored returns the messages of the stream, in order.
func (p publishServer) stored(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	return p.srv.StreamMsgs(t, "WORKFLOW_RESULTS")
}

// sourceObjects reads the objects of a test input independently of the code
// under test: the whole file as one value, or one value per non-blank line.
func sourceObjects(t *testing.T, data []byte, lines bool) []map[string]any {
	t.Helper()
	var out []map[string]any
	if !lines {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		switch v := v.(type) {
		case map[string]any:
			return []map[string]any{v}
		case []any:
			for _, o := range v {
				out = append(out, o.(map[string]any))
			}
			return out
		}
		t.Fatalf("unexpected source %T", v)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var o map[string]any
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestPublishObjectLinesAndStdinArray(t *testing.T) {
	srv := startPublishServer(t, true)
	const single, batch = "../../examples/agent-tools.json", "../../examples/batch.jsonl"
	stdin := `[
	  {"id": "stdin-1", "name": "a", "metadata": {"n": 1}},
	  {"name": "b", "id": "stdin-2", "steps": [{"name": "s", "input": "x  y"}]}
	]`

	out, err := srv.publish(t, stdin, single, batch, "-")
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	wantOut := "published 1 results from " + single + " to workflows.results.default (0 duplicates)\n" +
		"published 5 results from " + batch + " to workflows.results.default (0 duplicates)\n" +
		"published 2 results from stdin to workflows.results.default (0 duplicates)\n"
	if out != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, wantOut)
	}

	var want []map[string]any
	want = append(want, sourceObjects(t, readFile(t, single), false)...)
	want = append(want, sourceObjects(t, readFile(t, batch), true)...)
	want = append(want, sourceObjects(t, []byte(stdin), false)...)
	msgs := srv.stored(t)
	if len(msgs) != len(want) {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), len(want))
	}
	for i, m := range msgs {
		if got := m.Header.Get(jetstream.MsgIDHeader); got != want[i]["id"] {
			t.Errorf("message %d: Nats-Msg-Id %q, want %q", i, got, want[i]["id"])
		}
		if m.Subject != "workflows.results.default" {
			t.Errorf("message %d: subject %q", i, m.Subject)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, m.Data); err != nil || !bytes.Equal(compact.Bytes(), m.Data) {
			t.Errorf("message %d is not compact JSON: %s", i, m.Data)
		}
		var got map[string]any
		if err := json.Unmarshal(m.Data, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("message %d differs from its source:\n got %v\nwant %v", i, got, want[i])
		}
	}
}

func TestPublishTwiceStoresNoDuplicates(t *testing.T) {
	srv := startPublishServer(t, true)
	const batch = "../../examples/batch.jsonl"
	if _, err := srv.publish(t, "", batch); err != nil {
		t.Fatal(err)
	}
	out, err := srv.publish(t, "", batch)
	if err != nil {
		t.Fatal(err)
	}
	if want := "published 5 results from " + batch + " to workflows.results.default (5 duplicates)\n"; out != want {
		t.Errorf("second publish printed %q, want %q", out, want)
	}
	if n := len(srv.stored(t)); n != 5 {
		t.Errorf("stream holds %d messages after publishing 5 results twice", n)
	}
}

func TestPublishSubjectFlagAndManyResults(t *testing.T) {
	srv := startPublishServer(t, true)
	// More results than the ack window, to go through its waits.
	var lines strings.Builder
	const n = 3*publishWindow + 7
	for i := range n {
		fmt.Fprintf(&lines, "{\"id\": \"many-%d\", \"name\": \"w\"}\n\n", i)
	}
	out, err := srv.publish(t, lines.String(), "--subject", "workflows.results.tenant-a", "-")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("published %d results from stdin to workflows.results.tenant-a (0 duplicates)\n", n); out != want {
		t.Errorf("printed %q, want %q", out, want)
	}
	msgs := srv.stored(t)
	if len(msgs) != n {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		if m.Subject != "workflows.results.tenant-a" || m.Header.Get(jetstream.MsgIDHeader) != fmt.Sprintf("many-%d", i) {
			t.Fatalf("message %d: subject %q id %q", i, m.Subject, m.Header.Get(jetstream.MsgIDHeader))
		}
	}
}

func TestPublishRejectsResultsWithoutID(t *testing.T) {
	srv := startPublishServer(t, true)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"id\":\"ok-1\",\"name\":\"a\"}\n{\"name\":\"no id\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"missing id in a file", "", []string{"../../examples/agent-tools.json", bad}, bad + `[1]: no string "id"`},
		{"numeric id", `[{"id":"x"},{"id":"y"},{"id":42}]`, []string{"-"}, `stdin[2]: no string "id"`},
		{"not an object", `{"id":"x"} 7`, []string{"-"}, "stdin[1]: not a JSON object"},
		{"broken JSON", `{"id":"x"} {"id":`, []string{"-"}, "stdin: result 1:"},
		{"missing file", "", []string{filepath.Join(dir, "missing.json")}, "missing.json: no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := srv.publish(t, tc.stdin, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// Inputs are all read before anything is published.
	if n := len(srv.stored(t)); n != 0 {
		t.Errorf("stream holds %d messages although the input was invalid", n)
	}
}

func TestPublishWithoutStream(t *testing.T) {
	srv := startPublishServer(t, false)
	_, err := srv.publish(t, `{"id":"x","name":"n"}`, "-")
	want := "no stream captures subject workflows.results.default: is a worker with WORKER_CREATE_STREAM=true running, or is the stream created?"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one containing %q", err, want)
	}
}

func TestPublishUsageErrors(t *testing.T) {
	srv := startPublishServer(t, true)
	if _, err := srv.publish(t, ""); err == nil || !strings.Contains(err.Error(), "no FILE") {
		t.Errorf("no file: error %v", err)
	}
	if _, err := srv.publish(t, "", "--subject", "workflows.results.>", "-"); err == nil || !strings.Contains(err.Error(), "wildcard") {
		t.Errorf("wildcard subject: error %v", err)
	}
	var errOut bytes.Buffer
	err := publishCmd(t.Context(), srv.cfg, []string{"-h"}, nil, io.Discard, &errOut, slog.New(slog.DiscardHandler))
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut.String(), "usage: worker publish [--subject S] FILE...") {
		t.Errorf("-h: error %v, usage %q", err, errOut.String())
	}
}

func TestDefaultPublishSubject(t *testing.T) {
	for _, tc := range []struct {
		subjects []string
		want     string
	}{
		{[]string{"workflows.results.>", "other.>"}, "workflows.results.default"},
		{[]string{"results.*"}, "results.default"},
		{[]string{"a.*.b"}, "a.default.b"},
		{[]string{"plain.subject"}, "plain.subject"},
		{[]string{">"}, "default"},
		{nil, ""},
	} {
		if got := defaultPublishSubject(tc.subjects); got != tc.want {
			t.Errorf("defaultPublishSubject(%q) = %q, want %q", tc.subjects, got, tc.want)
		}
	}
}
