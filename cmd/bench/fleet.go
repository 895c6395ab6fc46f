package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/wiring"
)

// roleReplay is a child that runs `worker replay --name` on the whole
// stream, wired as cmd/worker wires it: one process of a fleet.
const roleReplay = "_replay"

// fleetSizes are the fleets the fleet section runs on one range.
var fleetSizes = []int{1, 2, 4}

// fleetRun is one fleet's figures: every process's "done".
type fleetRun struct {
	procs []event
	recv  event
	n     int
}

// wall is the fleet's time from the first fetch of any process to the
// last ack of any: the range's time, without the processes' start-up or
// their wait to see the range settled.
func (f fleetRun) wall() float64 {
	start, end := f.procs[0].StartNs, f.procs[0].EndNs
	for _, e := range f.procs[1:] {
		start, end = min(start, e.StartNs), max(end, e.EndNs)
	}
	return float64(end-start) / 1e9
}

func (f fleetRun) rate() float64 { return float64(f.n) / f.wall() }

// cpu is the CPU seconds of every process together.
func (f fleetRun) cpu() float64 {
	var s float64
	for _, e := range f.procs {
		s += e.CPU
	}
	return s
}

func (f fleetRun) per10k(cpu float64) float64 { return cpu / float64(f.n) * 10_000 }

// shares returns the results each process settled.
func (f fleetRun) shares() string {
	var out []int
	for _, e := range f.procs {
		out = append(out, e.Results)
	}
	slices.Sort(out)
	slices.Reverse(out)
	return fmt.Sprint(out)
}

// fleetSection replays one range of -n results with fleets of 1, 2 and 4
// processes sharing a replay consumer: whether a fleet scales to the
// cores and costs no more per result.
func (b *bench) fleetSection(ctx context.Context) error {
	fmt.Fprintf(b.out, "fleet: replay --name over %d results by %v processes\n", b.opts.n, fleetSizes)
	s, err := b.filled(ctx, "FLEET", b.opts.n)
	if err != nil {
		return err
	}
	for _, k := range fleetSizes {
		r, err := b.fleetOnce(s, k)
		if err != nil {
			return err
		}
		fmt.Fprintf(b.out, "  %d processes %8d results  %6.2fs  %9.0f results/s  worker CPU %.2fs/10k  receiver CPU %.2fs/10k  shares %s\n",
			k, r.n, r.wall(), r.rate(), r.per10k(r.cpu()), r.per10k(r.recv.CPU), r.shares())
		b.report.Fleet = append(b.report.Fleet, r)
	}
	return b.broker.deleteStream(ctx, s)
}

func (b *bench) fleetOnce(s stream, k int) (fleetRun, error) {
	b.seq++
	env := []string{
		"NATS_URL=" + b.broker.srv.ClientURL(),
		"WORKER_STREAM=" + s.name,
		"WORKER_SUBJECTS=" + s.subject + ".>",
		"WORKER_CREATE_STREAM=false",
		"WORKER_DLQ_SUBJECT=benchdlq.results",
		"WORKER_HTTP_ADDR=",
		"WORKER_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + b.recvURL,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=",
	}
	if err := b.recvCommand("reset", "reset", nil); err != nil {
		return fleetRun{}, err
	}
	name := "bench" + strconv.Itoa(b.seq)
	var procs []*child
	for range k {
		c, err := startChild(roleReplay, []string{"-name", name}, env, b.childErr)
		if err != nil {
			return fleetRun{}, err
		}
		defer c.wait(10 * time.Second)
		procs = append(procs, c)
	}
	r := fleetRun{n: b.opts.n}
	for _, c := range procs {
		done, err := c.expect("done")
		if err != nil {
			return r, err
		}
		r.procs = append(r.procs, done)
	}
	for _, c := range procs {
		if err := c.wait(10 * time.Second); err != nil {
			return r, err
		}
	}
	if err := b.recvCommand("report", "stats", &r.recv); err != nil {
		return r, err
	}
	settled := 0
	for _, e := range r.procs {
		settled += e.Results
	}
	if want := b.opts.n * b.body.spans; r.recv.Spans != want || settled != b.opts.n {
		return r, fmt.Errorf("fleet of %d: the processes settled %d results and the receiver got %d spans, want %d and %d", k, settled, r.recv.Spans, b.opts.n, want)
	}
	return r, nil
}

// replayRole is one process of a fleet replay: FleetReplay of the whole
// stream, then "done" with the results it settled itself, its CPU, and
// when it first fetched and last acked.
func replayRole(args []string) error {
	fs := flag.NewFlagSet(roleReplay, flag.ContinueOnError)
	name := fs.String("name", "", "the fleet's replay name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("spanferry-bench-replay"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	wiring.SetGC()
	ctx := context.Background()
	exp, err := wiring.Exporter(ctx, cfg, io.Discard)
	if err != nil {
		return err
	}
	rec := &recorder{expect: -1, done: make(chan struct{})}
	cons, err := wiring.Consumer(cfg, instrument(js, rec), nc.MaxPayload(), exp, log, consumer.NewMetrics(nil), nil)
	if err != nil {
		return err
	}
	cpu0 := cpuTime()
	st, err := cons.FleetReplay(ctx, *name, consumer.Range{FromSeq: 1})
	if err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	if err := exp.Shutdown(ctx); err != nil {
		return err
	}
	if rec.start.IsZero() {
		return errors.New("the replay never fetched")
	}
	emit(event{
		Event: "done", Results: int(st.Done()), CPU: (cpuTime() - cpu0).Seconds(), MaxRSS: maxRSS(),
		StartNs: rec.start.UnixNano(), EndNs: rec.last.Load(),
	})
	return nil
}

// fleetMarkdown renders the fleet section.
func (r *report) fleetMarkdown(b *bytes.Buffer) {
	if len(r.Fleet) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	one := r.Fleet[0]
	p("### Fleet replay (`replay --name`, %s results, one range)\n\n", thousands(float64(one.n)))
	p("| processes | results/s | ÷ 1 process | worker CPU s/10k (all processes) | ÷ 1 process | receiver CPU s/10k | results per process |\n")
	p("|--:|--:|--:|--:|--:|--:|---|\n")
	for _, f := range r.Fleet {
		p("| %d | %s | %.2f | %.2f | %.2f | %.2f | %s |\n", len(f.procs), thousands(f.rate()), f.rate()/one.rate(),
			f.per10k(f.cpu()), f.cpu()/one.cpu(), f.per10k(f.recv.CPU), f.shares())
	}
	p("\n")
}
