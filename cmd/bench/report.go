package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spanferry/spanferry/internal/config"
)

// report collects the figures of a bench run and renders them as Markdown.
type report struct {
	opts      options
	Command   string
	Machine   machine
	BodyBytes int
	Spans     int
	Env       []string // the worker settings taken from the environment

	Hotpath []hotpathFigure
	Main    [][]result  // per pipeline of the main section, every run
	Batches []result    // per batch size
	Sizes   [][2]result // per size: raw, worker
	Paced   []result
	Backlog *result
	Tenants *tenantsFigures
	Redact  [][]result // without and with redaction rules, every run
	Fleet   []fleetRun // per fleet size (fleet.go)
}

type machine struct {
	CPU         string
	Cores       int
	Go          string
	Date        string
	LoadBefore  string
	LoadAfter   string
	Compression string
}

func newReport(o options, args []string, bodyBytes, spans int) *report {
	cmd := "go run ./cmd/bench"
	for _, a := range args {
		cmd += " " + shellQuote(a)
	}
	r := &report{opts: o, Command: cmd, BodyBytes: bodyBytes, Spans: spans}
	r.Machine = machine{
		CPU:        cpuModel(),
		Cores:      runtime.NumCPU(),
		Go:         runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		Date:       time.Now().UTC().Format("2006-01-02 15:04 MST"),
		LoadBefore: loadAvg(),
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WORKER_") || strings.HasPrefix(kv, "OTEL_") || strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMAXPROCS=") || strings.HasPrefix(kv, "GOMEMLIMIT=") {
			r.Env = append(r.Env, kv)
		}
	}
	return r
}

func (r *report) finish() { r.Machine.LoadAfter = loadAvg() }

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// thousands formats v with thousands separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Indexes of report.Main.
const (
	mainRawConsume = iota
	mainRawFetch
	mainWorker
	mainBatch1
	mainSDK
)

// rawBest is the faster raw baseline of the main section.
func (r *report) rawBest() (result, bool) {
	if len(r.Main) == 0 {
		return result{}, false
	}
	a, b := median(r.Main[mainRawConsume]), median(r.Main[mainRawFetch])
	if b.rate() > a.rate() {
		return b, true
	}
	return a, true
}

// cpuRatios returns the worker's CPU per result over the raw Consume +
// Ack consumer's per message, and over the batch-size-1 worker's, from
// the runs of median CPU of the main section: the run of median results/s
// need not be the run of median CPU.
func (r *report) cpuRatios() (vsRaw, vsBatch1 float64) {
	w, raw, one := r.mainCPU(mainWorker), r.mainCPU(mainRawConsume), r.mainCPU(mainBatch1)
	return w / raw, w / one
}

// mainCPU is the median CPU s/10k of a pipeline's runs in the main section.
func (r *report) mainCPU(pipeline int) float64 {
	m := medianCPU(r.Main[pipeline])
	return m.per10k(m.child.CPU)
}

