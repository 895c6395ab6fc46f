package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/wiring"
)

// Progress pacing: a terminal bar is redrawn often; plain lines (a log
// file, a CI job) are written rarely enough to stay readable.
const (
	barInterval  = 200 * time.Millisecond
	lineInterval = 5 * time.Second
)

// replayCmd is `worker replay`: re-export a range of the stream through an
// ephemeral consumer, with progress on stderr and a summary on stdout.
func replayCmd(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	since := fs.String("since", "", "first stored time to replay, RFC 3339 (2026-11-24T10:00:00Z)")
	until := fs.String("until", "", "last stored time to replay, RFC 3339 (default: the end of the stream)")
	fromSeq := fs.Uint64("from-seq", 0, "first stream sequence to replay")
	toSeq := fs.Uint64("to-seq", 0, "last stream sequence to replay (default: the last stored when the replay starts)")
	subject := fs.String("subject", "", "replay only this subject (wildcards allowed; default: every subject of WORKER_SUBJECTS)")
	deadLetter := fs.Bool("dead-letter", false, "dead-letter results that can never succeed, as run does (default: count them as skipped; run dead-lettered them already)")
	progress := fs.String("progress", "auto", "auto (a bar on a terminal, lines otherwise), bar, lines or none")
	name := fs.String("name", "", "share the replay with every process given the same name and range (a fleet: one durable replay consumer)")
	inactive := fs.Duration("inactive-threshold", consumer.DefaultReplayInactiveThreshold, "with --name: how long the replay consumer outlives the last process using it")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: worker replay (--since TIME | --from-seq N) [--until TIME] [--to-seq N] [--subject S]

Re-exports the stream's stored results through the same mapping, batching and
exporter as run, with an ephemeral consumer: the durable consumer's position is
untouched, so it is safe beside running workers. Span and trace ids are
deterministic, so replayed spans are identical to the first export's.
NATS_URL unset means the embedded server of a local worker.

With --name NAME, every process started with the same name and range joins
one durable replay consumer and together they settle the range once; each
exits 0 when the whole range is settled.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("replay: unexpected argument %q", fs.Arg(0))
	}
	r := consumer.Range{FromSeq: *fromSeq, ToSeq: *toSeq, Subject: *subject}
	var err error
	if r.Since, err = parseTime("--since", *since); err != nil {
		return err
	}
	if r.Until, err = parseTime("--until", *until); err != nil {
		return err
	}
	if r.FromSeq == 0 && r.Since.IsZero() {
		fs.Usage()
		return errors.New("replay: give --since or --from-seq (--from-seq 1 replays the whole stream)")
	}
	render, err := progressRenderer(*progress, stderr)
	if err != nil {
		return err
	}

	nc, err := connectClient(ctx, cfg, log, "replay")
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer nc.Close()
	exp, err := wiring.Exporter(ctx, cfg, stdout)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = exp.Shutdown(sctx)
	}()
	// A replay only reads: it never creates the stream or the durable.
	cfg.CreateStream = false
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("replay: jetstream: %w", err)
	}
	tenants, err := replayTenants(ctx, cfg, exp, log)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	cons, err := wiring.Consumer(cfg, js, nc.MaxPayload(), exp, log, consumer.NewMetrics(nil), tenants)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}

	wiring.SetGC()
	opts := []consumer.ReplayOption{}
	if render != nil {
		opts = append(opts, consumer.WithProgress(render.interval, render.draw))
	}
	if *deadLetter {
		opts = append(opts, consumer.WithReplayDeadLetters())
	}
	var st consumer.ReplayStats
	if *name != "" {
		st, err = cons.FleetReplay(ctx, *name, r, append(opts, consumer.WithInactiveThreshold(*inactive))...)
	} else {
		st, err = cons.Replay(ctx, r, opts...)
	}
	if render != nil {
		render.finish()
	}
	if ferr := nc.FlushTimeout(5 * time.Second); ferr != nil && err == nil {
		log.Warn("flushing the last acks failed", "err", ferr)
	}
	summary := fmt.Sprintf("replay: exported %d, dead-lettered %d, skipped %d results in %s (%s results/s, %d retries)",
		st.Exported, st.DeadLettered, st.Skipped, st.Elapsed.Round(time.Millisecond), rate(st.Done(), st.Elapsed), st.Retries)
	if st.Fleet {
		summary = fmt.Sprintf("%s; the range %q: %d of %d settled by the fleet", summary, *name, st.RangeSettled, st.RangeTotal)
	}
	if err != nil {
		fmt.Fprintln(stderr, summary)
		return err
	}
	fmt.Fprintln(stdout, summary)
	return nil
}

func parseTime(flagName, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("replay: %s %q is not an RFC 3339 time (2026-11-24T10:00:00Z)", flagName, v)
	}
	return t, nil
}

// renderer draws replay progress: a bar redrawn in place on a terminal, or
// a line every few seconds elsewhere.
type renderer struct {
	w        io.Writer
	bar      bool
	interval time.Duration
	drawn    bool
}

func progressRenderer(mode string, w io.Writer) (*renderer, error) {
	switch mode {
	case "auto":
		if isTerminal(w) {
			return progressRenderer("bar", w)
		}
		return progressRenderer("lines", w)
	case "bar":
		return &renderer{w: w, bar: true, interval: barInterval}, nil
	case "lines":
		return &renderer{w: w, interval: lineInterval}, nil
	case "none":
		return nil, nil
	}
	return nil, fmt.Errorf("replay: --progress %q is not auto, bar, lines or none", mode)
}

func (r *renderer) draw(st consumer.ReplayStats) {
	done, total := st.Done(), max(st.Total, st.Done())
	var before uint64 // settled before this process began: not its rate's
	if st.Fleet {
		done, total, before = st.RangeSettled, st.RangeTotal, st.RangeJoined
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	eta := "?"
	if done > before && total >= done {
		eta = (time.Duration(float64(st.Elapsed) / float64(done-before) * float64(total-done))).Round(time.Second).String()
	}
	text := fmt.Sprintf("%d/%d results (%.0f%%), %s results/s, ETA %s", done, total, pct, rate(done-before, st.Elapsed), eta)
	if st.Fleet {
		text += fmt.Sprintf(" for the fleet; %d exported here", st.Exported)
	}
	if st.DeadLettered+st.Skipped > 0 {
		text += fmt.Sprintf(", %d dead-lettered, %d skipped", st.DeadLettered, st.Skipped)
	}
	if !r.bar {
		fmt.Fprintln(r.w, "replay:", text)
		return
	}
	const width = 30
	filled := int(pct / 100 * width)
	fmt.Fprintf(r.w, "\r\033[K[%s%s] %s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), text)
	r.drawn = true
}

func (r *renderer) finish() {
	if r.drawn {
		fmt.Fprintln(r.w)
	}
}

func rate(n uint64, d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
}

// isTerminal reports whether w is a character device, as a terminal is.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
