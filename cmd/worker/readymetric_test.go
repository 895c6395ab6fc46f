package main

import (
	"testing"

	"github.com/spanferry/spanferry/internal/natstest"
)

// TestReadyMetricFollowsReadyz: spanferry_ready is 1 while /readyz answers
// 200 and 0 while the worker cannot consume (here: NATS is down).
func TestReadyMetricFollowsReadyz(t *testing.T) {
	srv := natstest.Start(t)
	w := runWorker(t, testConfig(t, srv.ClientURL()))
	ready := func(want string) func() bool {
		return func() bool {
			_, m := w.get("/metrics")
			return metricLine(m, "spanferry_ready ") == "spanferry_ready "+want
		}
	}
	await(t, "spanferry_ready 1", ready("1"))
	srv.Stop()
	await(t, "spanferry_ready 0 while nats is down", ready("0"))
	if code, _ := w.get("/readyz"); code == 200 {
		t.Errorf("/readyz = 200 while spanferry_ready is 0")
	}
	srv.Restart(t)
	await(t, "spanferry_ready 1 after the restart", ready("1"))
}
