// Command bench measures spanferry's worker end to end against raw
// JetStream, on one machine, with nothing but Go: an embedded JetStream
// server (FILE storage in a temporary directory), a real OTLP/HTTP receiver
// that decodes every request (internal/otlptest), results prefilled into a
// stream, and the pipeline under test in a child process of its own, so
// that its CPU time and peak RSS are its alone.
//
//	go run ./cmd/bench                      # every section but the backlog (10–15 minutes)
//	go run ./cmd/bench -backlog 1000000 -out docs/BENCHMARKS.md
//
// See docs/BENCHMARKS.md for what each figure means and how it is counted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "_") {
		os.Exit(runRole(os.Args[1], os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
}

// options are the command's flags.
type options struct {
	n          int
	steps      int
	repeat     int
	refN       int
	batchSizes []int
	sizes      []int
	backlog    int
	rate       int
	duration   time.Duration
	sections   map[string]bool
	out        string
	dir        string
	profileDir string
	verbose    bool
}

const allSections = "hotpath,main,batches,sizes,paced,backlog,tenants,redact,fleet"

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: go run ./cmd/bench [flags]

Measures the worker end to end on this machine: an embedded JetStream server
(FILE storage), a real OTLP/HTTP receiver decoding every request, and results
of -steps steps (about 1.5 KB for 8) prefilled into a stream. Sections:

  hotpath  in process, as the Go benchmarks do: decoding a result, mapping
           it, and mapping plus encoding it into a 200-result request,
           -repeat times each in rounds; the median and fastest are reported
  main     raw JetStream (a pull consumer that only acks, two ways) against
           the worker with default settings and with batch size 1,
           -repeat times each, interleaved; the median run is reported
  batches  the worker at each of -batch-sizes (size 1 with -ref-n results)
  sizes    raw JetStream and the worker at each of -sizes results
  paced    -rate results/s for -duration: publish→ack and publish→export
           latency of the worker and of raw JetStream
  backlog  the worker draining a -backlog result backlog: peak RSS
  tenants  the worker with a tenants file of three tenants against none
           (-n results of the three in turn, -repeat runs each), and
           tenant A's publish→export latency at -rate for -duration with
           tenant B up, then down
  redact   the worker with no redaction rules and with five (the presets of
           WORKER_REDACT_FILE), -ref-n results, -repeat runs each,
           interleaved: CPU per result
  fleet    replay --name of -n results by 1, 2 and 4 processes on one
           range: results/s and CPU per result of the whole fleet

The worker runs as a child process wired as cmd/worker wires it; its
settings come from the environment as the worker's do (WORKER_BATCH_WAIT,
WORKER_EXPORT_CONCURRENCY, OTEL_EXPORTER_OTLP_COMPRESSION, ...), except the
stream, durable and endpoint, which the bench sets, and the batch size of
the batches section. Figures are printed as they come; -out writes the
report into a Markdown file between "<!-- bench:begin -->" and
"<!-- bench:end -->" (appended when the markers are missing).

Flags:
`)
		fs.PrintDefaults()
	}
	var batchSizes, sizes, sections string
	fs.IntVar(&o.n, "n", 50_000, "results prefilled for the main and batches sections")
	fs.IntVar(&o.steps, "steps", 8, "steps per result (8: internal/benchdata/bench-8-steps.json; otherwise its steps repeated)")
	fs.IntVar(&o.repeat, "repeat", 3, "runs of each pipeline in the main section and of each hotpath figure; the median is reported")
	fs.IntVar(&o.refN, "ref-n", 10_000, "results for the batch-size-1 runs (they are slow)")
	fs.StringVar(&batchSizes, "batch-sizes", "1,50,200,500", "batch sizes of the batches section")
	fs.StringVar(&sizes, "sizes", "10000,50000,200000", "backlog sizes of the sizes section")
	fs.IntVar(&o.backlog, "backlog", 0, "results of the backlog section (1000000 checks the RSS target; 0 skips it)")
	fs.IntVar(&o.rate, "rate", 1000, "results per second of the paced section")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "length of the paced section's runs")
	fs.StringVar(&sections, "sections", allSections, "sections to run, comma separated")
	fs.StringVar(&o.out, "out", "", "Markdown file to write the report into (docs/BENCHMARKS.md)")
	fs.StringVar(&o.dir, "dir", "", "parent directory of the JetStream store (default the system's temporary directory)")
	fs.StringVar(&o.profileDir, "profile", "", "directory to write CPU and allocation profiles of every worker run into")
	fs.BoolVar(&o.verbose, "v", false, "log the server's and the children's warnings")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.batchSizes, err = intList(batchSizes); err != nil {
		return o, fmt.Errorf("-batch-sizes: %w", err)
	}
	if o.sizes, err = intList(sizes); err != nil {
		return o, fmt.Errorf("-sizes: %w", err)
	}
	o.sections = map[string]bool{}
	for _, s := range strings.Split(sections, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !strings.Contains(","+allSections+",", ","+s+",") {
			return o, fmt.Errorf("-sections: unknown section %q (known: %s)", s, allSections)
		}
		o.sections[s] = true
	}
	if o.backlog == 0 {
		delete(o.sections, "backlog")
	}
	switch {
	case o.n < 1 || o.refN < 1 || o.steps < 0 || o.repeat < 1:
		return o, errors.New("-n, -ref-n and -repeat must be at least 1, -steps at least 0")
	case o.sections["paced"] && (o.rate < 1 || o.duration < time.Second):
		return o, errors.New("-rate must be at least 1 and -duration at least 1s")
	}
	return o, nil
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(o.dir, "spanferry-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}

	level := slog.LevelError
	if o.verbose {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	body, err := newBody(o.steps)
	if err != nil {
		return err
	}
	b := &bench{opts: o, body: body, out: stdout, stderr: stderr, childErr: io.Discard}
	if o.verbose {
		b.childErr = stderr
	}
	if b.broker, err = startBroker(filepath.Join(dir, "nats"), log); err != nil {
		return err
	}
	defer b.broker.close()
	if b.recv, err = startChild(roleReceiver, nil, nil, b.childErr); err != nil {
		return err
	}
	defer b.recv.wait(5 * time.Second)
	ready, err := b.recv.expect("ready")
	if err != nil {
		return err
	}
	b.recvURL = ready.URL

	rep := newReport(o, args, len(body.render(nil, "run-0000000", time.Now())), body.spans)
	b.report = rep
	fmt.Fprintf(stdout, "spanferry bench: %s, %d cores, %s; results of %d steps (%d bytes, %d spans)\n\n",
		rep.Machine.CPU, rep.Machine.Cores, rep.Machine.Go, o.steps, rep.BodyBytes, rep.Spans)
	for _, section := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"hotpath", b.hotpathSection},
		{"main", b.mainSection},
		{"batches", b.batchesSection},
		{"sizes", b.sizesSection},
		{"paced", b.pacedSection},
		{"backlog", b.backlogSection},
		{"tenants", b.tenantsSection},
		{"redact", b.redactSection},
		{"fleet", b.fleetSection},
	} {
		if !o.sections[section.name] {
			continue
		}
		if err := section.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", section.name, err)
		}
	}
	rep.finish()
	md := rep.markdown()
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, md)
	if o.out != "" {
		if err := writeReport(o.out, md); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwritten to %s\n", o.out)
	}
	return nil
}
