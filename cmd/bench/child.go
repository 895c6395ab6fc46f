package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The bench runs the pipeline under test, and the receiver, as child
// processes of its own binary (os.Executable, also under go run), so that
// each one's CPU time and peak RSS are its own: the embedded JetStream
// server and the publisher stay in the parent. A child is started with a
// role name as its first argument and speaks JSON lines on stdout.
const (
	roleWorker   = "_worker"   // the consumer package, wired as cmd/worker wires it
	roleRaw      = "_raw"      // a plain JetStream pull consumer that only acks
	roleReceiver = "_receiver" // internal/otlptest, decoding every request
)

// event is a line a child writes: "ready" once it can work, "done" with
// its figures, "stats" answering the receiver's report command.
type event struct {
	Event string `json:"event"`
	Err   string `json:"err,omitempty"`
	URL   string `json:"url,omitempty"`

	Results  int     `json:"results,omitempty"`
	Spans    int     `json:"spans,omitempty"`
	Requests int     `json:"requests,omitempty"`
	Elapsed  float64 `json:"elapsed_s,omitempty"` // first fetch → last ack flushed
	CPU      float64 `json:"cpu_s,omitempty"`     // user + system over Elapsed (the receiver: since reset)
	MaxRSS   int64   `json:"max_rss,omitempty"`   // bytes, getrusage of the child
	PeakHeap uint64  `json:"peak_heap,omitempty"` // bytes of live and unswept heap objects, sampled every 50ms
	P50      float64 `json:"p50_ms,omitempty"`
	P99      float64 `json:"p99_ms,omitempty"`
	Max      float64 `json:"max_ms,omitempty"`
	StartNs  int64   `json:"start_ns,omitempty"` // a fleet replay process: its first fetch, unix ns
	EndNs    int64   `json:"end_ns,omitempty"`   // and its last ack
}

func emit(e event) {
	data, _ := json.Marshal(e)
	os.Stdout.Write(append(data, '\n'))
}

// child is a running child process.
type child struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	role string
}

func startChild(role string, args, env []string, stderr io.Writer) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{role}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &child{cmd: cmd, in: in, out: bufio.NewScanner(out), role: role}, nil
}

// next reads the child's next event; an "error" event becomes an error.
func (c *child) next() (event, error) {
	if !c.out.Scan() {
		err := c.out.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		_ = c.cmd.Wait()
		return event{}, fmt.Errorf("%s exited early (%v): %w", c.role, c.cmd.ProcessState, err)
	}
	var e event
	if err := json.Unmarshal(c.out.Bytes(), &e); err != nil {
		return e, fmt.Errorf("%s: bad line %q: %w", c.role, c.out.Text(), err)
	}
	if e.Event == "error" {
		return e, fmt.Errorf("%s: %s", c.role, e.Err)
	}
	return e, nil
}

// expect reads the next event and checks its kind.
func (c *child) expect(kind string) (event, error) {
	e, err := c.next()
	if err == nil && e.Event != kind {
		err = fmt.Errorf("%s: expected %q, got %q", c.role, kind, e.Event)
	}
	return e, err
}

// send writes a command line to the child.
func (c *child) send(cmd string) error {
	_, err := io.WriteString(c.in, cmd+"\n")
	return err
}

// wait closes the child's stdin (its signal to exit) and waits for it,
// killing it after timeout.
func (c *child) wait(timeout time.Duration) error {
	c.in.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-done
		return errors.New(c.role + ": killed after " + timeout.String())
	}
}

// cpuTime returns the user + system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxRSS returns the peak resident set size of this process, in bytes:
// VmHWM of /proc/self/status. Not getrusage's ru_maxrss, which a child
// started by exec inherits from its parent's memory at the fork.
func maxRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
