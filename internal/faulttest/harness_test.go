package faulttest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The binaries are built once per test process: the worker from this
// checkout into a directory removed when the tests end, nats-server into a
// cache directory keyed by its module version, since it never changes.
var (
	binOnce   sync.Once
	binDir    string
	workerBin string
	natsBin   string
	binErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries returns the paths of the worker and nats-server binaries,
// building them on first use. Tests that run processes call it first: it
// skips them under -short and off Linux (RSS is read from /proc).
func binaries(t *testing.T) (worker, natsServer string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: builds and runs the worker and nats-server binaries")
	}
	if runtime.GOOS != "linux" {
		t.Skip("runs processes and reads /proc: Linux only")
	}
	binOnce.Do(buildBinaries)
	if binErr != nil {
		t.Fatal(binErr)
	}
	return workerBin, natsBin
}

func buildBinaries() {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if binDir, binErr = os.MkdirTemp("", "spanferry-faulttest-"); binErr != nil {
		return
	}
	workerBin = filepath.Join(binDir, "worker")
	if bin := os.Getenv("FAULTTEST_WORKER_BIN"); bin != "" {
		// A worker built elsewhere: a fix being tried, a release.
		workerBin, binErr = filepath.Abs(bin)
	} else {
		binErr = buildWorker(goBin, workerBin)
	}
	if binErr != nil {
		return
	}
	natsBin, binErr = buildNATS(goBin)
}

func buildWorker(goBin, out string) error {
	args := []string{"build", "-o", out}
	if os.Getenv("FAULTTEST_WORKER_RACE") == "1" {
		args = append(args, "-race")
	}
	return goCmd(goBin, append(args, "github.com/spanferry/spanferry/cmd/worker")...)
}

// buildNATS builds nats-server at the version go.mod requires, once per
// machine: the binary is cached under the user's cache directory (or
// $FAULTTEST_CACHE), keyed by version and platform.
func buildNATS(goBin string) (string, error) {
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Version}}", "github.com/nats-io/nats-server/v2").Output()
	if err != nil {
		return "", fmt.Errorf("go list nats-server: %w", err)
	}
	version := strings.TrimSpace(string(out))
	cache := os.Getenv("FAULTTEST_CACHE")
	if cache == "" {
		if cache, err = os.UserCacheDir(); err != nil {
			cache = os.TempDir()
		}
		cache = filepath.Join(cache, "spanferry-faulttest")
	}
	bin := filepath.Join(cache, fmt.Sprintf("nats-server-%s-%s-%s", version, runtime.GOOS, runtime.GOARCH))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	// Built beside its final name and renamed, so that concurrent test
	// processes never run a half-written binary.
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	if err := goCmd(goBin, "build", "-o", tmp, "github.com/nats-io/nats-server/v2"); err != nil {
		return "", err
	}
	return bin, os.Rename(tmp, bin)
}

func goCmd(goBin string, args ...string) error {
	cmd := exec.Command(goBin, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// proc is a subprocess with its stdout and stderr in a log file. It is
// killed (SIGKILL) when the test ends, whatever happened.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	started time.Time

	done    chan struct{} // closed when the process has been waited for
	state   *os.ProcessState
	exitAt  time.Time
	waitErr error
}

// startProc starts bin with exactly env (no inherited variables).
func startProc(t *testing.T, name, bin string, args, env []string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, started: time.Now(), done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		p.state, p.exitAt = cmd.ProcessState, time.Now()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		<-p.done
		if t.Failed() {
			t.Logf("last lines of %s's log (%s):\n%s", name, logPath, p.tail(40))
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL, as `kill -9 PID` does. Killing an exited process
// does nothing.
func (p *proc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// kill9 kills the process and waits until it is gone.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	p.kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s survived SIGKILL for 10s", p.name)
	}
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
}

// wait waits for the process to exit and returns its exit code (-1 when a
// signal killed it).
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.state.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s", p.name, timeout)
		return 0
	}
}

func (p *proc) log() string {
	data, _ := os.ReadFile(p.logPath)
	return string(data)
}

func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.log(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// memory is what /proc/PID/status says of a process's resident memory.
type memory struct {
	RSS, HWM int64 // VmRSS and VmHWM (the peak), bytes
}

func (p *proc) memory() (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &m.RSS
		case "VmHWM":
			dst = &m.HWM
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("/proc/%d/status %s: %q", p.pid(), k, v)
		}
		*dst = kb << 10
	}
	if m.RSS == 0 {
		return memory{}, errors.New("no VmRSS (process gone?)")
	}
	return m, sc.Err()
}

// rssSampler records the largest VmRSS of a process, sampled every 100ms
// until stop.
type rssSampler struct {
	mu      sync.Mutex
	max     int64
	samples int
	stop    chan struct{}
	done    chan struct{}
}

func sampleRSS(p *proc) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if m, err := p.memory(); err == nil {
				s.mu.Lock()
				s.max, s.samples = max(s.max, m.RSS), s.samples+1
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// finish stops sampling and returns the largest VmRSS seen.
func (s *rssSampler) finish() (maxRSS int64, samples int) {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max, s.samples
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// await polls cond until it holds: process state, stream counters and
// receiver contents have no notification to wait on.
func await(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holdFault keeps a fault in place for d: the length of an outage is part
// of the scenario, not a synchronisation.
func holdFault(d time.Duration) { time.Sleep(d) }

func httpGet(url string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metrics is a Prometheus text exposition, by series ("name{labels}").
type metrics map[string]float64

func parseMetrics(text string) metrics {
	m := metrics{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// Series the tests read.
const (
	mAcked        = `spanferry_messages_total{outcome="acked"}`
	mRetried      = `spanferry_messages_total{outcome="retried"}`
	mDeadLettered = `spanferry_messages_total{outcome="dead_lettered"}`
	mAttempts     = `spanferry_export_duration_seconds_count`
	mInflight     = `spanferry_inflight_results`
	mResident     = `process_resident_memory_bytes`
)

// Reports: every test states what it observed in lines starting with
// "REPORT", also appended to $FAULTTEST_REPORT when set (scripts/fault.sh).
var reportMu sync.Mutex

func report(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf("REPORT %s: %s", t.Name(), fmt.Sprintf(format, args...))
	t.Log(line)
	path := os.Getenv("FAULTTEST_REPORT")
	if path == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("report file: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

// countLines counts the lines of a log that contain every one of parts.
func countLines(log string, parts ...string) int {
	n := 0
	for line := range strings.Lines(log) {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			n++
		}
	}
	return n
}
