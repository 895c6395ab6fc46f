package main

import "github.com/prometheus/client_golang/prometheus"

// readyMetric is spanferry_ready: 1 while /readyz answers 200, 0 otherwise,
// so that an alert can find a replica that stays not ready (disconnected
// from NATS, not bound to the durable consumer) without probing it. It is
// computed at each scrape, from the same check as /readyz.
func (w *worker) readyMetric() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "spanferry_ready",
		Help: "1 while the worker is ready (/readyz answers 200), 0 otherwise.",
	}, func() float64 {
		if w.ready() != nil {
			return 0
		}
		return 1
	})
}
