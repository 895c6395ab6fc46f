package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/wiring"
)

// reloadOnSIGHUP reloads the tenants file on each SIGHUP until the returned
// function is called. A failed reload keeps the configuration in force
// (ReloadTenants logs why). Without tenants, SIGHUP keeps its default.
func (w *worker) reloadOnSIGHUP(ctx context.Context) (stop func()) {
	if w.tenants == nil {
		return func() {}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				w.log.Info("SIGHUP: reloading the tenants file", "file", w.cfg.TenantsFile)
				_ = wiring.ReloadTenants(ctx, w.cfg, w.tenants, w.exp, w.log)
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

// replayTenants routes a replay by WORKER_TENANTS_FILE, as the worker
// does, so that a backfill reaches each tenant's destination. A replay
// never parks: a failing tenant's results are nak'd and retried.
func replayTenants(ctx context.Context, cfg config.Config, exp sdktrace.SpanExporter, log *slog.Logger) (*consumer.Tenants, error) {
	return wiring.Tenants(ctx, cfg, exp, log, nil)
}
