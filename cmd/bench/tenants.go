package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// tenantsFigures are the tenants section's runs.
type tenantsFigures struct {
	CPU     [2][]result // worker without a tenants file, with three tenants: every run
	Latency [2]result   // paced, tenants A and B: B up, B down
}

// The tenants of the section; the template's organization is acme.
var benchTenants = []string{"acme", "globex", "initech"}

// tenantsSection measures what routing by tenant costs (worker CPU per
// result with a tenants file of three tenants, their results in turn,
// against no tenants file on the same stream) and tenant A's latency at a
// steady rate while tenant B's destination refuses connections, against
// the same with B up.
func (b *bench) tenantsSection(ctx context.Context) error {
	fmt.Fprintf(b.out, "tenants: the worker with three tenants against none, %d results, %d runs each; A's latency with B down\n", b.opts.n, b.opts.repeat)
	dir, err := os.MkdirTemp("", "spanferry-bench-tenants-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	traces := b.recvURL + "/v1/traces"
	down, err := refusedURL()
	if err != nil {
		return err
	}
	three, err := tenantsFile(dir, "three.yaml", map[string]string{"acme": traces, "globex": traces, "initech": traces})
	if err != nil {
		return err
	}
	bUp, err := tenantsFile(dir, "b-up.yaml", map[string]string{"acme": traces, "globex": traces})
	if err != nil {
		return err
	}
	bDown, err := tenantsFile(dir, "b-down.yaml", map[string]string{"acme": traces, "globex": down})
	if err != nil {
		return err
	}

	s, err := b.broker.createStream(ctx, "TENANTS")
	if err != nil {
		return err
	}
	s.orgs = benchTenants
	took, err := b.broker.prefill(ctx, s, b.body, b.opts.n)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "  prefilled %d results of %s in turn in %.1fs\n", b.opts.n, strings.Join(benchTenants, ", "), took.Seconds())
	f := &tenantsFigures{}
	runs, err := b.interleaved(ctx, []spec{
		{label: "worker, no tenants file", role: roleWorker, stream: s, n: b.opts.n},
		{label: "worker, 3 tenants", role: roleWorker, stream: s, n: b.opts.n, env: []string{"WORKER_TENANTS_FILE=" + three}},
	})
	if err != nil {
		return err
	}
	f.CPU = [2][]result{runs[0], runs[1]}
	if err := b.broker.deleteStream(ctx, s); err != nil {
		return err
	}

	n := int(b.opts.duration.Seconds() * float64(b.opts.rate))
	for i, file := range []string{bUp, bDown} {
		label, exported := "worker, tenants A and B up", n
		if i == 1 {
			// B's results are parked (acknowledged), only A's exported.
			label, exported = "worker, tenant B down", (n+1)/2
		}
		ps, err := b.broker.createStream(ctx, "PACEDTENANTS")
		if err != nil {
			return err
		}
		ps.orgs = benchTenants[:2]
		r, err := b.runOnce(ctx, spec{label: label, role: roleWorker, stream: ps, n: n, paced: true, exported: exported, env: []string{"WORKER_TENANTS_FILE=" + file}})
		if err != nil {
			return err
		}
		f.Latency[i] = r
		if err := b.broker.deleteStream(ctx, ps); err != nil {
			return err
		}
	}
	b.report.Tenants = f
	// B's parked results stay behind with the run: drop the park.
	return b.broker.deleteStream(ctx, stream{name: "SPANFERRY_PARK"})
}

// overhead is the median worker CPU per result with three tenants over
// the median without.
func (f *tenantsFigures) overhead() float64 {
	none, three := medianCPU(f.CPU[0]), medianCPU(f.CPU[1])
	return three.per10k(three.child.CPU) / none.per10k(none.child.CPU)
}

func (f *tenantsFigures) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("### Tenants\n\n")
	p("Results of %s in turn; the tenants file routes each to its own OTLP client (all to the bench's receiver).\n\n", strings.Join(benchTenants, ", "))
	p("| pipeline | results/s (median) | worker CPU s/10k (median) | runs (CPU s/10k) | requests (last run) |\n|---|--:|--:|---|--:|\n")
	for _, runs := range f.CPU {
		var each []string
		for _, r := range runs {
			each = append(each, fmt.Sprintf("%.2f", r.per10k(r.child.CPU)))
		}
		med, cpu := median(runs), medianCPU(runs)
		p("| %s | %s | %.2f | %s | %d |\n", runs[0].label, thousands(med.rate()), cpu.per10k(cpu.child.CPU), strings.Join(each, ", "), runs[len(runs)-1].recv.Requests)
	}
	p("\nWorker CPU per result with three tenants ÷ without: **%.2f**.\n\n", f.overhead())
	p("Tenants A and B publishing in turn; in the second run B's destination refuses connections and its results are parked, so what is exported, and timed, is A's:\n\n")
	p("| run | results | exported publish→export p50 | p99 | max | publish→ack p99 |\n|---|--:|--:|--:|--:|--:|\n")
	for _, r := range f.Latency {
		p("| %s | %d | %.1f ms | %.1f ms | %.1f ms | %.1f ms |\n", r.label, r.n, r.recv.P50, r.recv.P99, r.recv.Max, r.child.P99)
	}
	p("\n")
	return b.String()
}

// tenantsFile writes a tenants file routing each tenant to its endpoint.
func tenantsFile(dir, name string, endpoints map[string]string) (string, error) {
	var b strings.Builder
	b.WriteString("tenants:\n")
	for _, t := range benchTenants {
		if e, ok := endpoints[t]; ok {
			fmt.Fprintf(&b, "  %s:\n    endpoint: %s\n", t, e)
		}
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// refusedURL is a traces URL on a loopback port nothing listens on.
func refusedURL() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/v1/traces", nil
}
