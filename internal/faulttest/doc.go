// Package faulttest proves that the worker loses nothing under faults, by
// running the real processes: the worker binary built from cmd/worker, the
// nats-server binary built from the module in go.mod, and a real OTLP/HTTP
// receiver (internal/otlptest) in the test process that can be made to fail.
//
// The package has only tests. The fast variants run in plain `go test` (they
// are skipped under -short); the full-size ones need the build tag fault:
//
//	go test -tags fault -v -timeout 60m ./internal/faulttest   # or scripts/fault.sh
//
// docs/RELIABILITY.md records what the full runs observed.
package faulttest
