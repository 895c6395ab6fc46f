// Package benchdata holds the workflow result every benchmark measures, so
// that the mapping's and the consumer's Go benchmarks and the end-to-end
// bench (go run ./cmd/bench) share one file instead of keeping copies equal.
package benchdata

import _ "embed"

// Result8Steps is bench-8-steps.json: a realistic result of about 1.5 KB
// with 8 steps (9 spans), id "run_bench_0001", timed by started_at and
// ended_at. Callers must not modify it.
//
//go:embed bench-8-steps.json
var Result8Steps []byte
