package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/internal/wiring"
)

// runRole runs a child process's role and returns its exit code.
func runRole(role string, args []string) int {
	var err error
	switch role {
	case roleWorker, roleRaw:
		err = consumeRole(role, args)
	case roleReceiver:
		err = receiverRole()
	case roleReplay:
		err = replayRole(args)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		emit(event{Event: "error", Err: err.Error()})
		return 1
	}
	return 0
}

// recorder counts the acknowledged results of a consuming child and their
// publish→ack latency. The clock starts at the first fetch, after the
// child has connected and bound, so that neither process start-up nor
// binding is counted.
type recorder struct {
	expect  int64
	acked   atomic.Int64
	last    atomic.Int64 // unix ns of the latest ack
	latency hist
	done    chan struct{}

	startOnce sync.Once
	start     time.Time
	startCPU  time.Duration
	profile   string
}

func (r *recorder) begin() {
	r.startOnce.Do(func() {
		if r.profile != "" {
			if f, err := os.Create(r.profile); err == nil {
				_ = pprof.StartCPUProfile(f)
			}
		}
		r.start, r.startCPU = time.Now(), cpuTime()
	})
}

func (r *recorder) ack(m jetstream.Msg) {
	if ns, err := strconv.ParseInt(m.Headers().Get(headerPublished), 10, 64); err == nil {
		r.latency.record(time.Since(time.Unix(0, ns)))
	}
	r.last.Store(time.Now().UnixNano())
	if r.acked.Add(1) == r.expect {
		close(r.done)
	}
}

