package config

import (
	"os"
	"runtime"
	"testing"
)

func TestDefaultExportConcurrency(t *testing.T) {
	for procs, want := range map[int]int{1: 2, 2: 2, 3: 3, 4: 4, 8: 8, 16: 8} {
		if got := DefaultExportConcurrency(procs); got != want {
			t.Errorf("DefaultExportConcurrency(%d) = %d, want %d", procs, got, want)
		}
	}
}

func TestExportConcurrencyFollowsGOMAXPROCS(t *testing.T) {
	for _, v := range []string{"unset", "0"} {
		t.Setenv("WORKER_EXPORT_CONCURRENCY", v)
		if v == "unset" {
			os.Unsetenv("WORKER_EXPORT_CONCURRENCY")
		}
		c, err := Load()
		if err != nil {
			t.Fatal(err)
		}
		if want := DefaultExportConcurrency(runtime.GOMAXPROCS(0)); c.ExportConcurrency != want {
			t.Errorf("WORKER_EXPORT_CONCURRENCY=%q: %d, want %d", v, c.ExportConcurrency, want)
		}
	}
	t.Setenv("WORKER_EXPORT_CONCURRENCY", "5")
	if c, err := Load(); err != nil || c.ExportConcurrency != 5 {
		t.Errorf("WORKER_EXPORT_CONCURRENCY=5: %d, %v", c.ExportConcurrency, err)
	}
	t.Setenv("WORKER_EXPORT_CONCURRENCY", "-1")
	if _, err := Load(); err == nil {
		t.Error("WORKER_EXPORT_CONCURRENCY=-1 accepted")
	}
}
