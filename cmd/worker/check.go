package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/wiring"
	"github.com/spanferry/spanferry/mapping"
)

// errInvalidInput makes `worker check` exit 1 after it has reported every
// invalid result.
var errInvalidInput = errors.New("invalid results")

// checkCmd runs `worker check FILE…`: it validates each result and prints
// the span tree it maps to, with no NATS and no export.
func checkCmd(cfg config.Config, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: worker check [--show-content] FILE... (or - for stdin)\n\nValidates workflow results and prints the span tree each maps to, with the\ncontent controls of WORKER_CAPTURE_CONTENT and WORKER_REDACT_FILE applied.\n\nFlags:")
		fs.PrintDefaults()
	}
	showContent := fs.Bool("show-content", false, "print each span's input, output, metadata and error message as exported (redacted)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("check: no input")
	}
	m, err := wiring.Mapper(cfg)
	if err != nil {
		return err
	}
	if *showContent {
		printControls(stdout, cfg, m)
	}
	invalid := 0
	for _, name := range fs.Args() {
		f, err := openInput(name, stdin)
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		results, err := readResults(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			invalid++
			continue
		}
		for i, raw := range results {
			label := name
			if len(results) > 1 {
				label = fmt.Sprintf("%s[%d]", name, i)
			}
			if err := checkOne(m, label, raw, *showContent, stdout); err != nil {
				fmt.Fprintf(stderr, "%s: invalid: %v\n", label, err)
				invalid++
			}
		}
	}
	if invalid > 0 {
		return fmt.Errorf("%w: %d", errInvalidInput, invalid)
	}
	return nil
}

func checkOne(m *mapping.Mapper, label string, raw []byte, showContent bool, w io.Writer) error {
	d, err := m.Decode(raw, mapping.Source{Stored: time.Now()})
	if err != nil {
		return err
	}
	c, err := m.NewCollector(d, nil)
	if err != nil {
		return err
	}
	st, err := m.Map(c, d)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: result %s, trace %s, %d spans", label, d.Result.ID, d.TraceID, st.Spans)
	if st.Truncations > 0 {
		fmt.Fprintf(w, ", %d values truncated", st.Truncations)
	}
	fmt.Fprint(w, redactionSummary(m, st))
	fmt.Fprintln(w)
	printTree(w, c.Take(), showContent)
	return nil
}

// printTree prints spans as an indented tree: children under their parent
// in start order, with each span's duration and its key attributes, and
// with showContent the content each carries.
func printTree(w io.Writer, spans []sdktrace.ReadOnlySpan, showContent bool) {
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext().SpanID()] = true
	}
	var roots []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if p := s.Parent(); p.IsValid() && ids[p.SpanID()] {
			children[p.SpanID()] = append(children[p.SpanID()], s)
		} else {
			roots = append(roots, s)
		}
	}
	var walk func(s sdktrace.ReadOnlySpan, depth int)
	walk = func(s sdktrace.ReadOnlySpan, depth int) {
		fmt.Fprintf(w, "  %s%s  %s  %s\n", strings.Repeat("  ", depth), s.Name(),
			s.EndTime().Sub(s.StartTime()), describe(s))
		if showContent {
			printContent(w, s, "  "+strings.Repeat("  ", depth+2))
		}
		kids := children[s.SpanContext().SpanID()]
		slices.SortStableFunc(kids, byStart)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	slices.SortStableFunc(roots, byStart)
	for _, r := range roots {
		walk(r, 0)
	}
}

func byStart(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) }

// describe renders the attributes a reader of the tree looks for first.
func describe(s sdktrace.ReadOnlySpan) string {
	a := map[string]string{}
	for _, kv := range s.Attributes() {
		a[string(kv.Key)] = kv.Value.Emit()
	}
	parts := []string{"[" + cmp.Or(a[string(mapping.AttrStepKind)], a[string(mapping.AttrTraceloopSpanKind)]) + "]"}
	if v := a[string(mapping.AttrGenAIRequestModel)]; v != "" {
		parts = append(parts, v)
	}
	in, out := a[string(mapping.AttrGenAIUsageInputTokens)], a[string(mapping.AttrGenAIUsageOutputToken)]
	if in != "" || out != "" {
		parts = append(parts, fmt.Sprintf("tokens %s→%s", cmp.Or(in, "?"), cmp.Or(out, "?")))
	}
	if v := a[string(mapping.AttrGenAIUsageCost)]; v != "" {
		parts = append(parts, "$"+v)
	}
	if st := s.Status(); st.Code.String() == "Error" {
		parts = append(parts, "ERROR: "+st.Description)
	}
	parts = append(parts, "span "+s.SpanContext().SpanID().String())
	return strings.Join(parts, "  ")
}
