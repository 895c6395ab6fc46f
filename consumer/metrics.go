package consumer

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the worker's Prometheus metrics of CONTRACT §7.
type Metrics struct {
	Messages     *prometheus.CounterVec // outcome: acked, retried, dead_lettered
	Truncations  prometheus.Counter
	SpansOut     prometheus.Counter
	ExportTime   prometheus.Histogram
	BatchResults prometheus.Histogram
	Pending      prometheus.Gauge
	Inflight     prometheus.Gauge
	Redactions   *prometheus.CounterVec // rule: the redaction rules' names (CONTRACT §9)

	// The outcome counters, resolved once: the label lookup would
	// otherwise hash its value for every message.
	acked, retried, deadLettered prometheus.Counter
}

// Outcomes of spanferry_messages_total: each delivery is counted once.
const (
	OutcomeAcked        = "acked"
	OutcomeRetried      = "retried"
	OutcomeDeadLettered = "dead_lettered"
	// OutcomeSkipped is a replay's: a result that can never succeed,
	// acknowledged without a dead letter (it got one when first consumed).
	OutcomeSkipped = "skipped"
	// OutcomeParked is a delivery moved to the park stream while its
	// tenant's destination failed (CONTRACT §8); the parked copy's export
	// counts as acked.
	OutcomeParked = "parked"
)

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spanferry_messages_total", Help: "Deliveries handled, by outcome: acked, retried (nak'd after a transient failure), dead_lettered.",
		}, []string{"outcome"}),
		Truncations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spanferry_attribute_truncations_total", Help: "Attribute values cut to OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT.",
		}),
		SpansOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spanferry_spans_exported_total", Help: "Spans accepted by the exporter.",
		}),
		ExportTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "spanferry_export_duration_seconds", Help: "Duration of export requests, successful or not.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		BatchResults: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "spanferry_export_batch_results", Help: "Results per export request.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spanferry_consumer_pending", Help: "Messages waiting in the durable consumer.",
		}),
		Inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spanferry_inflight_results", Help: "Results fetched and not yet acknowledged, nak'd or dead-lettered.",
		}),
		Redactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spanferry_redactions_total", Help: "Replacements made by the redaction rules of WORKER_REDACT_FILE, by rule.",
		}, []string{"rule"}),
	}
	// Resolving them also exports zeros, so dashboards see every outcome.
	m.acked = m.Messages.WithLabelValues(OutcomeAcked)
	m.retried = m.Messages.WithLabelValues(OutcomeRetried)
	m.deadLettered = m.Messages.WithLabelValues(OutcomeDeadLettered)
	if reg != nil {
		reg.MustRegister(m.Messages, m.Truncations, m.SpansOut, m.ExportTime, m.BatchResults, m.Pending, m.Inflight, m.Redactions)
	}
	return m
}
