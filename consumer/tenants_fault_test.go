//go:build fault

package consumer_test

import (
	"testing"
	"time"
)

// TestTenantIsolationFull is TestTenantIsolation at the size: B's
// destination fails for 30 s (go test -tags fault ./consumer).
func TestTenantIsolationFull(t *testing.T) {
	for _, c := range []isolation{
		{failure: "503", outage: 30 * time.Second, replicas: 1},
		{failure: "401", outage: 30 * time.Second, replicas: 1},
		{failure: "refused", outage: 30 * time.Second, replicas: 1},
		{failure: "hang", outage: 30 * time.Second, replicas: 1},
		{failure: "503", outage: 30 * time.Second, replicas: 2, kill: true},
	} {
		t.Run(c.name(), func(t *testing.T) { testIsolation(t, c) })
	}
}
