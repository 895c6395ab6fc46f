// Package poll waits in tests for a state that gives no notification to
// wait on (stream counters, a receiver's contents, a process's output).
package poll

import (
	"testing"
	"time"
)

// Until checks cond every 10 ms until it holds, and fails t naming what it
// waited for if it still does not after timeout.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
