package consumer

import "github.com/spanferry/spanferry/mapping"

// initRedactions exports a zero for each rule of r, so that dashboards see
// every rule before it first replaces anything. The label values are the
// rules' names only: their number is fixed by the redact file.
func (m *Metrics) initRedactions(r *mapping.Redactor) {
	if r == nil {
		return
	}
	for _, name := range r.Rules() {
		m.Redactions.WithLabelValues(name)
	}
}

// addRedactions counts one result's replacements (mapping.Stats.Redactions).
func (m *Metrics) addRedactions(counts map[string]int) {
	for rule, n := range counts {
		m.Redactions.WithLabelValues(rule).Add(float64(n))
	}
}
