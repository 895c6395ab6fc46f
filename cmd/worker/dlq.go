package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/config"
)

const dlqUsage = `usage: worker dlq COMMAND [ARGS]

Inspect the dead letters kept in the dead-letter stream (WORKER_DLQ_STREAM)
and send them back to be processed again once their cause is fixed.

Commands:
  list [--subject S] [--grep TEXT] [--since TIME] [--limit N] [--json]
                one line per dead letter, oldest first
  show SEQ...   each dead letter whole: every header, then the body
  redrive (SEQ... | --grep TEXT | --subject S | --since TIME | --all) [--limit N] [--dry-run]
                publish each chosen letter's body and original headers to its
                original subject, then delete the letter
  purge (SEQ... | --grep TEXT | --subject S | --since TIME | --all) [--limit N] [--dry-run]
                delete the chosen letters

The commands connect as the worker does (NATS_*); NATS_URL unset means the
embedded server of a worker running on this machine. "worker dlq COMMAND -h"
describes a command's flags.
`

// dlqCmd is `worker dlq`. Its commands print only their output: the
// connection's info lines are not logged (warnings and errors are).
func dlqCmd(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return errors.New("dlq: no command given")
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		fmt.Fprint(stdout, dlqUsage)
		return nil
	}
	cmd, args := args[0], args[1:]
	d := &dlq{cfg: cfg, stdout: stdout, stderr: stderr, log: quietLogger(cfg, stderr)}
	switch cmd {
	case "list":
		return d.list(ctx, args)
	case "show":
		return d.show(ctx, args)
	case "redrive":
		return d.redrive(ctx, args)
	case "purge":
		return d.purge(ctx, args)
	}
	fmt.Fprint(stderr, dlqUsage)
	return fmt.Errorf("dlq: unknown command %q", cmd)
}

// quietLogger logs at warn and above, or at debug when the operator asked
// for it: a command's output is its result, not the connection's story.
func quietLogger(cfg config.Config, w io.Writer) *slog.Logger {
	if !strings.EqualFold(cfg.LogLevel, "debug") && !strings.EqualFold(cfg.LogLevel, "error") {
		cfg.LogLevel = "warn"
	}
	return newLogger(cfg, w)
}

// dlq runs one `worker dlq` command.
type dlq struct {
	cfg            config.Config
	stdout, stderr io.Writer
	log            *slog.Logger
	nc             *nats.Conn
}

// open connects and binds to the dead-letter stream; close the connection
// with d.nc.Close.
func (d *dlq) open(ctx context.Context, command string) (*consumer.DeadLetters, error) {
	if d.cfg.DLQStream == "" {
		return nil, fmt.Errorf("dlq %s: WORKER_DLQ_STREAM is empty: name the dead-letter stream", command)
	}
	nc, err := connectClient(ctx, d.cfg, d.log, "dlq")
	if err != nil {
		return nil, fmt.Errorf("dlq %s: %w", command, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("dlq %s: jetstream: %w", command, err)
	}
	letters, err := consumer.OpenDeadLetters(ctx, js, d.cfg.DLQStream)
	if errors.Is(err, consumer.ErrNoDeadLetterStream) {
		nc.Close()
		return nil, fmt.Errorf("dlq %s: dead-letter stream %s not found (WORKER_DLQ_STREAM): a worker with WORKER_CREATE_STREAM=true creates it when it starts; check WORKER_DLQ_STREAM and NATS_URL", command, d.cfg.DLQStream)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("dlq %s: %w", command, err)
	}
	d.nc = nc
	return letters, nil
}

// flagSet returns a flag set for command whose usage is text followed by
// the flags.
func (d *dlq) flagSet(command, text string) *flag.FlagSet {
	fs := flag.NewFlagSet("dlq "+command, flag.ContinueOnError)
	fs.SetOutput(d.stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), text)
		fs.PrintDefaults()
	}
	return fs
}

// parseInterleaved parses flags given before, between or after the
// positional arguments (`redrive 12 13 --dry-run`), which the flag package
// alone stops at, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseSeqs parses dead-letter sequence numbers, keeping the first of any
// repeated one.
func parseSeqs(command string, args []string) ([]uint64, error) {
	seqs := make([]uint64, 0, len(args))
	for _, a := range args {
		seq, err := strconv.ParseUint(a, 10, 64)
		if err != nil || seq == 0 {
			return nil, fmt.Errorf("dlq %s: %q is not a dead-letter sequence number (worker dlq list shows them)", command, a)
		}
		if !slices.Contains(seqs, seq) {
			seqs = append(seqs, seq)
		}
	}
	return seqs, nil
}

// filterFlags are the flags that choose letters by content.
type filterFlags struct {
	subject, grep, since *string
	limit                *int
}

