package consumer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// deliverTenants delivers a batch with tenants: one export request per
// tenant present, each to its tenant's destination, concurrently, so that a
// slow destination does not hold the others' results. free, when not nil,
// frees the batch's fetch slot (see awaitRoutes).
func (c *Consumer) deliverTenants(ctx context.Context, p policy, items []item, free func()) {
	if len(items) == 0 {
		return
	}
	rs, release := c.tenants.acquire()
	defer release()
	var order []*route
	groups := make(map[*route][]item, 4)
	for _, it := range items {
		r := rs.route(it.org)
		if _, ok := groups[r]; !ok {
			order = append(order, r)
		}
		groups[r] = append(groups[r], it)
	}
	if len(order) == 1 {
		c.deliverRoute(ctx, p, order[0], items)
		return
	}
	done := make(chan *route, len(order))
	start := time.Now()
	for _, r := range order {
		go func() {
			c.deliverRoute(ctx, p, r, groups[r])
			done <- r
		}()
	}
	c.awaitRoutes(p, order, done, free, start)
}

// awaitRoutes waits for the routes of a batch, in order, to be delivered
// (each sent on done), started at start. A batch holds its fetch slot
// until then, so a tenant that is slow but working (answering just under
// TenantParkAfter) would cap every tenant's throughput at Concurrency
// batches per its answer time. Under a policy with detachSlow, the routes
// still running once a route has settled are detached if each can be (at
// most Concurrency detached deliveries per route, which bounds a slow
// tenant's requests in flight): the slot is freed for the next batch while
// they finish. Not at once, though: only when they are still running after
// as long again as the first settled route took (detachGrace at least).
// Routes of a healthy batch end within moments of each other, and
// detaching them would only put more batches in flight (more memory, and
// a tenant's results worth more CPU); a slow tenant is at least twice as
// slow as the fastest.
func (c *Consumer) awaitRoutes(p policy, order []*route, done <-chan *route, free func(), start time.Time) {
	canDetach := p.detachSlow && free != nil
	running := make(map[*route]bool, len(order))
	for _, r := range order {
		running[r] = true
	}
	detached, due := false, false
	var grace <-chan time.Time // fires when the routes running are slow enough to detach
	for left := len(order); left > 0; {
		select {
		case r := <-done:
			left--
			delete(running, r)
			switch {
			case detached:
				r.detached.Add(-1)
			case !canDetach || len(running) == 0:
			case due:
				if c.detach(running) {
					detached = true
					free()
				}
			case grace == nil:
				t := time.NewTimer(max(time.Since(start), detachGrace))
				defer t.Stop()
				grace = t.C
			}
		case <-grace:
			grace, due = nil, true
			if len(running) > 0 && c.detach(running) {
				detached = true
				free()
			}
		}
	}
}

// detachGrace is the least awaitRoutes waits, once a route of a batch has
// settled, before it detaches the others.
const detachGrace = 5 * time.Millisecond

// detach takes a detached delivery of every route in running, or of none.
func (c *Consumer) detach(running map[*route]bool) bool {
	limit := int32(c.cfg.Concurrency)
	took := make([]*route, 0, len(running))
	for r := range running {
		if !r.tryDetach(limit) {
			for _, t := range took {
				t.detached.Add(-1)
			}
			return false
		}
		took = append(took, r)
	}
	return true
}

// deliverRoute settles one tenant's results: dead letters when its route
// says so, straight to the park while its destination is backed off, else
// an export.
func (c *Consumer) deliverRoute(ctx context.Context, p policy, r *route, items []item) {
	switch {
	case r.deadLetter:
		for _, it := range items {
			c.deadLetter(ctx, p, withTenant(it), unlisted(it.org))
		}
	case c.parks(p, items) && r.gate.failing():
		rest := c.parkItems(ctx, p, r, items)
		if len(rest) > 0 && r.gate.remaining() == 0 {
			// Results that cannot be parked probe the destination
			// themselves once its backoff is over: no park loop will.
			c.exportRoute(ctx, p, r, rest)
			return
		}
		c.holdBack(p, r, rest)
	case r.gate.remaining() > 0:
		// Parked copies and a replay's results are never parked: they
		// wait out their own route's backoff, which for a parked copy may
		// not be the one its park loop waited for (a reload moved its
		// organization to another route).
		c.waitOut(p, r, items)
	default:
		c.exportRoute(ctx, p, r, items)
	}
}

