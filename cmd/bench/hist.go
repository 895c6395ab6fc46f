package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a latency histogram of fixed size (16 KiB) that goroutines
// record into concurrently: values in microseconds, 32 buckets per power of
// two, so a percentile is exact to about 3%. A 1,000,000-result run must
// not grow the worker's memory by a slice of samples.
type hist struct {
	counts [histBuckets]atomic.Uint64
}

const (
	histSub     = 5 // 2^5 buckets per power of two
	histBuckets = (64 - histSub + 1) << histSub
)

func histIndex(us uint64) int {
	if us < 1<<histSub {
		return int(us)
	}
	e := bits.Len64(us) - histSub - 1 // us>>e is in [32, 64)
	return (e+1)<<histSub + int(us>>e) - 1<<histSub
}

// histLow returns the smallest value of bucket i.
func histLow(i int) uint64 {
	if i < 1<<histSub {
		return uint64(i)
	}
	e := i>>histSub - 1
	return uint64(i&(1<<histSub-1)+1<<histSub) << e
}

func (h *hist) record(d time.Duration) {
	h.counts[histIndex(uint64(max(d, 0)/time.Microsecond))].Add(1)
}

func (h *hist) reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
}

func (h *hist) count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// quantile returns the q-quantile (0 < q <= 1) as the middle of its
// bucket, or 0 when nothing was recorded.
func (h *hist) quantile(q float64) time.Duration {
	total := h.count()
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.999999)
	var seen uint64
	for i := range h.counts {
		if seen += h.counts[i].Load(); seen >= max(rank, 1) {
			lo, hi := histLow(i), histLow(i+1)
			return time.Duration((lo+hi)/2) * time.Microsecond
		}
	}
	return 0
}