// consumeRole is a child that consumes a stream, as the worker or as a
// plain consumer, until it has acknowledged -expect results.
func consumeRole(role string, args []string) error {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	expect := fs.Int("expect", 0, "results to acknowledge")
	mode := fs.String("mode", "consume", "raw: consume (Consume callback) or fetch (Fetch loop)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run")
	memProfile := fs.String("memprofile", "", "write an allocation profile at the end")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *expect < 1 {
		return errors.New("-expect must be at least 1")
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("spanferry-bench-"+role[1:]))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	rec := &recorder{expect: int64(*expect), done: make(chan struct{}), profile: *cpuProfile}
	heap := sampleHeap()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var stop func() error
	if role == roleWorker {
		stop, err = startWorker(ctx, cfg, nc, instrument(js, rec), log)
	} else {
		stop, err = startRaw(ctx, cfg, js, rec, *mode)
	}
	if err != nil {
		return err
	}
	emit(event{Event: "ready"})

	select {
	case <-rec.done:
	case <-time.After(*timeout):
		return fmt.Errorf("acknowledged %d of %d results in %s", rec.acked.Load(), *expect, *timeout)
	}
	// Acks are publishes: the run ends when the server has them all.
	if err := nc.Flush(); err != nil {
		return err
	}
	elapsed, cpu := time.Since(rec.start), cpuTime()-rec.startCPU
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	cancel()
	if err := stop(); err != nil {
		return err
	}
	if *memProfile != "" {
		if f, err := os.Create(*memProfile); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	emit(event{
		Event: "done", Results: int(rec.acked.Load()),
		Elapsed: elapsed.Seconds(), CPU: cpu.Seconds(), MaxRSS: maxRSS(), PeakHeap: heap(),
		P50: ms(rec.latency.quantile(0.5)), P99: ms(rec.latency.quantile(0.99)), Max: ms(rec.latency.quantile(1)),
	})
	return nil
}

// startWorker builds the consumer as cmd/worker does (internal/wiring: the
// mapping's limits and resource from the environment, the OTLP exporter
// over consumer.HTTPClient with retries off) on js, and runs it. stop waits
// for Run to return.
func startWorker(ctx context.Context, cfg config.Config, nc *nats.Conn, js jetstream.JetStream, log *slog.Logger) (stop func() error, err error) {
	wiring.SetGC()
	exp, err := wiring.Exporter(ctx, cfg, io.Discard)
	if err != nil {
		return nil, err
	}
	tenants, err := wiring.Tenants(ctx, cfg, exp, log, nil)
	if err != nil {
		return nil, err
	}
	cons, err := wiring.Consumer(cfg, js, nc.MaxPayload(), exp, log, consumer.NewMetrics(nil), tenants)
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	for !cons.Ready() {
		select {
		case err := <-done:
			return nil, fmt.Errorf("consumer stopped before binding: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return func() error {
		err := <-done
		return errors.Join(err, exp.Shutdown(context.Background()))
	}, nil
}

// startRaw runs the baseline: a durable pull consumer on the same stream,
// configured as the worker configures its own (explicit acks, AckWait,
// MaxAckPending of eight replicas at full concurrency), that acknowledges
// every message and does nothing else.
func startRaw(ctx context.Context, cfg config.Config, js jetstream.JetStream, rec *recorder, mode string) (stop func() error, err error) {
	cc := jetstream.ConsumerConfig{
		Durable: cfg.Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: cfg.AckWait,
		MaxDeliver: -1, MaxAckPending: 8 * cfg.BatchSize * cfg.ExportConcurrency, FilterSubject: cfg.Subjects[0],
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, cc)
	if err != nil {
		return nil, err
	}
	switch mode {
	case "consume":
		rec.begin()
		cc, err := cons.Consume(func(m jetstream.Msg) {
			if m.Ack() == nil {
				rec.ack(m)
			}
		})
		if err != nil {
			return nil, err
		}
		return func() error { cc.Stop(); return nil }, nil
	case "fetch":
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				rec.begin()
				batch, err := cons.Fetch(cfg.BatchSize, jetstream.FetchMaxWait(cfg.BatchWait))
				if err != nil {
					continue
				}
				for m := range batch.Messages() {
					if m.Ack() == nil {
						rec.ack(m)
					}
				}
			}
		}()
		return func() error { <-done; return nil }, nil
	}
	return nil, fmt.Errorf("unknown raw mode %q", mode)
}

// sampleHeap samples the heap every 50ms and returns a function that
// reports the peak: the bytes of heap objects, live or not yet swept.
func sampleHeap() (peak func() uint64) {
	var top atomic.Uint64
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() {
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > top.Load() {
			top.Store(v)
		}
	}
	go func() {
		for range time.Tick(50 * time.Millisecond) {
			read()
		}
	}()
	return func() uint64 { read(); return top.Load() }
}

// receiverRole runs internal/otlptest with DiscardBodies: it decodes every
// request, counts the spans and times publish→export from each root span's
// end (ended_at is the publish time). Commands on stdin: "reset" zeroes the
// counts and the CPU time, "report" writes them; end of input stops it.
func receiverRole() error {
	r, err := otlptest.Start(otlptest.DiscardBodies())
	if err != nil {
		return err
	}
	defer r.Close()
	var lat hist
	r.SetBehavior(func(req *coltracepb.ExportTraceServiceRequest) otlptest.Response {
		now := time.Now()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					if len(s.GetParentSpanId()) == 0 {
						lat.record(now.Sub(time.Unix(0, int64(s.GetEndTimeUnixNano()))))
					}
				}
			}
		}
		return otlptest.Response{}
	})
	emit(event{Event: "ready", URL: r.Endpoint()})
	var spans0, requests0 int
	cpu0 := cpuTime()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "reset":
			lat.reset()
			spans0, requests0, cpu0 = r.SpanCount(), len(r.Requests()), cpuTime()
			emit(event{Event: "reset"})
		case "report":
			emit(event{
				Event: "stats", Spans: r.SpanCount() - spans0, Requests: len(r.Requests()) - requests0,
				CPU: (cpuTime() - cpu0).Seconds(), MaxRSS: maxRSS(),
				P50: ms(lat.quantile(0.5)), P99: ms(lat.quantile(0.99)), Max: ms(lat.quantile(1)),
			})
		}
	}
	return in.Err()
}