// waitOut naks items, which do not park, to be redelivered once r's
// backoff is over: a parked copy back into the park, a replay's result
// into the replay.
func (c *Consumer) waitOut(p policy, r *route, items []item) {
	wait := r.gate.remaining()
	for _, it := range items {
		if !isParked(it.msg) {
			c.settle(p, it.msg, &retry{after: wait})
			continue
		}
		if err := it.msg.NakWithDelay(wait); err != nil {
			c.log.Warn("nak failed; the parked result will be redelivered after AckWait", "err", err)
		}
		c.metrics.retried.Inc()
	}
}

func unlisted(org string) error {
	if org == "" {
		return errors.New("the result has no organization and the tenants file's default action is dead-letter")
	}
	return fmt.Errorf("tenant %q is not in the tenants file and its default action is dead-letter", org)
}

// parks reports whether a transient failure of items moves them to the
// park: results of the durable consumer do once Run has bound the park (a
// replay's are nak'd, and parked results are nak'd back into the park).
func (c *Consumer) parks(p policy, items []item) bool {
	return p.deadLetter && c.park.stream != nil && !isParked(items[0].msg)
}

// exportRoute exports items in one request to r's destination and settles
// them. A rejection is split until the offending results are alone, as
// deliver does; a transient failure backs r off alone.
func (c *Consumer) exportRoute(ctx context.Context, p policy, r *route, items []item) {
	spans := spansOf(items)
	n := len(spans)
	actx, a := withAttempt(ctx)
	start := time.Now()
	var err error
	done := make(chan struct{})
	items[0].mem.exportingTo(r.exp)
	go func() {
		defer close(done)
		err = r.exp.ExportSpans(actx, spans)
		c.metrics.ExportTime.Observe(time.Since(start).Seconds())
	}()
	if !c.awaitExport(ctx, p, r, items, done, func() { c.lateExport(r, err, a, n) }) {
		return
	}
	c.metrics.BatchResults.Observe(float64(len(items)))

	switch tenantVerdict(err, a) {
	case exported:
		if r.gate.failing() {
			c.log.Info("tenant's destination is back", "tenant", r.name)
		}
		r.gate.ok()
		r.backoff.Set(0)
		r.spans.Add(float64(n))
		c.metrics.SpansOut.Add(float64(n))
		for _, it := range items {
			c.settle(p, it.msg, nil)
		}
	case transient:
		r.failures.Inc()
		r.gate.fail(a.retryAfter)
		r.backoff.Set(1)
		c.logTenantFailure(r, a.status, err, len(items))
		switch {
		case isParked(items[0].msg):
			// Back to the park at once: its next delivery waits out r's
			// backoff (deliverRoute), whichever park loop fetches it.
			for _, it := range items {
				_ = it.msg.Nak()
				c.metrics.retried.Inc()
			}
		case c.parks(p, items):
			c.holdBack(p, r, c.parkItems(ctx, p, r, items))
		default:
			for _, it := range items {
				c.settle(p, it.msg, &retry{after: a.retryAfter})
			}
		}
	case rejected:
		r.failures.Inc()
		if len(items) == 1 {
			c.deadLetter(ctx, p, withTenant(items[0]), fmt.Errorf("rejected by tenant %s's OTLP receiver (status %d, %d spans rejected)", r.name, a.status, a.rejected))
			return
		}
		half := len(items) / 2
		c.exportRoute(ctx, p, r, items[:half])
		c.exportRoute(ctx, p, r, items[half:])
	}
}

// DefaultTenantParkAfter is Config.TenantParkAfter's default.
const DefaultTenantParkAfter = time.Second

