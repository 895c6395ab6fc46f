package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// bench is one invocation's state: the broker, the receiver child, the
// report being filled.
type bench struct {
	opts     options
	body     *body
	broker   *broker
	recv     *child
	recvURL  string
	report   *report
	out      io.Writer // progress lines
	stderr   io.Writer
	childErr io.Writer // the children's stderr
	seq      int
}

// spec says what one run consumes and how.
type spec struct {
	label  string
	role   string // roleWorker or roleRaw
	mode   string // roleRaw: consume or fetch
	stream stream
	n      int // results to acknowledge
	batch  int // WORKER_BATCH_SIZE; 0 keeps the worker's default
	paced  bool
	env    []string // more of the worker's environment (WORKER_TENANTS_FILE)
	// exported is how many of the n results reach the receiver; 0 means
	// all (a down tenant's are parked: acknowledged, not exported).
	exported int
}

// result is one run's figures.
type result struct {
	spec
	child     event // the consuming child's "done"
	recv      event // the receiver's stats over the run (worker runs)
	serverCPU float64
}

func (r result) rate() float64 { return float64(r.child.Results) / r.child.Elapsed }

// per10k returns CPU seconds per 10,000 results.
func (r result) per10k(cpu float64) float64 { return cpu / float64(r.child.Results) * 10_000 }

// runOnce runs one consuming child on a fresh durable consumer of
// s.stream until it has acknowledged s.n results (published by the paced
// publisher meanwhile when s.paced), and checks that nothing is left over.
func (b *bench) runOnce(ctx context.Context, s spec) (result, error) {
	b.seq++
	durable := "bench" + strconv.Itoa(b.seq)
	env := []string{
		"NATS_URL=" + b.broker.srv.ClientURL(),
		"WORKER_STREAM=" + s.stream.name,
		"WORKER_SUBJECTS=" + s.stream.subject + ".>",
		"WORKER_DURABLE=" + durable,
		"WORKER_CREATE_STREAM=true",
		"WORKER_DLQ_SUBJECT=benchdlq.results",
		"WORKER_DLQ_STREAM=BENCH_DLQ",
		"WORKER_HTTP_ADDR=",
		"WORKER_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + b.recvURL,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=",
	}
	if s.batch > 0 {
		env = append(env, "WORKER_BATCH_SIZE="+strconv.Itoa(s.batch))
	}
	env = append(env, s.env...)
	args := []string{"-expect", strconv.Itoa(s.n), "-mode", s.mode}
	if b.opts.profileDir != "" && s.role == roleWorker {
		base := filepath.Join(b.opts.profileDir, fmt.Sprintf("run%02d-%s", b.seq, slug(s.label)))
		args = append(args, "-cpuprofile", base+".cpu.pprof", "-memprofile", base+".allocs.pprof")
	}
	if s.role == roleWorker {
		if err := b.recvCommand("reset", "reset", nil); err != nil {
			return result{}, err
		}
	}
	cpu0 := cpuTime()
	c, err := startChild(s.role, args, env, b.childErr)
	if err != nil {
		return result{}, err
	}
	defer c.wait(10 * time.Second)
	if _, err := c.expect("ready"); err != nil {
		return result{}, err
	}
	if s.paced {
		if _, err := b.broker.paced(ctx, s.stream, b.body, b.opts.rate, b.opts.duration); err != nil {
			return result{}, err
		}
	}
	done, err := c.expect("done")
	if err != nil {
		return result{}, err
	}
	if err := c.wait(10 * time.Second); err != nil {
		return result{}, err
	}
	r := result{spec: s, child: done, serverCPU: (cpuTime() - cpu0).Seconds()}
	if s.role == roleWorker {
		if err := b.recvCommand("report", "stats", &r.recv); err != nil {
			return r, err
		}
		want := s.n * b.body.spans
		if s.exported > 0 {
			want = s.exported * b.body.spans
		}
		if r.recv.Spans != want {
			return r, fmt.Errorf("%s: the receiver got %d spans, want %d", s.label, r.recv.Spans, want)
		}
	}
	cons, err := b.broker.js.Consumer(ctx, s.stream.name, durable)
	if err != nil {
		return r, err
	}
	info := cons.CachedInfo()
	if info.NumPending != 0 || info.NumAckPending != 0 {
		return r, fmt.Errorf("%s: %d results left pending and %d unacknowledged", s.label, info.NumPending, info.NumAckPending)
	}
	if err := b.broker.js.DeleteConsumer(ctx, s.stream.name, durable); err != nil {
		return r, err
	}
	b.progress(r)
	return r, nil
}

