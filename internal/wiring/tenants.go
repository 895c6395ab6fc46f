package wiring

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/tenants"
)

// Tenants loads WORKER_TENANTS_FILE and builds the per-tenant routing over
// exp, the worker's own exporter; nil when the variable is unset. Its
// metrics are registered with reg (nil: not registered).
func Tenants(ctx context.Context, cfg config.Config, exp sdktrace.SpanExporter, log *slog.Logger, reg prometheus.Registerer) (*consumer.Tenants, error) {
	if cfg.TenantsFile == "" {
		return nil, nil
	}
	table, err := tenantTable(ctx, cfg, exp, log)
	if err != nil {
		return nil, err
	}
	// A tenant without capture_content follows WORKER_CAPTURE_CONTENT.
	return consumer.NewTenants(table, cfg.CaptureContent, consumer.NewTenantMetrics(reg)), nil
}

// ReloadTenants reads WORKER_TENANTS_FILE again and puts it in force. A
// file that fails to load leaves the configuration in force and is logged
// with the reason; the error is returned too.
func ReloadTenants(ctx context.Context, cfg config.Config, t *consumer.Tenants, exp sdktrace.SpanExporter, log *slog.Logger) error {
	table, err := tenantTable(ctx, cfg, exp, log)
	if err != nil {
		log.Error("tenants reload failed; the configuration in force is kept", "err", err)
		return err
	}
	t.Swap(table)
	log.Info("tenants reloaded", "tenants", t.Names())
	return nil
}

func tenantTable(ctx context.Context, cfg config.Config, exp sdktrace.SpanExporter, log *slog.Logger) (consumer.TenantTable, error) {
	f, err := tenants.Load(cfg.TenantsFile)
	if err != nil {
		return consumer.TenantTable{}, err
	}
	timeout, err := otlpTimeout(cfg.OTLPTimeout)
	if err != nil {
		return consumer.TenantTable{}, err
	}
	base := tenants.Base{Exporter: exp, OTLP: cfg.Exporter == config.ExporterOTLP, Timeout: timeout, Log: log}
	if base.OTLP {
		// Tenants sharing the worker's destination connect as the worker does.
		if base.TLS, err = cfg.OTLPTLS(); err != nil {
			return consumer.TenantTable{}, err
		}
	}
	table, err := tenants.Build(ctx, f, base)
	if err != nil {
		return consumer.TenantTable{}, err
	}
	log.Info("tenants", "config", f)
	return table, nil
}
