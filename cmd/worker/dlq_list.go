package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spanferry/spanferry/consumer"
)

// letterTime is how list and show print when a letter was stored: UTC,
// milliseconds, one width for every line.
const letterTime = "2006-01-02T15:04:05.000Z07:00"

// list is `worker dlq list`: one line (or one JSON object) per letter,
// written as it is read, so that a listing of any size streams.
func (d *dlq) list(ctx context.Context, args []string) error {
	fs := d.flagSet("list", `usage: worker dlq list [--subject S] [--grep TEXT] [--since TIME] [--limit N] [--json]

Lists the dead letters, oldest first: sequence, when it was dead-lettered,
original subject, result id, deliveries, tenant ("-" for none) and reason.

`)
	ff := addFilterFlags(fs)
	asJSON := fs.Bool("json", false, "one JSON object per line: seq, time, subject, id, deliveries, reason, tenant, headers")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("dlq list: unexpected argument %q (to see letters whole: worker dlq show SEQ...)", pos[0])
	}
	flt, err := ff.filter("list")
	if err != nil {
		return err
	}
	letters, err := d.open(ctx, "list")
	if err != nil {
		return err
	}
	defer d.nc.Close()

	n := 0
	for l, err := range letters.Letters(ctx, flt) {
		if err != nil {
			return fmt.Errorf("dlq list: %w", err)
		}
		if *asJSON {
			err = writeLetterJSON(d.stdout, l)
		} else {
			if n == 0 {
				_, err = fmt.Fprintf(d.stdout, listFormat, "SEQ", "TIME", "SUBJECT", "ID", "DELIVERIES", "TENANT", "ERROR")
			}
			if err == nil {
				err = writeLetterLine(d.stdout, l)
			}
		}
		if err != nil {
			return fmt.Errorf("dlq list: %w", err)
		}
		n++
	}
	if n == 0 && !*asJSON {
		what := "no dead letters in " + letters.Name()
		if ff.selects() {
			what += " match"
		}
		fmt.Fprintln(d.stdout, what)
	}
	return nil
}

// listFormat pads the short columns so that a terminal shows a table; every
// field but the last is one word, so that awk and cut see the same columns.
const listFormat = "%6s  %-24s  %-26s  %-30s  %10s  %-8s  %s\n"

func writeLetterLine(w io.Writer, l *consumer.Letter) error {
	deliveries := "-"
	if l.Deliveries > 0 {
		deliveries = strconv.FormatUint(l.Deliveries, 10)
	}
	_, err := fmt.Fprintf(w, listFormat, strconv.FormatUint(l.Seq, 10), l.Time.UTC().Format(letterTime),
		word(l.Subject), word(displayID(l)), deliveries, word(l.Tenant), oneLine(l.Reason))
	return err
}

// word makes s one column: "-" when empty, quoted when it holds white
// space.
func word(s string) string {
	switch {
	case s == "":
		return "-"
	case strings.IndexFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }) >= 0:
		return strconv.Quote(s)
	}
	return s
}

func oneLine(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Join(strings.Fields(s), " ")
}

// letterJSON is a line of `list --json` (CONTRACT §10).
type letterJSON struct {
	Seq        uint64            `json:"seq"`
	Time       string            `json:"time"`
	Subject    string            `json:"subject"`
	ID         string            `json:"id"`
	Deliveries uint64            `json:"deliveries"`
	Reason     string            `json:"reason"`
	Tenant     string            `json:"tenant"`
	Headers    map[string]string `json:"headers"`
}

func writeLetterJSON(w io.Writer, l *consumer.Letter) error {
	headers := make(map[string]string, len(l.Header))
	for k, v := range l.Header {
		if len(v) > 0 {
			headers[k] = v[0]
		}
	}
	line, err := json.Marshal(letterJSON{
		Seq: l.Seq, Time: l.Time.UTC().Format(time.RFC3339Nano), Subject: l.Subject, ID: displayID(l),
		Deliveries: l.Deliveries, Reason: l.Reason, Tenant: l.Tenant, Headers: headers,
	})
	if err != nil {
		return err
	}
	_, err = w.Write(append(line, '\n'))
	return err
}

// show is `worker dlq show SEQ...`.
func (d *dlq) show(ctx context.Context, args []string) error {
	fs := d.flagSet("show", `usage: worker dlq show SEQ...

Prints each dead letter whole: every header, then the body (indented when it
is JSON). A sequence that holds no letter is an error, and nothing is printed.

`)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	seqs, err := parseSeqs("show", pos)
	if err != nil {
		return err
	}
	if len(seqs) == 0 {
		fs.Usage()
		return errors.New("dlq show: give the sequence number of at least one dead letter (worker dlq list shows them)")
	}
	letters, err := d.open(ctx, "show")
	if err != nil {
		return err
	}
	defer d.nc.Close()
	first := true
	var werr error
	err = selection{seqs: seqs}.each(ctx, letters, func(l *consumer.Letter) bool {
		if !first {
			fmt.Fprintln(d.stdout)
		}
		first = false
		werr = writeLetter(d.stdout, letters.Name(), l)
		return werr == nil
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("dlq show: %w", err)
	}
	return nil
}

// writeLetter prints a letter whole: a title line, the headers sorted by
// name (each value on its own line), a blank line and the body.
func writeLetter(w io.Writer, stream string, l *consumer.Letter) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "dead letter %d in %s, stored %s\n", l.Seq, stream, l.Time.UTC().Format(letterTime))
	names := make([]string, 0, len(l.Header))
	for k := range l.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range l.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteByte('\n')
	writeBody(&b, l.Data)
	_, err := w.Write(b.Bytes())
	return err
}

// writeBody prints a body indented when it is JSON, as it is when it is
// other text, and Go-quoted when it is not UTF-8 (a terminal must not
// receive raw binary).
func writeBody(b *bytes.Buffer, data []byte) {
	switch {
	case len(data) == 0:
		b.WriteString("(empty body)\n")
	case json.Valid(data):
		if err := json.Indent(b, data, "", "  "); err != nil {
			b.Write(data)
		}
		b.WriteByte('\n')
	case utf8.Valid(data):
		b.Write(data)
		if data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
	default:
		fmt.Fprintf(b, "(%d bytes, not UTF-8; Go-quoted)\n%s\n", len(data), strconv.Quote(string(data)))
	}
}
