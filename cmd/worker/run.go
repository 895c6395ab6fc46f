package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/natsconn"
	"github.com/spanferry/spanferry/internal/wiring"
)

// runCmd is `worker run`: consume until ctx is cancelled (SIGTERM or
// SIGINT), then finish what is held within WORKER_SHUTDOWN_TIMEOUT.
func runCmd(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected argument %q (configuration is read from the environment; see worker -h)", fs.Arg(0))
	}
	w, err := startWorker(ctx, cfg, log, stdout)
	if err != nil {
		return err
	}
	return w.run(ctx)
}

// worker is a running `worker run`: the NATS connection (and the embedded
// server when NATS_URL is empty), the exporter, the consumer and the HTTP
// endpoints. startWorker builds it; run consumes and then closes it all.
type worker struct {
	cfg      config.Config
	log      *slog.Logger
	embedded *server.Server
	nc       *nats.Conn
	exp      sdktrace.SpanExporter
	cons     *consumer.Consumer
	metrics  *consumer.Metrics
	tenants  *consumer.Tenants // nil without WORKER_TENANTS_FILE
	http     *http.Server
	httpLn   net.Listener
	stopping atomic.Bool
}

// startWorker connects (or starts the embedded server), builds the exporter
// and the consumer, and listens on WORKER_HTTP_ADDR. Every failure names its
// cause, and what was already opened is closed again. The stdout exporter
// writes to stdout.
func startWorker(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) (_ *worker, err error) {
	w := &worker{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			w.close(context.Background())
		}
	}()
	gogc := wiring.SetGC()
	log.Info("starting worker", "config", cfg, "gogc", gogc)

	// What the environment can refuse is checked before connecting, so
	// that a wrong setting fails at once rather than after NATS answers.
	if cfg.HTTPAddr != "" {
		if w.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("WORKER_HTTP_ADDR: %w", err)
		}
	}
	if cfg.NATSURL == "" || cfg.Exporter == config.ExporterFile {
		if err := wiring.CheckDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	if cfg.NATSURL == "" {
		host, port, err := splitAddr(cfg.EmbeddedAddr)
		if err != nil {
			return nil, fmt.Errorf("WORKER_EMBEDDED_NATS_ADDR: %w", err)
		}
		if w.embedded, err = natsconn.StartEmbedded(cfg.DataDir, host, port, log); err != nil {
			return nil, fmt.Errorf("WORKER_EMBEDDED_NATS_ADDR: %w", err)
		}
		cfg.NATSURL = w.embedded.ClientURL()
	}
	if w.nc, err = natsconn.Connect(ctx, cfg, log, nats.Name("spanferry-worker")); err != nil {
		return nil, err
	}
	if w.exp, err = wiring.Exporter(ctx, cfg, stdout); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	w.metrics = consumer.NewMetrics(reg)
	js, err := jetstream.New(w.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if w.tenants, err = wiring.Tenants(ctx, cfg, w.exp, log, reg); err != nil {
		return nil, err
	}
	if w.cons, err = wiring.Consumer(cfg, js, w.nc.MaxPayload(), w.exp, log, w.metrics, w.tenants); err != nil {
		return nil, err
	}
	reg.MustRegister(w.readyMetric())

	if w.httpLn != nil {
		w.http = &http.Server{Handler: w.handler(reg), ReadHeaderTimeout: 5 * time.Second}
		log.Info("serving /metrics, /healthz and /readyz", "addr", w.httpLn.Addr().String())
	}
	return w, nil
}

// run consumes until ctx is done, then stops fetching, waits for the
// batches in flight to be exported and settled (at most
// WORKER_SHUTDOWN_TIMEOUT) and closes everything. Results still unsettled
// at the deadline are not lost: JetStream redelivers them after AckWait.
func (w *worker) run(ctx context.Context) error {
	if w.http != nil {
		go func() {
			if err := w.http.Serve(w.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				w.log.Error("http server failed", "err", err)
			}
		}()
	}
	done := make(chan error, 1)
	go func() { done <- w.cons.Run(ctx) }()
	defer w.reloadOnSIGHUP(ctx)()

	var runErr error
	select {
	case runErr = <-done:
		// Run returns before ctx is done only when it cannot go on.
		if ctx.Err() == nil {
			w.close(context.Background())
			return runErr
		}
	case <-ctx.Done():
		w.stopping.Store(true)
		w.log.Info("stopping: no more fetches; finishing the batches in flight", "timeout", w.cfg.ShutdownTimeout.String())
		deadline := time.NewTimer(w.cfg.ShutdownTimeout)
		defer deadline.Stop()
		select {
		case runErr = <-done:
		case <-deadline.C:
			runErr = fmt.Errorf("shutdown: in-flight results not settled within WORKER_SHUTDOWN_TIMEOUT (%s); JetStream redelivers them after AckWait", w.cfg.ShutdownTimeout)
		}
	}
	w.stopping.Store(true)
	// The closing gets a bound of its own: acks must still be flushed.
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.close(cctx)
	if runErr == nil {
		w.log.Info("stopped")
	}
	return runErr
}

// close releases what startWorker opened, in the order that keeps acks:
// flush the connection (acks are publishes) before closing it, and stop the
// embedded server last.
func (w *worker) close(ctx context.Context) {
	if w.http != nil {
		_ = w.http.Shutdown(ctx)
	} else if w.httpLn != nil {
		_ = w.httpLn.Close()
	}
	if w.exp != nil {
		if err := w.exp.Shutdown(ctx); err != nil {
			w.log.Warn("exporter shutdown", "err", err)
		}
	}
	if w.tenants != nil {
		_ = w.tenants.Shutdown(ctx)
	}
	if w.nc != nil {
		if w.nc.IsConnected() {
			if err := w.nc.FlushWithContext(ctx); err != nil {
				w.log.Warn("flushing acks to nats failed; unflushed ones are redelivered", "err", err)
			}
		}
		w.nc.Close()
	}
	if w.embedded != nil {
		w.embedded.Shutdown()
		w.embedded.WaitForShutdown()
	}
}

// ready reports whether the worker can consume: connected to NATS, bound
// to its durable consumer, and not shutting down.
func (w *worker) ready() error {
	switch {
	case w.stopping.Load():
		return errors.New("shutting down")
	case !w.nc.IsConnected():
		return fmt.Errorf("not connected to nats (%s)", w.nc.Status())
	case !w.cons.Ready():
		return errors.New("no durable consumer to fetch from (not bound yet, or it has no leader)")
	}
	return nil
}

func (w *worker) handler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		if err := w.ready(); err != nil {
			http.Error(rw, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "ready")
	})
	return mux
}

func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	if port == 0 {
		port = -1 // the server's "any free port"
	}
	return host, port, nil
}
