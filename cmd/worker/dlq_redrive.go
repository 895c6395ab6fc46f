package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spanferry/spanferry/consumer"
)

const selectionHelp = `Choose the letters by sequence numbers, by --grep, --subject or --since
(combined, they must all match; --limit keeps the oldest N), or --all.
`

// redrive is `worker dlq redrive`: each chosen letter is published back to
// its original subject and deleted once JetStream stored the publish.
func (d *dlq) redrive(ctx context.Context, args []string) error {
	fs := d.flagSet("redrive", `usage: worker dlq redrive (SEQ... | --grep TEXT | --subject S | --since TIME | --all) [--limit N] [--dry-run]

Publishes each chosen dead letter's body and original headers (without the
Spanferry-* ones) to its original subject, with Nats-Msg-Id <id>.redrive.<seq>
and Spanferry-Redriven-From <seq>, and deletes the letter only once JetStream
acknowledged the publish. Redriving a letter twice within the results
stream's duplicate window publishes it once. Exit 0 when every chosen letter
was redriven, 1 otherwise.
`+selectionHelp+`
`)
	ff := addFilterFlags(fs)
	all := fs.Bool("all", false, "redrive every dead letter")
	dryRun := fs.Bool("dry-run", false, "print what would be redriven; publish and delete nothing")
	progress := fs.String("progress", "auto", "auto (a line redrawn on a terminal, nothing otherwise), bar, lines or none; on stderr")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	sel, err := parseSelection("redrive", pos, ff, *all)
	if err != nil {
		fs.Usage()
		return err
	}
	p, err := newDLQProgress(*progress, d.stdout, d.stderr)
	if err != nil {
		return err
	}
	letters, err := d.open(ctx, "redrive")
	if err != nil {
		return err
	}
	defer d.nc.Close()
	if p != nil {
		p.total = uint64(len(sel.seqs))
		if p.total == 0 {
			if p.total, err = letters.Count(ctx); err != nil {
				return fmt.Errorf("dlq redrive: %w", err)
			}
		}
	}

	var done, dups, failed uint64
	fail := func(l *consumer.Letter, err error) {
		failed++
		p.clear()
		fmt.Fprintf(d.stderr, "dlq redrive: %v (id %s)\n", err, displayID(l))
	}
	err = sel.each(ctx, letters, func(l *consumer.Letter) bool {
		defer func() { p.tick(done, failed) }()
		if *dryRun {
			if _, err := l.RedriveMsg(); err != nil {
				fail(l, err)
				return true
			}
			done++
			p.clear()
			fmt.Fprintf(d.stdout, "would redrive %d (id %s) to %s as %s\n", l.Seq, displayID(l), l.Subject, l.RedriveID())
			return true
		}
		r, err := letters.Redrive(ctx, l)
		if err != nil {
			fail(l, err)
			return ctx.Err() == nil
		}
		done++
		p.clear()
		if r.Duplicate {
			dups++
			fmt.Fprintf(d.stdout, "redriven %d (id %s) to %s: already stored by an earlier redrive (%s seq %d), duplicate dropped\n", l.Seq, displayID(l), l.Subject, r.Stream, r.Seq)
		} else {
			fmt.Fprintf(d.stdout, "redriven %d (id %s) to %s: %s seq %d\n", l.Seq, displayID(l), l.Subject, r.Stream, r.Seq)
		}
		return ctx.Err() == nil
	})
	p.finish()
	if err != nil && done+failed == 0 {
		return fmt.Errorf("dlq redrive: %w", err)
	}
	if *dryRun {
		fmt.Fprintf(d.stdout, "redrive: %d would be redriven, %d could not be (dry run: nothing published or deleted)\n", done, failed)
	} else {
		fmt.Fprintf(d.stdout, "redrive: %d redriven (%d already stored by an earlier redrive), %d failed\n", done, dups, failed)
	}
	switch {
	case err != nil:
		return fmt.Errorf("dlq redrive: stopped after %d letters: %w", done+failed, err)
	case ctx.Err() != nil:
		return fmt.Errorf("dlq redrive: interrupted after %d letters: %w", done+failed, context.Cause(ctx))
	case failed > 0:
		return fmt.Errorf("dlq redrive: %d of %d dead letters not redriven", failed, done+failed)
	}
	return nil
}

