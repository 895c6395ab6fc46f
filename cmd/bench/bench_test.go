package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spanferry/spanferry/mapping"
)

// TestMain lets the test binary play the bench's child roles: the smoke
// test starts children with os.Executable, which is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "_") {
		os.Exit(runRole(os.Args[1], os.Args[2:]))
	}
	os.Exit(m.Run())
}

// TestBodies checks that rendered results are valid, carry their id and
// publish time, and map to one span per step plus the root.
func TestBodies(t *testing.T) {
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 11, 24, 10, 0, 2, 123456789, time.UTC)
	for _, steps := range []int{8, 0, 3, 20} {
		b, err := newBody(steps)
		if err != nil {
			t.Fatal(err)
		}
		data := b.render(nil, "run-42", end)
		d, err := m.Decode(data, mapping.Source{})
		if err != nil {
			t.Fatalf("%d steps: %v\n%s", steps, err, data)
		}
		if d.Result.ID != "run-42" || d.Result.EndedAt != "2026-11-24T10:00:02.123456789Z" || d.Result.StartedAt != "2026-11-24T09:59:59.773456789Z" {
			t.Errorf("%d steps: id %q, started_at %q, ended_at %q", steps, d.Result.ID, d.Result.StartedAt, d.Result.EndedAt)
		}
		if d.Steps() != steps || b.spans != steps+1 {
			t.Errorf("%d steps: decoded %d steps, body says %d spans", steps, d.Steps(), b.spans)
		}
		if len(b.render(nil, "run-43", end.Add(time.Hour))) != len(data) {
			t.Errorf("%d steps: results of the same id length differ in size", steps)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h hist
	if h.quantile(0.5) != 0 {
		t.Fatal("empty histogram has a median")
	}
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.quantile(c.q)
		if diff := float64(got-c.want) / float64(c.want); diff < -0.04 || diff > 0.04 {
			t.Errorf("quantile(%v) = %v, want %v ± 4%%", c.q, got, c.want)
		}
	}
	for us := uint64(0); us < 1<<20; us = us*9/8 + 1 {
		if i := histIndex(us); histLow(i) > us || histLow(i+1) <= us {
			t.Fatalf("%dµs in bucket %d of [%d, %d)", us, i, histLow(i), histLow(i+1))
		}
	}
}

// TestSmoke runs every section on a few hundred results: the bench's
// plumbing, not its figures.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JetStream server and a dozen processes")
	}
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(out, []byte("# Benchmarks\n\nprose\n\n"+beginMarker+"\nold\n"+endMarker+"\n\nafter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"-n", "200", "-ref-n", "50", "-repeat", "1", "-batch-sizes", "1,50", "-sizes", "100",
		"-rate", "200", "-duration", "1s", "-backlog", "300", "-dir", t.TempDir(), "-out", out}
	// The hotpath section is testing.Benchmark: a second per figure.
	sections := "main,batches,sizes,paced,backlog,tenants,redact,fleet"
	want := []string{"prose", "after", "### Worker against raw JetStream", "### Batch size", "### Backlog size",
		"### Steady 200 results/s", "### Backlog of 300 results", "### Tenants", "while tenant B is down", "### Redaction rules (50 results",
		"### Fleet replay", "### Targets", "-n 200"}
	if raceEnabled {
		sections = "backlog"
		want = []string{"prose", "after", "### Backlog of 300 results", "### Targets"}
	}
	args = append(args, "-sections", sections)
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	doc, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !bytes.Contains(doc, []byte(w)) {
			t.Errorf("report lacks %q:\n%s", w, doc)
		}
	}
	if bytes.Contains(doc, []byte("old")) {
		t.Errorf("the old report was kept:\n%s", doc)
	}
}

func TestWriteReportAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.md")
	if err := os.WriteFile(path, []byte("# B\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := writeReport(path, "figures\n"); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(path)
	if want := "# B\n\n" + beginMarker + "\nfigures\n" + endMarker + "\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEventRoundTrip(t *testing.T) {
	data, _ := json.Marshal(event{Event: "done", Results: 3, Elapsed: 1.5})
	var e event
	if err := json.Unmarshal(data, &e); err != nil || e.Results != 3 || e.Elapsed != 1.5 {
		t.Fatalf("%s → %+v, %v", data, e, err)
	}
}
