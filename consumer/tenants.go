package consumer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TenantTable is one tenants configuration (CONTRACT §8) as the consumer
// routes by it. The worker builds it from WORKER_TENANTS_FILE.
type TenantTable struct {
	// Tenants are keyed by organization.
	Tenants map[string]TenantRoute
	// Default exports the results of unlisted tenants and of results
	// without an organization, unless DeadLetterDefault is set.
	Default           sdktrace.SpanExporter
	DeadLetterDefault bool
	// Shutdown, when not nil, releases the exporters the table owns. The
	// consumer calls it for a table a newer one replaced, once the exports
	// that may still use it are over.
	Shutdown func(context.Context) error
}

// TenantRoute is one tenant's destination.
type TenantRoute struct {
	Exporter sdktrace.SpanExporter
	// CaptureContent overrides the worker-wide default when not nil.
	CaptureContent *bool
}

// DefaultTenant is the route, and the metric label, of the results that
// follow the tenants file's default.
const DefaultTenant = "default"

// Tenants routes each result to its organization's destination and holds
// each destination's backoff. Create it with NewTenants; Swap replaces its
// table (a SIGHUP reload). Safe for concurrent use.
type Tenants struct {
	captureDefault bool
	cur            atomic.Pointer[routes]
	metrics        *TenantMetrics

	mu      sync.Mutex
	changed chan struct{} // closed and replaced by Swap
}

// routes is a table resolved into routes, swapped as one.
type routes struct {
	table TenantTable
	byOrg map[string]*route
	def   *route
	names []string // every route's name: the tenants' and DefaultTenant

	// Exports hold a reference (acquire) so that a replaced table's
	// exporters are shut down only once no export uses them.
	mu      sync.Mutex
	refs    int
	retired bool
	idle    chan struct{} // closed once retired with no reference left
}

// route is one destination and its state: the backoff of CONTRACT §8, and
// when it last logged a failure.
type route struct {
	name       string // the tenant's organization, or DefaultTenant
	exp        sdktrace.SpanExporter
	deadLetter bool // default with action dead-letter: nothing is exported
	gate       gate
	lastLog    atomic.Int64 // unix nanoseconds
	detached   atomic.Int32 // deliveries running after their batch's slot was freed

	spans, failures prometheus.Counter
	backoff         prometheus.Gauge
}

// NewTenants returns the routing of table. captureDefault is the worker's
// WORKER_CAPTURE_CONTENT, which tenants without capture_content follow.
func NewTenants(table TenantTable, captureDefault bool, metrics *TenantMetrics) *Tenants {
	if metrics == nil {
		metrics = NewTenantMetrics(nil)
	}
	t := &Tenants{captureDefault: captureDefault, metrics: metrics, changed: make(chan struct{})}
	t.cur.Store(t.resolve(table))
	return t
}

func (t *Tenants) resolve(table TenantTable) *routes {
	rs := &routes{table: table, byOrg: make(map[string]*route, len(table.Tenants)), idle: make(chan struct{})}
	for org, tr := range table.Tenants {
		rs.byOrg[org] = t.newRoute(org, tr.Exporter, false)
		rs.names = append(rs.names, org)
	}
	rs.def = t.newRoute(DefaultTenant, table.Default, table.DeadLetterDefault)
	rs.names = append(rs.names, DefaultTenant)
	return rs
}

func (t *Tenants) newRoute(name string, exp sdktrace.SpanExporter, deadLetter bool) *route {
	r := &route{
		name: name, exp: exp, deadLetter: deadLetter,
		spans:    t.metrics.Spans.WithLabelValues(name),
		failures: t.metrics.Failures.WithLabelValues(name),
		backoff:  t.metrics.Backoff.WithLabelValues(name),
	}
	r.backoff.Set(0)
	return r
}

// Swap makes table the routing in force. Backoffs start afresh (a reload
// is how a tenant's credentials get fixed), metrics of tenants no longer
// listed are removed, and the replaced table is shut down once the
// exports that started with it are over.
func (t *Tenants) Swap(table TenantTable) {
	next := t.resolve(table)
	old := t.cur.Swap(next)
	for _, name := range old.names {
		if _, ok := next.byOrg[name]; !ok && name != DefaultTenant {
			t.metrics.delete(name)
		}
	}
	t.mu.Lock()
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
	old.retire()
	if old.table.Shutdown != nil {
		go func() {
			<-old.idle
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = old.table.Shutdown(ctx)
		}()
	}
}

// Shutdown releases the exporters of the table in force; call it once no
// consumer uses t any more.
func (t *Tenants) Shutdown(ctx context.Context) error {
	if rs := t.cur.Load(); rs.table.Shutdown != nil {
		return rs.table.Shutdown(ctx)
	}
	return nil
}

