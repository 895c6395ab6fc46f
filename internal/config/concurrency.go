package config

// DefaultExportConcurrency is WORKER_EXPORT_CONCURRENCY when it is 0 or
// unset, for a process of procs cores (GOMAXPROCS, which Go sets from the
// container's CPU limit): a batch in flight is mapped and encoded on one
// goroutine, so as many batches as cores let every core map, and at least
// two let one batch be mapped while another is on the wire, on one core
// too. Beyond eight the memory held (about 30 MB of RSS per batch of 200
// 8-step results in flight) grows faster than a receiver usually takes
// requests; docs/BENCHMARKS.md has the measurements.
func DefaultExportConcurrency(procs int) int {
	return min(max(procs, 2), 8)
}
