package faulttest

import "time"

// size picks the scaled-down or the full value of a test parameter.
func size[T int | time.Duration](fast, full T) T {
	if fullSize {
		return full
	}
	return fast
}