func (r *report) markdown() string {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Machine
	p("Run on %s: %s, %d cores, %s; load average %s before, %s after.\n\n", m.Date, m.CPU, m.Cores, m.Go, m.LoadBefore, m.LoadAfter)
	p("```sh\n%s\n```\n\n", r.Command)
	p("Results of %d steps: %d bytes of JSON, %d spans each.", r.opts.steps, r.BodyBytes, r.Spans)
	if len(r.Env) > 0 {
		p(" Environment: `%s`.", strings.Join(r.Env, "`, `"))
	} else {
		procs := runtime.GOMAXPROCS(0)
		p(" No WORKER_*, OTEL_* or GOGC variable set: the worker's defaults (batch 200, wait 50ms, concurrency %d for GOMAXPROCS %d, AckWait 30s, no compression, GOGC 200).",
			config.DefaultExportConcurrency(procs), procs)
	}
	p("\n\n")

	if len(r.Hotpath) > 0 {
		p("### Hot path, in process (testing.Benchmark; median of %d runs)\n\n| work per %d-step result | µs | fastest run µs | allocs | bytes |\n|---|--:|--:|--:|--:|\n", r.Hotpath[0].Runs, r.opts.steps)
		for _, f := range r.Hotpath {
			p("| %s | %.2f | %.2f | %.1f | %s |\n", f.Name, f.NsPer/1e3, f.MinNsPer/1e3, f.AllocsPer, thousands(f.BytesPer))
		}
		p("\n")
	}

	raw, haveRaw := r.rawBest()
	if haveRaw {
		p("### Worker against raw JetStream (%s results; median of %d runs)\n\n", thousands(float64(r.opts.n)), r.opts.repeat)
		p("| pipeline | results/s | spans/s | ÷ raw | runs (results/s) | worker CPU s/10k | runs (CPU s/10k) | receiver CPU s/10k | server CPU s/10k | worker peak RSS | worker peak heap |\n")
		p("|---|--:|--:|--:|---|--:|---|--:|--:|--:|--:|\n")
		for i, runs := range r.Main {
			med := median(runs)
			var each, eachCPU []string
			for _, run := range runs {
				each = append(each, thousands(run.rate()))
				eachCPU = append(eachCPU, fmt.Sprintf("%.3f", run.per10k(run.child.CPU)))
			}
			recv, spans := "—", "—"
			if med.role == roleWorker {
				recv = fmt.Sprintf("%.2f", med.per10k(med.recv.CPU))
				spans = thousands(med.rate() * float64(r.Spans))
			}
			label := med.label
			if i == mainBatch1 {
				label += fmt.Sprintf(" (%s results)", thousands(float64(r.opts.refN)))
			}
			p("| %s | %s | %s | %.2f | %s | %.2f | %s | %s | %.2f | %s | %s |\n", label, thousands(med.rate()), spans,
				med.rate()/raw.rate(), strings.Join(each, ", "), med.per10k(med.child.CPU), strings.Join(eachCPU, ", "), recv, med.per10k(med.serverCPU),
				mib(med.child.MaxRSS), mib(int64(med.child.PeakHeap)))
		}
		w, one := median(r.Main[mainWorker]), median(r.Main[mainBatch1])
		cpu, cpuOne := r.cpuRatios()
		p("\nWorker ÷ raw: **%.2f**. Worker ÷ batch size 1: **%.1f×**. Worker CPU per result ÷ raw Consume + Ack's per message: **%.1f×**; ÷ batch size 1's: **%.2f×** (the medians of the runs' CPU: worker %.3f, raw %.3f, batch size 1 %.3f s/10k).\n\n",
			w.rate()/raw.rate(), w.rate()/one.rate(), cpu, cpuOne, r.mainCPU(mainWorker), r.mainCPU(mainRawConsume), r.mainCPU(mainBatch1))
	}

	if len(r.Batches) > 0 {
		p("### Batch size\n\n")
		p("| batch size | results | results/s | ÷ raw | worker CPU s/10k | receiver CPU s/10k | requests | worker peak RSS | worker peak heap |\n")
		p("|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, run := range r.Batches {
			vsRaw := "—"
			if haveRaw {
				vsRaw = fmt.Sprintf("%.2f", run.rate()/raw.rate())
			}
			size := run.batch
			p("| %d | %s | %s | %s | %.2f | %.2f | %s | %s | %s |\n", size, thousands(float64(run.n)), thousands(run.rate()), vsRaw,
				run.per10k(run.child.CPU), run.per10k(run.recv.CPU), thousands(float64(run.recv.Requests)),
				mib(run.child.MaxRSS), mib(int64(run.child.PeakHeap)))
		}
		p("\n")
	}

	if len(r.Sizes) > 0 {
		p("### Backlog size (worker defaults)\n\n")
		p("| results | raw results/s | worker results/s | ÷ raw | worker elapsed | worker CPU s/10k | receiver CPU s/10k | worker peak RSS | worker peak heap |\n")
		p("|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, pair := range r.Sizes {
			raw, w := pair[0], pair[1]
			p("| %s | %s | %s | %.2f | %.1fs | %.2f | %.2f | %s | %s |\n", thousands(float64(w.n)), thousands(raw.rate()), thousands(w.rate()),
				w.rate()/raw.rate(), w.child.Elapsed, w.per10k(w.child.CPU), w.per10k(w.recv.CPU), mib(w.child.MaxRSS), mib(int64(w.child.PeakHeap)))
		}
		p("\n")
	}

	if len(r.Paced) > 0 {
		p("### Steady %s results/s for %s\n\n", thousands(float64(r.opts.rate)), r.opts.duration)
		p("| pipeline | publish→ack p50 | p99 | max | publish→export p50 | p99 | max | worker CPU | receiver CPU |\n")
		p("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, run := range r.Paced {
			exp := "— | — | —"
			recv := "—"
			if run.role == roleWorker {
				exp = fmt.Sprintf("%.1f ms | %.1f ms | %.1f ms", run.recv.P50, run.recv.P99, run.recv.Max)
				recv = fmt.Sprintf("%.0f%%", 100*run.recv.CPU/run.child.Elapsed)
			}
			p("| %s | %.1f ms | %.1f ms | %.1f ms | %s | %.0f%% | %s |\n", run.label, run.child.P50, run.child.P99, run.child.Max,
				exp, 100*run.child.CPU/run.child.Elapsed, recv)
		}
		p("\n")
	}

	if r.Backlog != nil {
		w := r.Backlog
		p("### Backlog of %s results\n\n", thousands(float64(w.n)))
		p("The worker (defaults) drained it in %.0fs (%s results/s, %.2f CPU s/10k): peak RSS **%s**, peak heap %s.\n\n",
			w.child.Elapsed, thousands(w.rate()), w.per10k(w.child.CPU), mib(w.child.MaxRSS), mib(int64(w.child.PeakHeap)))
	}

	if r.Tenants != nil {
		b.WriteString(r.Tenants.markdown())
	}
	r.redactMarkdown(p)
	r.fleetMarkdown(&b)

	p("### Targets\n\n| target | measured | |\n|---|---|---|\n")
	check := func(name, measured string, ok bool) {
		mark := "not met"
		if ok {
			mark = "met"
		}
		p("| %s | %s | %s |\n", name, measured, mark)
	}
	var decode, mapEncode *hotpathFigure
	for i, f := range r.Hotpath {
		switch {
		case strings.HasPrefix(f.Name, "decode"):
			decode = &r.Hotpath[i]
		case strings.HasPrefix(f.Name, "map + encode"):
			mapEncode = &r.Hotpath[i]
		}
	}
	if decode != nil {
		check(fmt.Sprintf("decode + validate ≤ 12 µs per %d-step result", r.opts.steps), fmt.Sprintf("%.1f µs", decode.NsPer/1e3), decode.NsPer <= 12e3)
	}
	if mapEncode != nil {
		check(fmt.Sprintf("map + encode ≤ 25 µs per %d-step result", r.opts.steps), fmt.Sprintf("%.1f µs", mapEncode.NsPer/1e3), mapEncode.NsPer <= 25e3)
	}
	if decode != nil && mapEncode != nil {
		allocs := decode.AllocsPer + mapEncode.AllocsPer
		check("≤ 60 allocations per result (decode + map + encode)", fmt.Sprintf("%.1f", allocs), allocs <= 60)
	}
	if haveRaw {
		cpu, cpuOne := r.cpuRatios()
		check("worker CPU per result ≤ 9 × raw Consume + Ack's per message", fmt.Sprintf("%.1f ×", cpu), cpu <= 9)
		check("worker CPU per result ≤ 0.2 × batch size 1's", fmt.Sprintf("%.2f ×", cpuOne), cpuOne <= 0.2)
	}
	if r.Backlog != nil {
		check(fmt.Sprintf("peak RSS < 150 MB draining %s results", thousands(float64(r.Backlog.n))),
			fmt.Sprintf("%.0f MB", float64(r.Backlog.child.MaxRSS)/1e6), r.Backlog.child.MaxRSS < 150e6)
	}
	if t := r.Tenants; t != nil {
		over := t.overhead()
		check("worker CPU per result with 3 tenants ≤ 1.10 × without", fmt.Sprintf("%.2f ×", over), over <= 1.10)
		down := t.Latency[1]
		check("tenant A's p99 publish→export < 2 s while tenant B is down", fmt.Sprintf("%.1f ms", down.recv.P99), down.recv.P99 < 2000)
	}
	for _, run := range r.Paced {
		if run.role == roleWorker {
			check(fmt.Sprintf("p99 publish→export < 100 ms at %s results/s", thousands(float64(r.opts.rate))),
				fmt.Sprintf("%.1f ms", run.recv.P99), run.recv.P99 < 100)
		}
	}
	return b.String()
}

const (
	beginMarker = "<!-- bench:begin -->"
	endMarker   = "<!-- bench:end -->"
)

// writeReport puts md between the markers of the file at path, or appends
// it with the markers when they are missing.
func writeReport(path, md string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	block := beginMarker + "\n" + md + endMarker + "\n"
	s := string(old)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i >= 0 && j > i {
		s = s[:i] + block + strings.TrimPrefix(s[j+len(endMarker):], "\n")
	} else {
		if s != "" && !strings.HasSuffix(s, "\n\n") {
			s += "\n"
		}
		s += block
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
