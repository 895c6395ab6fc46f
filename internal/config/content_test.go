package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestContentControls(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if !c.CaptureContent || c.RedactFile != "" {
		t.Fatalf("content defaults: capture %v, redact file %q; want true and none", c.CaptureContent, c.RedactFile)
	}
	t.Setenv("WORKER_CAPTURE_CONTENT", "false")
	if c, err = Load(); err != nil || c.CaptureContent {
		t.Fatalf("WORKER_CAPTURE_CONTENT=false: %v, %v", c.CaptureContent, err)
	}
}

func TestBadRedactFileStopsTheStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte("rules:\n  - name: mail\n    pattern: '[a-z+@'\n    replace: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WORKER_REDACT_FILE", path)
	_, err := Load()
	for _, want := range []string{"WORKER_REDACT_FILE", path, `rules[0] ("mail"): invalid pattern`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to name %s", err, want)
		}
	}
	t.Setenv("WORKER_REDACT_FILE", filepath.Join(t.TempDir(), "missing.yaml"))
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing file: %v", err)
	}
}
