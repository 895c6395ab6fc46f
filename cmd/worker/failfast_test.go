package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRunFailsFastOnSettingsThatCannotWork starts `worker run` as main
// does, with one wrong setting each, and expects it to stop at once with
// an error naming the variable, instead of running and failing forever.
func TestRunFailsFastOnSettingsThatCannotWork(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	aFile := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")

	for _, tc := range []struct {
		name string
		env  map[string]string
		code int
		want string
	}{
		{"endpoint not a URL", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "not-a-url"}, 2, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"traces endpoint without host", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https:///v1/traces"}, 2, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"CA file missing", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://127.0.0.1:1", "OTEL_EXPORTER_OTLP_CERTIFICATE": missing}, 2, "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{"client key missing", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE": missing, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": missing}, 2, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"},
		// NATS_URL points at nothing: before the fix, these failed only
		// on the connection, or not at all.
		{"HTTP address in use", map[string]string{"WORKER_HTTP_ADDR": busy.Addr().String(), "NATS_URL": "nats://" + closedAddr(t)}, 1, "WORKER_HTTP_ADDR"},
		{"HTTP address not host:port", map[string]string{"WORKER_HTTP_ADDR": "8080"}, 2, "WORKER_HTTP_ADDR"},
		{"data dir under a file (embedded server)", map[string]string{"WORKER_DATA_DIR": filepath.Join(aFile, "data")}, 1, "WORKER_DATA_DIR"},
		{"data dir under a file (file exporter)", map[string]string{"WORKER_DATA_DIR": filepath.Join(aFile, "data"), "NATS_URL": "nats://" + closedAddr(t)}, 1, "WORKER_DATA_DIR"},
		{"log level", map[string]string{"WORKER_LOG_LEVEL": "verbose"}, 2, "WORKER_LOG_LEVEL"},
		{"embedded server address in use", map[string]string{"WORKER_EMBEDDED_NATS_ADDR": busy.Addr().String()}, 1, "WORKER_EMBEDDED_NATS_ADDR"},
		{"dead letters inside the stream", map[string]string{"WORKER_DLQ_SUBJECT": "workflows.results.dlq"}, 2, "WORKER_DLQ_SUBJECT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WORKER_HTTP_ADDR", "127.0.0.1:0")
			t.Setenv("WORKER_EMBEDDED_NATS_ADDR", "127.0.0.1:0")
			t.Setenv("WORKER_DATA_DIR", t.TempDir())
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := realMain([]string{"run"}, nil, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, want %d with an error naming %s; stderr:\n%s", code, tc.code, tc.want, stderr.String())
			}
			// Fast: no connection attempt, no export, no retry.
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s to refuse", d)
			}
		})
	}
}