func (b *bench) recvCommand(cmd, reply string, into *event) error {
	if err := b.recv.send(cmd); err != nil {
		return err
	}
	e, err := b.recv.expect(reply)
	if into != nil {
		*into = e
	}
	return err
}

func (b *bench) progress(r result) {
	line := fmt.Sprintf("  %-28s %8d results  %6.2fs  %9.0f results/s  worker CPU %.2fs/10k", r.label, r.child.Results, r.child.Elapsed, r.rate(), r.per10k(r.child.CPU))
	if r.role == roleWorker {
		line += fmt.Sprintf("  receiver CPU %.2fs/10k", r.per10k(r.recv.CPU))
	}
	line += fmt.Sprintf("  RSS %s  heap %s", mib(r.child.MaxRSS), mib(int64(r.child.PeakHeap)))
	if r.paced {
		line += fmt.Sprintf("  publish→ack p50 %.1fms p99 %.1fms", r.child.P50, r.child.P99)
		if r.role == roleWorker {
			line += fmt.Sprintf("  publish→export p50 %.1fms p99 %.1fms", r.recv.P50, r.recv.P99)
		}
	}
	fmt.Fprintln(b.out, line)
}

// filled creates a stream holding n results.
func (b *bench) filled(ctx context.Context, name string, n int) (stream, error) {
	s, err := b.broker.createStream(ctx, name)
	if err != nil {
		return s, err
	}
	took, err := b.broker.prefill(ctx, s, b.body, n)
	if err != nil {
		return s, err
	}
	fmt.Fprintf(b.out, "  prefilled %d results into %s in %.1fs (%.0f/s)\n", n, name, took.Seconds(), float64(n)/took.Seconds())
	return s, nil
}

// median returns the run of median rate (the slower of the middle two).
func median(runs []result) result {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b result) int {
		switch {
		case a.rate() < b.rate():
			return -1
		case a.rate() > b.rate():
			return 1
		}
		return 0
	})
	return sorted[(len(sorted)-1)/2]
}

// interleaved runs each of specs -repeat times, in rounds, so that a
// noisy neighbour hurts them alike, and returns the runs of each.
func (b *bench) interleaved(ctx context.Context, specs []spec) ([][]result, error) {
	runs := make([][]result, len(specs))
	for range b.opts.repeat {
		for i, sp := range specs {
			r, err := b.runOnce(ctx, sp)
			if err != nil {
				return nil, err
			}
			runs[i] = append(runs[i], r)
		}
	}
	return runs, nil
}

// medianCPU returns the run of median CPU per result.
func medianCPU(runs []result) result {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b result) int {
		return cmp.Compare(a.per10k(a.child.CPU), b.per10k(b.child.CPU))
	})
	return sorted[(len(sorted)-1)/2]
}

// hotpathSection measures the worker's work per result in this process.
func (b *bench) hotpathSection(context.Context) error {
	fmt.Fprintln(b.out, "hotpath: decoding, mapping and encoding one result, in process")
	figs, err := hotpath(b.body.render(nil, "run-hotpath", time.Now()), b.opts.repeat)
	if err != nil {
		return err
	}
	for _, f := range figs {
		fmt.Fprintf(b.out, "  %-32s %8.2f µs/result (min %.2f of %d)  %6.1f allocs/result  %8.0f B/result\n", f.Name, f.NsPer/1e3, f.MinNsPer/1e3, f.Runs, f.AllocsPer, f.BytesPer)
	}
	b.report.Hotpath = figs
	return nil
}

