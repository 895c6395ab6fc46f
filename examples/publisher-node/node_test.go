// Package publishernode tests the Node.js publisher of the README end to
// end: the official @nats-io/jetstream client, installed from its lock
// file, publishing to a real JetStream server.
package publishernode

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spanferry/spanferry/examples/internal/publishtest"
)

// offline matches the line of npm's error for a registry it cannot reach.
var offline = regexp.MustCompile(`(?m)^.*(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network).*$`)

func TestPublisherNode(t *testing.T) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the Node.js publisher is not tested: %s is not installed (%v)", tool, err)
		}
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "publish.mjs"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	install := command(t, dir, 3*time.Minute, "npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error",
		"--fetch-retries=1", "--fetch-retry-mintimeout=1000", "--fetch-retry-maxtimeout=2000", "--fetch-timeout=30000")
	if out, err := install.CombinedOutput(); err != nil {
		if line := offline.Find(out); line != nil {
			t.Skipf("the Node.js publisher is not tested: npm ci cannot reach the registry: %s", line)
		}
		t.Fatalf("npm ci: %v\n%s", err, out)
	}

	srv := publishtest.Start(t)
	const id = "run_node_example"
	for i, want := range []string{"stream WORKFLOW_RESULTS, seq 1\n", "stream WORKFLOW_RESULTS, seq 1 (duplicate)\n"} {
		run := command(t, dir, 30*time.Second, "node", "publish.mjs")
		run.Env = append(os.Environ(), "NATS_URL="+srv.ClientURL(), "RESULT_ID="+id)
		out, err := run.CombinedOutput()
		if err != nil || !strings.HasSuffix(string(out), want) {
			t.Fatalf("node publish.mjs (run %d): %v: %q, want it to end with %q", i+1, err, out, want)
		}
	}

	d := publishtest.Stored(t, srv, "workflows.results.support", id)
	if d.Steps() != 2 || d.Result.Steps[1].Model != "gpt-4o" || d.Result.StartedAt == "" {
		t.Errorf("published %+v", d.Result)
	}
}

// command is a command run in dir, killed after timeout or at the test's end.
func command(t *testing.T, dir string, timeout time.Duration, name string, args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	return cmd
}