// awaitExport waits for the export of items to r's destination (done
// closed). A request of the durable consumer's results still unanswered
// after TenantParkAfter is not waited for: the destination is hanging, and
// the batch would hold its slot (and every other tenant's next results)
// until the exporter's timeout. The tenant is backed off and the results
// parked at once; late runs when the abandoned request ends. It reports
// whether the export ended in time.
func (c *Consumer) awaitExport(ctx context.Context, p policy, r *route, items []item, done <-chan struct{}, late func()) bool {
	if !c.parks(p, items) {
		<-done
		return true
	}
	after := c.cfg.TenantParkAfter
	if after <= 0 {
		after = DefaultTenantParkAfter
	}
	t := time.NewTimer(after)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
	}
	r.failures.Inc()
	r.gate.fail(0)
	r.backoff.Set(1)
	if r.shouldLog() {
		c.log.Warn("tenant's destination does not answer; its results are parked and retried with backoff",
			"tenant", r.name, "waited", after.String(), "results", len(items))
	}
	c.holdBack(p, r, c.parkItems(ctx, p, r, items))
	// The request still reads the batch's spans: their memory waits for it.
	items[0].mem.hold()
	go func() {
		defer items[0].mem.release()
		<-done
		late()
	}()
	return false
}

// lateExport accounts for a request awaitExport stopped waiting for. Its
// results are parked already: if it succeeded after all, they are exported
// twice (at least once, with the same span ids). The tenant's backoff is
// the park loop's to end.
func (c *Consumer) lateExport(r *route, err error, a *attempt, spans int) {
	if tenantVerdict(err, a) == exported {
		r.spans.Add(float64(spans))
		c.metrics.SpansOut.Add(float64(spans))
	}
}

// tenantVerdict is classify for a tenant's destination, where 401 and 403
// are transient too (CONTRACT §8): the tenant's credentials are wrong, not
// its results, and its results wait for the credentials to be fixed.
func tenantVerdict(err error, a *attempt) verdict {
	if a.status == http.StatusUnauthorized || a.status == http.StatusForbidden {
		return transient
	}
	return classify(err, a)
}

// logTenantFailure logs a destination's failure at most once per
// tenantLogInterval per tenant. 401 and 403 are errors: the tenant's
// credentials need fixing. Header values are never logged, and the
// receiver's answer only as its status: it may echo the request.
func (c *Consumer) logTenantFailure(r *route, status int, err error, results int) {
	if !r.shouldLog() {
		return
	}
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		c.log.Error("tenant's destination refuses its credentials; fix the tenant's headers (its results are parked until then)",
			"tenant", r.name, "status", status)
	case 0:
		c.log.Warn("tenant's destination is unreachable; its results are parked and retried with backoff",
			"tenant", r.name, "results", results, "err", urlQuery.ReplaceAllString(err.Error(), "$1"))
	default:
		c.log.Warn("tenant's destination is failing; its results are parked and retried with backoff",
			"tenant", r.name, "status", status, "results", results)
	}
}

// urlQuery matches a URL's query, which may carry a key, in an error.
var urlQuery = regexp.MustCompile(`(https?://[^\s"?]*)\?[^\s"]*`)

// withTenant returns the message to dead-letter for it: with the
// Spanferry-Tenant header when the result has an organization.
func withTenant(it item) jetstream.Msg {
	if it.org == "" || isParked(it.msg) { // a parked copy carries it already
		return it.msg
	}
	return tenantMsg{Msg: it.msg, org: it.org}
}

// tenantMsg is a delivery whose headers, as a dead letter copies them,
// name its tenant.
type tenantMsg struct {
	jetstream.Msg
	org string
}

func (m tenantMsg) Headers() nats.Header {
	h := cloneHeader(m.Msg.Headers())
	h.Set(HeaderTenant, m.org)
	return h
}

func cloneHeader(h nats.Header) nats.Header {
	out := make(nats.Header, len(h)+1)
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}
