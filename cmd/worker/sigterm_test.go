package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/internal/otlptest"
)

var workerBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "spanferry-worker-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "worker")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", errors.New(string(out))
	}
	return bin, nil
})

// process is the worker binary running as a child process.
type process struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{}
	err    error
}

func startProcess(t *testing.T, env ...string) *process {
	t.Helper()
	bin, err := workerBinary()
	if err != nil {
		t.Fatalf("build the worker: %v", err)
	}
	p := &process{cmd: exec.Command(bin, "run"), stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "WORKER_DATA_DIR=" + t.TempDir(), "WORKER_HTTP_ADDR=127.0.0.1:0"}, env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("worker stderr:\n%s", p.stderr)
		}
	})
	return p
}

// wait returns the exit error, or fails the test when the process is still
// running after d.
func (p *process) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		t.Fatalf("worker still running after %s", d)
		return nil
	}
}

// TestSIGTERMMidBatch sends SIGTERM to the real binary while exports are
// held by the receiver: the worker stops fetching, finishes and acks what
// it holds, exits 0, and a restarted worker delivers the rest — every
// result exactly once.
func TestSIGTERMMidBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the worker binary")
	}
	srv := natstest.Start(t)
	recv := otlptest.StartT(t)
	createStream(t, srv.JS)
	ids := publishResults(t, srv.JS, "term", 300)

	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	recv.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return otlptest.Response{}
	})
	env := []string{
		"NATS_URL=" + srv.ClientURL(),
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + recv.TracesURL(),
		"WORKER_BATCH_SIZE=20",
		"WORKER_SHUTDOWN_TIMEOUT=20s",
	}
	p := startProcess(t, env...)
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no export request within 30s")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	await(t, "the worker to stop fetching", func() bool { return strings.Contains(p.stderr.String(), "stopping: no more fetches") })
	close(release) // the exports held so far now succeed
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Fatalf("worker exit: %v (want exit 0)", err)
	}

	info := consumerInfo(t, srv.JS)
	if info.NumAckPending != 0 {
		t.Errorf("%d messages left unacknowledged by the stopped worker", info.NumAckPending)
	}
	done := len(roots(recv))
	if done == 0 || info.NumPending == 0 {
		t.Fatalf("exported %d and left %d pending: the SIGTERM did not land mid-run", done, info.NumPending)
	}
	if uint64(done)+info.NumPending != uint64(len(ids)) {
		t.Errorf("exported %d + pending %d != %d published", done, info.NumPending, len(ids))
	}
	t.Logf("SIGTERM: %d results exported and acked before exit, %d left for the restart", done, info.NumPending)

	p2 := startProcess(t, env...)
	await(t, "every result after the restart", func() bool { return len(roots(recv)) == len(ids) })
	awaitSettled(t, srv.JS)
	assertExactlyOnce(t, recv, ids)
	if err := p2.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := p2.wait(t, 30*time.Second); err != nil {
		t.Errorf("worker exit after SIGINT: %v (want exit 0)", err)
	}
}
