package faulttest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names the worker uses by default (CONTRACT §4), which the tests keep.
const (
	streamName = "WORKFLOW_RESULTS"
	dlqStream  = "WORKFLOW_DLQ"
	dlqSubject = "workflows.dlq"
	durable    = "spanferry"
	subject    = "workflows.results.faulttest"
)

// natsServer is a nats-server process with JetStream on a fixed port and
// store directory, so that it can be killed and started again as an
// operator's restart would, and the test's own connection to it.
type natsServer struct {
	t    *testing.T
	bin  string
	conf string
	url  string
	proc *proc

	nc *nats.Conn
	js jetstream.JetStream
}

// startNATS starts nats-server with JetStream and a max payload of 4 MiB
// (room for the poison storm's oversized messages and their dead letters).
func startNATS(t *testing.T) *natsServer {
	t.Helper()
	_, bin := binaries(t)
	dir := t.TempDir()
	port := freePort(t)
	conf := filepath.Join(dir, "nats.conf")
	err := os.WriteFile(conf, fmt.Appendf(nil, `
server_name: faulttest
listen: 127.0.0.1:%d
max_payload: 4194304
jetstream {
  store_dir: %q
}
`, port, filepath.Join(dir, "store")), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s := &natsServer{t: t, bin: bin, conf: conf, url: fmt.Sprintf("nats://127.0.0.1:%d", port)}
	s.start()

	s.nc, err = nats.Connect(s.url, nats.Name("faulttest"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.nc.Close)
	if s.js, err = jetstream.New(s.nc); err != nil {
		t.Fatal(err)
	}
	return s
}

// start starts the process and waits until JetStream answers.
func (s *natsServer) start() {
	s.t.Helper()
	s.proc = startProc(s.t, "nats-server", s.bin, []string{"-c", s.conf}, []string{"PATH=" + os.Getenv("PATH")})
	await(s.t, 30*time.Second, "nats-server with JetStream ready", func() bool {
		if s.proc.exited() {
			s.t.Fatalf("nats-server exited: %s", s.proc.tail(20))
		}
		nc, err := nats.Connect(s.url, nats.Timeout(time.Second))
		if err != nil {
			return false
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = js.AccountInfo(ctx)
		return err == nil
	})
}

// kill9 kills the server (SIGKILL): no shutdown, no flush.
func (s *natsServer) kill9() { s.proc.kill9(s.t) }

// restart starts the server again on the same port and store, and
// returns when it was ready for clients.
func (s *natsServer) restart() time.Time {
	s.t.Helper()
	s.start()
	ready := time.Now()
	await(s.t, 30*time.Second, "the test's own connection back", s.nc.IsConnected)
	return ready
}

// createStream creates the results stream as an operator would (the
// worker creates it the same way when missing), so that a backlog can be
// published before any worker runs.
func (s *natsServer) createStream() {
	s.t.Helper()
	_, err := s.js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: streamName, Subjects: []string{"workflows.results.>"}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

func (s *natsServer) consumerInfo() (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := s.js.Consumer(ctx, streamName, durable)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

// settled reports whether the durable consumer has nothing left: no
// message pending and none delivered without an ack.
func (s *natsServer) settled() bool {
	info, err := s.consumerInfo()
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

// awaitSettled waits until the durable consumer is settled and returns its
// final info.
func (s *natsServer) awaitSettled(timeout time.Duration) *jetstream.ConsumerInfo {
	s.t.Helper()
	await(s.t, timeout, "the durable consumer settled (nothing pending, nothing unacked)", s.settled)
	info, err := s.consumerInfo()
	if err != nil {
		s.t.Fatal(err)
	}
	return info
}

// streamMsgs returns the number of messages stored in a stream, 0 when it
// does not exist. On a cluster whose server was just killed the stream may
// have no leader for a few seconds: it asks again for up to 30 s.
func (s *natsServer) streamMsgs(name string) uint64 {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := s.streamMsgsOnce(name)
		if err == nil {
			return n
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("stream %s: %v", name, err)
		}
		time.Sleep(250 * time.Millisecond) // polling a server's answer, not waiting for an effect
	}
}

func (s *natsServer) streamMsgsOnce(name string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// deadLetters returns every message of the dead-letter stream.
func (s *natsServer) deadLetters() []*jetstream.RawStreamMsg {
	s.t.Helper()
	ctx := context.Background()
	st, err := s.js.Stream(ctx, dlqStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			s.t.Fatalf("dead letter %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// worker is a worker process.
type worker struct {
	*proc
	name string
	addr string // of /metrics, /healthz, /readyz
}

// workerEnv is the environment of a worker: exactly these variables. The
// worker's name is added as the resource attribute faulttest.worker, so
// that the receiver knows who exported what.
func workerEnv(t *testing.T, s *natsServer, k *sink, name string, port int, extra map[string]string) []string {
	home := os.Getenv("HOME")
	if home == "" {
		home = t.TempDir()
	}
	env := map[string]string{
		"PATH":                               os.Getenv("PATH"),
		"HOME":                               home,
		"NATS_URL":                           s.url,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": k.recv.TracesURL(),
		"OTEL_RESOURCE_ATTRIBUTES":           "faulttest.worker=" + name,
		"WORKER_HTTP_ADDR":                   fmt.Sprintf("127.0.0.1:%d", port),
		"WORKER_DATA_DIR":                    t.TempDir(),
		"WORKER_ACK_WAIT":                    "5s",
		"WORKER_SHUTDOWN_TIMEOUT":            "10s",
		"WORKER_LOG_LEVEL":                   "info",
	}
	maps.Copy(env, extra)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// startWorker starts a worker and waits until /readyz says it is bound to
// the durable consumer.
func startWorker(t *testing.T, s *natsServer, k *sink, name string, extra map[string]string) *worker {
	t.Helper()
	bin, _ := binaries(t)
	for try := 0; ; try++ {
		port := freePort(t)
		w := &worker{name: name, addr: fmt.Sprintf("127.0.0.1:%d", port)}
		w.proc = startProc(t, name, bin, nil, workerEnv(t, s, k, name, port, extra))
		var lost bool
		await(t, 60*time.Second, name+" ready", func() bool {
			if w.exited() {
				// The free port may have been taken meanwhile: try another.
				if lost = strings.Contains(w.log(), "address already in use") && try < 3; lost {
					return true
				}
				t.Fatalf("%s exited with %v:\n%s", name, w.waitErr, w.tail(20))
			}
			code, _ := w.get("/readyz")
			return code == http.StatusOK
		})
		if !lost {
			return w
		}
	}
}

func (w *worker) get(path string) (int, string) { return httpGet("http://" + w.addr + path) }

// metrics scrapes /metrics.
func (w *worker) metrics(t *testing.T) metrics {
	t.Helper()
	code, body := w.get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("%s /metrics: %d %s", w.name, code, body)
	}
	return parseMetrics(body)
}

func (w *worker) ready() bool {
	code, _ := w.get("/readyz")
	return code == http.StatusOK
}
