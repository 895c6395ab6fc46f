package natsconn

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embeddedReadyTimeout bounds the wait for the embedded server to accept
// connections.
const embeddedReadyTimeout = 10 * time.Second

// StartEmbedded starts an in-process NATS server with JetStream, listening on
// host:port (port -1 picks a free port; read it back with s.ClientURL()) and
// keeping its JetStream store under dataDir/jetstream, which it creates. The
// server installs no signal handlers: the caller owns SIGTERM. Its log lines go
// to log, notices at debug level and warnings and errors at their own.
//
// It returns once the server accepts connections, or an error naming the
// cause, such as the address being in use. The caller stops the server with
// s.Shutdown() followed by s.WaitForShutdown().
func StartEmbedded(dataDir string, host string, port int, log *slog.Logger) (*server.Server, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	// The server appends "jetstream" to StoreDir itself.
	if err := os.MkdirAll(filepath.Join(dataDir, server.JetStreamStoreDir), 0o750); err != nil {
		return nil, fmt.Errorf("embedded nats: create data dir: %w", err)
	}
	opts := &server.Options{
		ServerName: "spanferry-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dataDir,
		NoSigs:     true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats on %s: %w", addr, err)
	}
	logger := &slogLogger{log: log.With("component", "nats-server")}
	s.SetLoggerV2(logger, false, false, false)

	// Start listens synchronously and reports failures (address in use, a
	// store it cannot write) only through Fatalf, which the adapter records;
	// without that ReadyForConnections would just time out.
	s.Start()
	if msg := logger.fatal(); msg != "" {
		s.Shutdown()
		s.WaitForShutdown()
		if strings.Contains(msg, "address already in use") {
			msg += " (is another worker or nats-server running there? set NATS_URL to use it)"
		}
		return nil, fmt.Errorf("embedded nats on %s: %s", addr, msg)
	}
	if !s.ReadyForConnections(embeddedReadyTimeout) {
		s.Shutdown()
		s.WaitForShutdown()
		if msg := logger.fatal(); msg != "" {
			return nil, fmt.Errorf("embedded nats on %s: %s", addr, msg)
		}
		return nil, fmt.Errorf("embedded nats on %s: not ready for connections after %s", addr, embeddedReadyTimeout)
	}
	if !s.JetStreamEnabled() {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, errors.New("embedded nats: jetstream did not start")
	}
	log.Info("embedded nats server started", "url", s.ClientURL(), "store", filepath.Join(dataDir, server.JetStreamStoreDir))
	return s, nil
}

// slogLogger routes the server's log to slog. The server's notices are mostly
// its start-up banner, so they go to debug; its fatal errors are recorded
// rather than ending the process, as the server's own logger would.
type slogLogger struct {
	log *slog.Logger

	mu       sync.Mutex
	firstErr string
}

var _ server.Logger = (*slogLogger)(nil)

func (l *slogLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *slogLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *slogLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *slogLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *slogLogger) Tracef(format string, v ...any)  {}

func (l *slogLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.mu.Lock()
	if l.firstErr == "" {
		l.firstErr = msg
	}
	l.mu.Unlock()
}

// fatal returns the first fatal message, or "".
func (l *slogLogger) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstErr
}