// mainSection compares raw JetStream with the worker at default settings
// and at batch size 1, the runs interleaved so that a noisy neighbour
// hurts them alike.
func (b *bench) mainSection(ctx context.Context) error {
	fmt.Fprintf(b.out, "main: raw JetStream against the worker, %d results, %d runs each\n", b.opts.n, b.opts.repeat)
	s, err := b.filled(ctx, "MAIN", b.opts.n)
	if err != nil {
		return err
	}
	ref, err := b.filled(ctx, "REF", b.opts.refN)
	if err != nil {
		return err
	}
	specs := []spec{
		{label: "raw: Consume + Ack", role: roleRaw, mode: "consume", stream: s, n: b.opts.n},
		{label: "raw: Fetch + Ack", role: roleRaw, mode: "fetch", stream: s, n: b.opts.n},
		{label: "worker (defaults)", role: roleWorker, stream: s, n: b.opts.n},
		{label: "worker, batch size 1", role: roleWorker, stream: ref, n: b.opts.refN, batch: 1},
	}
	runs, err := b.interleaved(ctx, specs)
	if err != nil {
		return err
	}
	b.report.Main = runs
	if err := b.broker.deleteStream(ctx, ref); err != nil {
		return err
	}
	return b.broker.deleteStream(ctx, s)
}

// batchesSection runs the worker at each batch size; size 1 consumes
// -ref-n results, the others -n.
func (b *bench) batchesSection(ctx context.Context) error {
	fmt.Fprintf(b.out, "batches: the worker at batch sizes %v\n", b.opts.batchSizes)
	streams := map[int]stream{}
	for _, size := range b.opts.batchSizes {
		n := b.opts.n
		if size == 1 {
			n = b.opts.refN
		}
		s, ok := streams[n]
		if !ok {
			var err error
			if s, err = b.filled(ctx, "BATCHES"+strconv.Itoa(n), n); err != nil {
				return err
			}
			streams[n] = s
		}
		r, err := b.runOnce(ctx, spec{label: "worker, batch size " + strconv.Itoa(size), role: roleWorker, stream: s, n: n, batch: size})
		if err != nil {
			return err
		}
		b.report.Batches = append(b.report.Batches, r)
	}
	for _, s := range streams {
		if err := b.broker.deleteStream(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// sizesSection runs raw JetStream and the worker over backlogs of each
// size, so that growth with N shows.
func (b *bench) sizesSection(ctx context.Context) error {
	fmt.Fprintf(b.out, "sizes: raw JetStream and the worker over backlogs of %v results\n", b.opts.sizes)
	for _, n := range b.opts.sizes {
		s, err := b.filled(ctx, "SIZE"+strconv.Itoa(n), n)
		if err != nil {
			return err
		}
		raw, err := b.runOnce(ctx, spec{label: "raw: Consume + Ack", role: roleRaw, mode: "consume", stream: s, n: n})
		if err != nil {
			return err
		}
		w, err := b.runOnce(ctx, spec{label: "worker (defaults)", role: roleWorker, stream: s, n: n})
		if err != nil {
			return err
		}
		b.report.Sizes = append(b.report.Sizes, [2]result{raw, w})
		if err := b.broker.deleteStream(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// pacedSection publishes at a steady rate while raw JetStream, then the
// worker, consume: latency under light load.
func (b *bench) pacedSection(ctx context.Context) error {
	n := int(b.opts.duration.Seconds() * float64(b.opts.rate))
	fmt.Fprintf(b.out, "paced: %d results/s for %s\n", b.opts.rate, b.opts.duration)
	for _, sp := range []spec{
		{label: "raw: Consume + Ack", role: roleRaw, mode: "consume"},
		{label: "raw: Fetch + Ack", role: roleRaw, mode: "fetch"},
		{label: "worker (defaults)", role: roleWorker},
	} {
		s, err := b.broker.createStream(ctx, "PACED")
		if err != nil {
			return err
		}
		sp.stream, sp.n, sp.paced = s, n, true
		r, err := b.runOnce(ctx, sp)
		if err != nil {
			return err
		}
		b.report.Paced = append(b.report.Paced, r)
		if err := b.broker.deleteStream(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// backlogSection drains a large backlog with the worker: its peak RSS
// must stay flat, as its in-flight work is bounded.
func (b *bench) backlogSection(ctx context.Context) error {
	fmt.Fprintf(b.out, "backlog: the worker draining %d results\n", b.opts.backlog)
	s, err := b.filled(ctx, "BACKLOG", b.opts.backlog)
	if err != nil {
		return err
	}
	r, err := b.runOnce(ctx, spec{label: "worker (defaults)", role: roleWorker, stream: s, n: b.opts.backlog})
	if err != nil {
		return err
	}
	b.report.Backlog = &r
	return b.broker.deleteStream(ctx, s)
}
