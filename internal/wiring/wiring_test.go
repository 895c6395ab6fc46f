package wiring

import (
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spanferry/spanferry/internal/config"
)

func TestExporterRefusesABadOTLPTimeout(t *testing.T) {
	cfg := config.Config{Exporter: config.ExporterOTLP, OTLPTimeout: "5s"}
	_, err := Exporter(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_TIMEOUT") {
		t.Fatalf("err = %v, want it to name OTEL_EXPORTER_OTLP_TIMEOUT", err)
	}
	for v, want := range map[string]string{"": "10s", "2500": "2.5s"} {
		got, err := otlpTimeout(v)
		if err != nil || got.String() != want {
			t.Errorf("otlpTimeout(%q) = %v, %v; want %s", v, got, err, want)
		}
	}
}

func TestFileExporterWritesUnderTheDataDir(t *testing.T) {
	dir := t.TempDir()
	exp, err := Exporter(context.Background(), config.Config{Exporter: config.ExporterFile, DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, TracesFile)); err != nil {
		t.Errorf("the file exporter did not create %s: %v", TracesFile, err)
	}
}

func TestSetGCKeepsAGOGCTheEnvironmentSets(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	if got := SetGC(); got != "200" {
		t.Errorf("SetGC() without GOGC = %q, want 200", got)
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Errorf("GC percent without GOGC = %d, want %d", got, DefaultGCPercent)
	}

	t.Setenv("GOGC", "off")
	if got := SetGC(); got != "off" {
		t.Errorf("SetGC() with GOGC=off = %q, want off", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent with GOGC set = %d, want it left at 100", got)
	}
}
