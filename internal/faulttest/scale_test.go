//go:build !fault

package faulttest

// fullSize is false in plain `go test`: the fault tests run scaled down
// (a few thousand results, short outages) to stay within CI's time. Build
// with -tags fault for the sizes of the issue (scripts/fault.sh).
const fullSize = false
