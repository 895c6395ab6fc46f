package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spanferry/spanferry/internal/config"
)

func TestLogFormats(t *testing.T) {
	for _, tc := range []struct {
		format string
		check  func(line string) bool
	}{
		{"json", func(l string) bool { return json.Valid([]byte(l)) && strings.Contains(l, `"msg":"connected to nats"`) }},
		{"auto", func(l string) bool { return json.Valid([]byte(l)) }}, // a buffer is no terminal
		{"text", func(l string) bool {
			return strings.HasPrefix(l, "time=") && strings.Contains(l, `level=INFO msg="connected to nats" server=n1`)
		}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var buf bytes.Buffer
			log := commandLogger(config.Config{LogLevel: "info", LogFormat: tc.format}, "run", &buf)
			log.Info("connected to nats", "server", "n1")
			if line := strings.TrimSuffix(buf.String(), "\n"); !tc.check(line) || strings.Contains(line, "\n") {
				t.Errorf("WORKER_LOG_FORMAT=%s wrote %q", tc.format, buf.String())
			}
		})
	}
}

func TestLogFormatAutoIsTextOnlyOnATerminal(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if logText("auto", file) || logText("auto", w) || logText("", w) {
		t.Error("auto logs text to a file or a pipe")
	}
	if logText("json", os.Stderr) || !logText("text", file) {
		t.Error("an explicit format is not obeyed")
	}
	// A terminal is a character device, as /dev/null is.
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer devnull.Close()
	if !logText("auto", devnull) {
		t.Error("auto does not log text to a character device")
	}
}

// TestQuietCommandsPrintOnlyTheirOutput runs publish and check as a user
// would, in both log formats: stderr stays empty on success, and holds the
// error, and nothing else, on failure.
func TestQuietCommandsPrintOnlyTheirOutput(t *testing.T) {
	srv := startPublishServer(t, true)
	t.Setenv("NATS_URL", srv.cfg.NATSURL)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Setenv("WORKER_LOG_FORMAT", format)
			t.Setenv("WORKER_LOG_LEVEL", "info")
			var out, errOut bytes.Buffer
			if code := realMain([]string{"publish", "../../examples/failed-run.json"}, nil, &out, &errOut); code != 0 || errOut.Len() > 0 {
				t.Errorf("publish: exit %d, stderr %q", code, errOut.String())
			}
			if !strings.HasPrefix(out.String(), "published 1 results from ../../examples/failed-run.json") {
				t.Errorf("publish printed %q", out.String())
			}

			out.Reset()
			errOut.Reset()
			if code := realMain([]string{"check", "../../examples/failed-run.json"}, nil, &out, &errOut); code != 0 || errOut.Len() > 0 {
				t.Errorf("check: exit %d, stderr %q", code, errOut.String())
			}
			if !strings.Contains(out.String(), "../../examples/failed-run.json: result ") {
				t.Errorf("check printed %q", out.String())
			}

			out.Reset()
			errOut.Reset()
			code := realMain([]string{"publish", "--subject", "elsewhere.x", "../../examples/failed-run.json"}, nil, &out, &errOut)
			if code != 1 || out.Len() > 0 {
				t.Errorf("failed publish: exit %d, stdout %q", code, out.String())
			}
			if lines := strings.Split(strings.TrimSpace(errOut.String()), "\n"); len(lines) != 1 ||
				!strings.HasPrefix(lines[0], "worker: publish: no stream captures subject elsewhere.x") {
				t.Errorf("failed publish: stderr %q, want the error alone", errOut.String())
			}
		})
	}

	// WORKER_LOG_LEVEL=debug still shows a quiet command's log.
	t.Setenv("WORKER_LOG_FORMAT", "json")
	t.Setenv("WORKER_LOG_LEVEL", "debug")
	var out bytes.Buffer
	var errOut syncBuffer // nats.go logs "connection closed" from its own goroutine
	if code := realMain([]string{"publish", "../../examples/failed-run.json"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("publish: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), `"msg":"connected to nats"`) {
		t.Errorf("publish with WORKER_LOG_LEVEL=debug logged %q", errOut.String())
	}
}
