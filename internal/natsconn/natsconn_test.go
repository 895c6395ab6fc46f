package natsconn_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/natsconn"
)

// logSink captures a JSON slog output and lets a test wait for a line.
type logSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logSink) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor blocks until the log holds substr.
func (l *logSink) waitFor(t *testing.T, substr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		l.mu.Lock()
		found, changed := strings.Contains(l.buf.String(), substr), l.changed
		l.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("log never contained %q; log:\n%s", substr, l.String())
		}
	}
}

// assertNoSecrets fails if any secret appears in text.
func assertNoSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the secret %q:\n%s", what, s, text)
		}
	}
}

// startServer starts a nats-server with opts on 127.0.0.1 and a free port
// unless opts sets one, and shuts it down when the test ends.
func startServer(t *testing.T, opts server.Options) *server.Server {
	t.Helper()
	opts.Host = "127.0.0.1"
	if opts.Port == 0 {
		opts.Port = -1
	}
	opts.NoSigs = true
	s, err := server.NewServer(&opts)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

func serverURL(s *server.Server) string {
	return "nats://" + s.Addr().String()
}

func connect(t *testing.T, cfg config.Config, log *slog.Logger) (*nats.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	nc, err := natsconn.Connect(ctx, cfg, log, nats.Name("natsconn-test"))
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

func TestStartEmbeddedJetStream(t *testing.T) {
	logs := newLogSink()
	dir := t.TempDir()
	s, err := natsconn.StartEmbedded(dir, "127.0.0.1", -1, logs.logger())
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})

	nc, err := connect(t, config.Config{NATSURL: s.ClientURL()}, logs.logger())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RESULTS", Subjects: []string{"workflows.results.>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	ack, err := js.Publish(ctx, "workflows.results.x", []byte(`{"id":"a"}`))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if ack.Stream != "RESULTS" || ack.Sequence != 1 {
		t.Errorf("ack = %+v, want stream RESULTS seq 1", ack)
	}
	// The store is where the contract puts it: WORKER_DATA_DIR/jetstream.
	matches, err := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", "RESULTS"))
	if err != nil || len(matches) != 1 {
		t.Errorf("stream store under %s/jetstream: matches %v, err %v", dir, matches, err)
	}
	if !strings.Contains(logs.String(), "embedded nats server started") {
		t.Errorf("no start line in log:\n%s", logs.String())
	}
}

func TestStartEmbeddedPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	start := time.Now()
	s, err := natsconn.StartEmbedded(t.TempDir(), "127.0.0.1", port, newLogSink().logger())
	if err == nil {
		s.Shutdown()
		t.Fatal("StartEmbedded on a taken port succeeded")
	}
	if !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Errorf("error %q should name the address and that it is in use", err)
	}
	// It must not wait out the readiness timeout.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failing took %s", d)
	}
}

func TestConnectUserPassword(t *testing.T) {
	const user, password, wrong = "worker", "pw-Zr9xq-correct-horse", "pw-Kq2bb-wrong-battery"
	s := startServer(t, server.Options{Username: user, Password: password})
	logs := newLogSink()

	nc, err := connect(t, config.Config{NATSURL: serverURL(s), NATSUser: user, NATSPassword: password}, logs.logger())
	if err != nil {
		t.Fatalf("right credentials: %v", err)
	}
	if !nc.IsConnected() {
		t.Error("not connected")
	}

	start := time.Now()
	_, err = connect(t, config.Config{NATSURL: serverURL(s), NATSUser: user, NATSPassword: wrong}, logs.logger())
	if err == nil {
		t.Fatal("wrong password connected")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("wrong credentials took %s to fail; they must fail fast", d)
	}
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("error %v does not wrap nats.ErrAuthorization", err)
	}
	for _, want := range []string{"authorization failed", "NATS_USER/NATS_PASSWORD", serverURL(s)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	assertNoSecrets(t, "error", err.Error(), password, wrong)

	// Credentials in the URL are redacted in the error.
	withUserinfo := "nats://" + user + ":" + wrong + "@" + s.Addr().String()
	_, err = connect(t, config.Config{NATSURL: withUserinfo}, logs.logger())
	if err == nil {
		t.Fatal("wrong password in URL connected")
	}
	if !strings.Contains(err.Error(), "nats://"+user+":***@"+s.Addr().String()) || !strings.Contains(err.Error(), "userinfo of NATS_URL") {
		t.Errorf("error %q should name the redacted URL and its userinfo", err)
	}
	assertNoSecrets(t, "error", err.Error(), password, wrong)
	assertNoSecrets(t, "log", logs.String(), password, wrong)
}

