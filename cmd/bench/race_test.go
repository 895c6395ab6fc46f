//go:build race

package main

// raceEnabled shortens the smoke test: under the race detector every child
// process is instrumented and a dozen of them take twenty seconds.
const raceEnabled = true
