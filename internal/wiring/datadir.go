package wiring

import (
	"fmt"
	"os"
)

// CheckDataDir reports, naming WORKER_DATA_DIR, whether dir cannot be
// created or written: the embedded server and the file exporter keep their
// data there, and each would otherwise fail later with an error that names
// only a path. It creates dir when missing and leaves no file behind.
func CheckDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("WORKER_DATA_DIR: cannot create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".spanferry-write-check-*")
	if err != nil {
		return fmt.Errorf("WORKER_DATA_DIR: %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("WORKER_DATA_DIR: %s: %w", dir, err)
	}
	return nil
}
