package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// redactRules is the redact file of the redact section: the five presets.
const redactRules = `rules:
  - preset: email
  - preset: card
  - preset: bearer
  - preset: api-key
  - preset: jwt
`

// redactSection compares the worker's CPU per result with no redaction
// rules and with five, the runs interleaved so that a noisy neighbour
// hurts them alike. The results are the bench's own, which hold nothing
// to replace: the figure is what scanning every content string costs.
func (b *bench) redactSection(ctx context.Context) error {
	n := b.opts.refN
	fmt.Fprintf(b.out, "redact: the worker without and with 5 redaction rules, %d results, %d runs each\n", n, b.opts.repeat)
	dir, err := os.MkdirTemp(b.opts.dir, "spanferry-redact-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(redactRules), 0o600); err != nil {
		return err
	}
	s, err := b.filled(ctx, "REDACT", n)
	if err != nil {
		return err
	}
	specs := []spec{
		{label: "worker, no redaction rules", role: roleWorker, stream: s, n: n},
		{label: "worker, 5 redaction rules", role: roleWorker, stream: s, n: n, env: []string{"WORKER_REDACT_FILE=" + rules}},
	}
	runs, err := b.interleaved(ctx, specs)
	if err != nil {
		return err
	}
	b.report.Redact = runs
	return b.broker.deleteStream(ctx, s)
}

// redactMarkdown renders the redact section: CPU per result, the median
// run of each pipeline, and the ratio with rules to without.
func (r *report) redactMarkdown(p func(string, ...any)) {
	if len(r.Redact) != 2 {
		return
	}
	p("### Redaction rules (%s results; median of %d runs)\n\n", thousands(float64(r.Redact[0][0].n)), len(r.Redact[0]))
	p("| pipeline | results/s | worker CPU s/10k | runs (CPU s/10k) |\n|---|--:|--:|---|\n")
	var cpu [2]float64
	for i, runs := range r.Redact {
		med := medianCPU(runs)
		cpu[i] = med.per10k(med.child.CPU)
		var each []string
		for _, run := range runs {
			each = append(each, fmt.Sprintf("%.2f", run.per10k(run.child.CPU)))
		}
		p("| %s | %s | %.2f | %s |\n", med.label, thousands(med.rate()), cpu[i], strings.Join(each, ", "))
	}
	p("\nWorker CPU per result with 5 rules ÷ without: **%.2f** (the results contain nothing to replace).\n\n", cpu[1]/cpu[0])
}