func TestConnectToken(t *testing.T) {
	const token, wrong = "tok-8c1f0e77-right", "tok-3b9d2a11-wrong"
	s := startServer(t, server.Options{Authorization: token})
	logs := newLogSink()

	if _, err := connect(t, config.Config{NATSURL: serverURL(s), NATSToken: token}, logs.logger()); err != nil {
		t.Fatalf("right token: %v", err)
	}
	_, err := connect(t, config.Config{NATSURL: serverURL(s), NATSToken: wrong}, logs.logger())
	if err == nil {
		t.Fatal("wrong token connected")
	}
	if !strings.Contains(err.Error(), "authorization failed") || !strings.Contains(err.Error(), "NATS_TOKEN") {
		t.Errorf("error %q should name authorization and NATS_TOKEN", err)
	}
	// No credentials at all: the hint lists what can be set.
	_, err = connect(t, config.Config{NATSURL: serverURL(s)}, logs.logger())
	if err == nil || !strings.Contains(err.Error(), "requires credentials") {
		t.Errorf("no credentials: error %v should say the server requires credentials", err)
	}
	// A token in the URL is redacted as a whole.
	_, err = connect(t, config.Config{NATSURL: "nats://" + wrong + "@" + s.Addr().String()}, logs.logger())
	if err == nil || !strings.Contains(err.Error(), "nats://***@"+s.Addr().String()) {
		t.Errorf("token URL: error %v should show the redacted URL", err)
	}
	assertNoSecrets(t, "error", err.Error(), token, wrong)
	assertNoSecrets(t, "log", logs.String(), token, wrong)
}

func TestConnectNkeySeed(t *testing.T) {
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()

	s := startServer(t, server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	dir := t.TempDir()
	seedFile := filepath.Join(dir, "user.nk")
	otherFile := filepath.Join(dir, "other.nk")
	if err := os.WriteFile(seedFile, append(seed, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherFile, otherSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := newLogSink()

	if _, err := connect(t, config.Config{NATSURL: serverURL(s), NATSNKeySeed: seedFile}, logs.logger()); err != nil {
		t.Fatalf("right seed: %v", err)
	}
	_, err = connect(t, config.Config{NATSURL: serverURL(s), NATSNKeySeed: otherFile}, logs.logger())
	if err == nil || !strings.Contains(err.Error(), "authorization failed") || !strings.Contains(err.Error(), "NATS_NKEY_SEED") {
		t.Errorf("unknown nkey: error %v should name authorization and NATS_NKEY_SEED", err)
	}
	_, err = connect(t, config.Config{NATSURL: serverURL(s), NATSNKeySeed: filepath.Join(dir, "missing.nk")}, logs.logger())
	if err == nil || !strings.Contains(err.Error(), "NATS_NKEY_SEED") {
		t.Errorf("missing seed file: error %v should name NATS_NKEY_SEED", err)
	}
	assertNoSecrets(t, "log", logs.String(), string(seed), string(otherSeed))
}

func TestConnectMissingFilesNameTheirVariable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		cfg  config.Config
		want string
	}{
		{config.Config{NATSCreds: missing}, "NATS_CREDS"},
		{config.Config{NATSTLSCA: missing}, "NATS_TLS_CA"},
		{config.Config{NATSTLSCert: missing, NATSTLSKey: missing}, "NATS_TLS_CERT"},
	} {
		tc.cfg.NATSURL = "nats://127.0.0.1:1"
		_, err := connect(t, tc.cfg, newLogSink().logger())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s missing: error %v should name it", tc.want, err)
		}
	}
}

func TestConnectNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	_, err = connect(t, config.Config{NATSURL: "nats://u:pw-unreachable@" + addr}, newLogSink().logger())
	if err == nil {
		t.Fatal("connected to nothing")
	}
	if !strings.Contains(err.Error(), "no server reachable") || !strings.Contains(err.Error(), "nats://u:***@"+addr) {
		t.Errorf("error %q should say no server is reachable at the redacted URL", err)
	}
	assertNoSecrets(t, "error", err.Error(), "pw-unreachable")
}

// TestConnectSurvivesRestart restarts the server on the same port: the
// connection must come back, and the log must say so without any secret.
func TestConnectSurvivesRestart(t *testing.T) {
	const user, password = "worker", "pw-restart-Xy81"
	opts := server.Options{Username: user, Password: password}
	s := startServer(t, opts)
	port := s.Addr().(*net.TCPAddr).Port
	logs := newLogSink()

	nc, err := connect(t, config.Config{NATSURL: "nats://" + user + ":" + password + "@" + s.Addr().String()}, logs.logger())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	logs.waitFor(t, "connected to nats")

	s.Shutdown()
	s.WaitForShutdown()
	logs.waitFor(t, "nats disconnected")

	opts.Port = port
	startServer(t, opts)
	logs.waitFor(t, "nats reconnected")
	if !nc.IsConnected() {
		t.Error("not connected after the reconnect handler ran")
	}
	if err := nc.Flush(); err != nil {
		t.Errorf("flush after reconnect: %v", err)
	}
	nc.Close()
	logs.waitFor(t, "nats connection closed")

	out := logs.String()
	assertNoSecrets(t, "log", out, password)
	if !strings.Contains(out, "nats://"+user+":***@") {
		t.Errorf("log should show the redacted URL:\n%s", out)
	}
}