// Changed returns a channel closed by the next Swap.
func (t *Tenants) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// Names returns the routes' names: every listed tenant and DefaultTenant.
func (t *Tenants) Names() []string { return t.cur.Load().names }

// CaptureContent reports whether organization's spans carry input and
// output: its tenant's capture_content when set, else the worker's default.
// It is mapping.WithCaptureContent's function.
func (t *Tenants) CaptureContent(organization string) bool {
	if tr, ok := t.cur.Load().table.Tenants[organization]; ok && tr.CaptureContent != nil {
		return *tr.CaptureContent
	}
	return t.captureDefault
}

// acquire returns the routes in force, held until release is called so
// that a Swap does not shut their exporters down under an export.
func (t *Tenants) acquire() (rs *routes, release func()) {
	for {
		rs = t.cur.Load()
		rs.mu.Lock()
		if !rs.retired {
			rs.refs++
			rs.mu.Unlock()
			return rs, rs.release
		}
		rs.mu.Unlock() // swapped meanwhile: take the new one
	}
}

func (rs *routes) release() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.refs--; rs.retired && rs.refs == 0 {
		close(rs.idle)
	}
}

func (rs *routes) retire() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.retired = true; rs.refs == 0 {
		close(rs.idle)
	}
}

// route returns the route of organization.
func (rs *routes) route(organization string) *route {
	if r, ok := rs.byOrg[organization]; ok {
		return r
	}
	return rs.def
}

// Failure logs are rate-limited per tenant: a tenant that is down fails
// every probe, and one line per interval says so.
const tenantLogInterval = 30 * time.Second

// shouldLog reports whether r may log a failure now, and if so records it.
func (r *route) shouldLog() bool {
	now := time.Now().UnixNano()
	last := r.lastLog.Load()
	return now-last >= int64(tenantLogInterval) && r.lastLog.CompareAndSwap(last, now)
}

// failing reports whether the gate is backing off after a failure that no
// success has followed.
func (g *gate) failing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failures > 0
}

// tryDetach takes one of r's limit detached deliveries, if one is left.
func (r *route) tryDetach(limit int32) bool {
	for {
		n := r.detached.Load()
		if n >= limit {
			return false
		}
		if r.detached.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// remaining is how long the gate still backs off; 0 when it is open.
func (g *gate) remaining() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return max(time.Until(g.until), 0)
}

// WithTenants routes each result to its tenant's destination (CONTRACT
// §8) instead of the consumer's one exporter, and parks the results of a
// tenant whose destination fails.
func WithTenants(t *Tenants) Option { return func(c *Consumer) { c.tenants = t } }

// TenantMetrics are the per-tenant metrics of CONTRACT §8. Label values
// are the configured tenants' names and DefaultTenant only.
type TenantMetrics struct {
	Spans    *prometheus.CounterVec // spanferry_tenant_spans_exported_total
	Failures *prometheus.CounterVec // spanferry_tenant_export_failures_total
	Backoff  *prometheus.GaugeVec   // spanferry_tenant_backoff
	Parked   *prometheus.CounterVec // spanferry_tenant_parked_total
	Pending  *prometheus.GaugeVec   // spanferry_tenant_parked
}

// NewTenantMetrics creates the metrics and registers them with reg (nil:
// not registered).
func NewTenantMetrics(reg prometheus.Registerer) *TenantMetrics {
	m := &TenantMetrics{
		Spans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spanferry_tenant_spans_exported_total", Help: "Spans accepted by a tenant's destination.",
		}, []string{"tenant"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spanferry_tenant_export_failures_total", Help: "Export requests to a tenant's destination that failed or were rejected.",
		}, []string{"tenant"}),
		Backoff: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spanferry_tenant_backoff", Help: "1 while a tenant's destination is backed off (its results are parked).",
		}, []string{"tenant"}),
		Parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spanferry_tenant_parked_total", Help: "Results moved to the park stream while their tenant's destination failed.",
		}, []string{"tenant"}),
		Pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spanferry_tenant_parked", Help: "Results waiting in the park for their tenant's destination (read every 5s).",
		}, []string{"tenant"}),
	}
	if reg != nil {
		reg.MustRegister(m.Spans, m.Failures, m.Backoff, m.Parked, m.Pending)
	}
	return m
}

func (m *TenantMetrics) delete(name string) {
	m.Spans.DeleteLabelValues(name)
	m.Failures.DeleteLabelValues(name)
	m.Backoff.DeleteLabelValues(name)
	m.Parked.DeleteLabelValues(name)
	m.Pending.DeleteLabelValues(name)
}