func addFilterFlags(fs *flag.FlagSet) filterFlags {
	return filterFlags{
		subject: fs.String("subject", "", "keep letters whose original subject matches `S` (a subject or a NATS wildcard: workflows.results.*, workflows.>)"),
		grep:    fs.String("grep", "", "keep letters whose reason or original subject contains `TEXT` (ignoring case)"),
		since:   fs.String("since", "", "keep letters dead-lettered at or after `TIME` (RFC 3339: 2026-11-24T10:00:00Z)"),
		limit:   fs.Int("limit", 0, "keep the `N` oldest of the chosen letters (0: all)"),
	}
}

// filter turns the flags into a consumer.Filter, naming the flag at fault.
func (f filterFlags) filter(command string) (consumer.Filter, error) {
	flt := consumer.Filter{Subject: *f.subject, Grep: *f.grep, Limit: *f.limit}
	if *f.since != "" {
		t, err := time.Parse(time.RFC3339Nano, *f.since)
		if err != nil {
			return flt, fmt.Errorf("dlq %s: --since %q is not an RFC 3339 time (2026-11-24T10:00:00Z)", command, *f.since)
		}
		flt.Since = t
	}
	if flt.Limit < 0 {
		return flt, fmt.Errorf("dlq %s: --limit %d: must not be negative", command, flt.Limit)
	}
	if err := flt.Validate(); err != nil {
		return flt, fmt.Errorf("dlq %s: --subject: %w", command, err)
	}
	return flt, nil
}

// selects reports whether any content filter is set.
func (f filterFlags) selects() bool {
	return *f.subject != "" || *f.grep != "" || *f.since != ""
}

// selection is what redrive and purge act on: sequence numbers, a filter,
// or every letter. An empty selection is refused, so that a forgotten
// argument never means "everything".
type selection struct {
	seqs   []uint64
	filter consumer.Filter
	all    bool // no filter at all: --all
}

func parseSelection(command string, pos []string, ff filterFlags, all bool) (selection, error) {
	seqs, err := parseSeqs(command, pos)
	if err != nil {
		return selection{}, err
	}
	flt, err := ff.filter(command)
	if err != nil {
		return selection{}, err
	}
	byFilter := ff.selects() || flt.Limit > 0
	switch {
	case len(seqs) > 0 && (all || byFilter):
		return selection{}, fmt.Errorf("dlq %s: give sequence numbers or --grep/--subject/--since/--limit/--all, not both", command)
	case all && ff.selects():
		return selection{}, fmt.Errorf("dlq %s: --all chooses every dead letter; drop it to choose by --grep, --subject or --since", command)
	case len(seqs) == 0 && !all && !ff.selects():
		return selection{}, fmt.Errorf("dlq %s: choose the dead letters: SEQ..., --grep TEXT, --subject S, --since TIME, or --all", command)
	}
	return selection{seqs: seqs, filter: flt, all: all && flt.Limit == 0}, nil
}

// each calls fn with every chosen letter, oldest first for a filter and in
// the order given for sequence numbers. Every sequence number is checked
// first, so that a mistyped one changes nothing. fn returning false stops.
func (s selection) each(ctx context.Context, letters *consumer.DeadLetters, fn func(*consumer.Letter) bool) error {
	if len(s.seqs) == 0 {
		for l, err := range letters.Letters(ctx, s.filter) {
			if err != nil {
				return err
			}
			if !fn(l) {
				return nil
			}
		}
		return nil
	}
	if err := checkSeqs(ctx, letters, s.seqs); err != nil {
		return err
	}
	for _, seq := range s.seqs {
		l, err := letters.Get(ctx, seq)
		if err != nil {
			return err
		}
		if !fn(l) {
			return nil
		}
	}
	return nil
}

// checkSeqs returns an error naming every sequence that holds no letter.
func checkSeqs(ctx context.Context, letters *consumer.DeadLetters, seqs []uint64) error {
	var unknown []string
	for _, seq := range seqs {
		_, err := letters.Get(ctx, seq)
		if errors.Is(err, consumer.ErrUnknownLetter) {
			unknown = append(unknown, strconv.FormatUint(seq, 10))
			continue
		}
		if err != nil {
			return err
		}
	}
	switch len(unknown) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("no dead letter %s in %s (never stored, or already redriven or purged; worker dlq list shows the letters)", unknown[0], letters.Name())
	}
	return fmt.Errorf("no dead letters %s in %s (never stored, or already redriven or purged; worker dlq list shows the letters)", strings.Join(unknown, ", "), letters.Name())
}

// displayID is a letter's id as list and redrive print it.
func displayID(l *consumer.Letter) string {
	if l.ID == "" {
		return "-"
	}
	return l.ID
}
