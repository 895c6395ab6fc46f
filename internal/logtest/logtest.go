// Package logtest holds what tests need to read a log while it is being
// written.
package logtest

import (
	"bytes"
	"sync"
)

// Buffer is a log sink that a test reads while the code under test writes
// to it from other goroutines.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