// purge is `worker dlq purge`: the chosen letters are deleted.
func (d *dlq) purge(ctx context.Context, args []string) error {
	fs := d.flagSet("purge", `usage: worker dlq purge (SEQ... | --grep TEXT | --subject S | --since TIME | --all) [--limit N] [--dry-run]

Deletes the chosen dead letters and prints how many. --all deletes the
letters stored when it starts; letters dead-lettered meanwhile are kept.
`+selectionHelp+`
`)
	ff := addFilterFlags(fs)
	all := fs.Bool("all", false, "delete every dead letter")
	dryRun := fs.Bool("dry-run", false, "print how many would be deleted; delete nothing")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	sel, err := parseSelection("purge", pos, ff, *all)
	if err != nil {
		fs.Usage()
		return err
	}
	letters, err := d.open(ctx, "purge")
	if err != nil {
		return err
	}
	defer d.nc.Close()

	var n uint64
	switch {
	case sel.all && *dryRun:
		n, err = letters.Count(ctx)
	case sel.all:
		n, err = letters.PurgeAll(ctx)
	default:
		err = sel.each(ctx, letters, func(l *consumer.Letter) bool {
			if !*dryRun {
				if err = letters.Delete(ctx, l.Seq); err != nil {
					return false
				}
			}
			n++
			return ctx.Err() == nil
		})
		if err == nil {
			err = ctx.Err()
		}
	}
	if *dryRun {
		fmt.Fprintf(d.stdout, "purge: %s would be deleted from %s (dry run: nothing deleted)\n", deadLetters(n), letters.Name())
	} else {
		fmt.Fprintf(d.stdout, "purge: deleted %s from %s\n", deadLetters(n), letters.Name())
	}
	if err != nil {
		return fmt.Errorf("dlq purge: %w", err)
	}
	return nil
}

// deadLetters counts: "1 dead letter", "2 dead letters".
func deadLetters(n uint64) string {
	if n == 1 {
		return "1 dead letter"
	}
	return fmt.Sprintf("%d dead letters", n)
}

// dlqProgress shows a long redrive's progress on stderr: a line redrawn in
// place on a terminal, or plain lines every few seconds when asked for.
type dlqProgress struct {
	w        io.Writer
	bar      bool
	shared   bool // stdout is the same terminal: clear the bar before each output line
	interval time.Duration
	total    uint64 // letters to go through, at most
	start    time.Time
	last     time.Time
	drawn    bool
}

// newDLQProgress returns nil for no progress; set total before the first
// tick.
func newDLQProgress(mode string, stdout, stderr io.Writer) (*dlqProgress, error) {
	p := &dlqProgress{w: stderr, start: time.Now()}
	switch mode {
	case "auto":
		if !isTerminal(stderr) {
			return nil, nil
		}
		fallthrough
	case "bar":
		p.bar, p.interval, p.shared = true, barInterval, isTerminal(stdout)
	case "lines":
		p.interval = lineInterval
	case "none":
		return nil, nil
	default:
		return nil, fmt.Errorf("dlq redrive: --progress %q is not auto, bar, lines or none", mode)
	}
	p.last = p.start
	return p, nil
}

// tick redraws the progress when its interval has passed.
func (p *dlqProgress) tick(done, failed uint64) {
	if p == nil || time.Since(p.last) < p.interval {
		return
	}
	p.last = time.Now()
	n := done + failed
	text := fmt.Sprintf("redrive: %d/%d letters, %d failed, %s letters/s", n, max(p.total, n), failed, rate(n, time.Since(p.start)))
	if !p.bar {
		fmt.Fprintln(p.w, text)
		return
	}
	const width = 30
	filled := width
	if p.total > n {
		filled = int(uint64(width) * n / p.total)
	}
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), text)
	p.drawn = true
}

// clear erases the bar before a line is written to the same terminal.
func (p *dlqProgress) clear() {
	if p != nil && p.drawn && p.shared {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

func (p *dlqProgress) finish() {
	if p != nil && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}
