package consumer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Parking (CONTRACT §8). JetStream keeps a nak'd message, with or without
// a delay, in its consumer's ack-pending set (nats-server's processNak only
// moves its redelivery time), and a consumer whose ack-pending set reaches
// MaxAckPending delivers nothing new (getNextMsg: errMaxAckPending). So a
// tenant whose destination is down cannot be retried by nak in the shared
// consumer: its results would fill the window and stop everyone's.
//
// Instead its results are moved out: each is published to the park stream,
// a work-queue stream the worker owns, under a subject of its tenant, with
// its body, headers and origin; only once JetStream has stored the copy is
// the original acknowledged. The copy's Nats-Msg-Id is derived from the
// original's stream and sequence, so a move repeated after a crash is
// dropped as a duplicate. A durable consumer per tenant, filtered by the
// tenant's subject and shared by every replica, exports the parked results
// once the tenant's backoff allows a probe, and acknowledges a parked copy
// only after the tenant's destination accepted it.

// Headers a parked copy carries besides the original's (and
// HeaderSubject, HeaderStream, HeaderStreamSeq and HeaderTenant).
const (
	headerParkStored = "Spanferry-Stored" // the original's JetStream timestamp, RFC 3339
	headerParkMsgID  = "Spanferry-Msg-Id" // the original's Nats-Msg-Id
)

// Metadata keys of a park consumer, so that a restarted worker finds the
// parked work of tenants it no longer lists.
const (
	metaParkDurable = "spanferry.park.durable"
	metaParkTenant  = "spanferry.park.tenant"
)

// parkDuplicates is the park stream's duplicate window: a move repeated
// within it (the original redelivered after its ack was lost) is dropped.
const parkDuplicates = 10 * time.Minute

// parkFetchWait is the longest a park loop waits for parked results.
const parkFetchWait = time.Second

// parkPollInterval is how often a park loop reads its consumer's state for
// spanferry_tenant_parked.
const parkPollInterval = 5 * time.Second

// parking is the consumer's park: its stream, and one loop per tenant.
type parking struct {
	stream   jetstream.Stream
	replicas int

	mu    sync.Mutex
	loops map[string]bool
	start func(name string) // set while the loops run
}

// DefaultParkStream is the park stream when Config.ParkStream is empty.
const DefaultParkStream = "SPANFERRY_PARK"

func (c *Consumer) parkStreamName() string {
	if c.cfg.ParkStream != "" {
		return c.cfg.ParkStream
	}
	return DefaultParkStream
}

// parkPrefix is the subject prefix of this durable consumer's park.
func (c *Consumer) parkPrefix() string { return "spanferry.park." + c.cfg.Durable }

// parkSubject is the park subject of tenant name.
func (c *Consumer) parkSubject(name string) string {
	if name == DefaultTenant {
		return c.parkPrefix() + ".default"
	}
	return c.parkPrefix() + ".t." + subjectToken(name)
}

// parkConsumerName is the durable park consumer of tenant name, the same
// on every replica.
func (c *Consumer) parkConsumerName(name string) string {
	if name == DefaultTenant {
		return c.cfg.Durable + "-park-default"
	}
	sum := sha256.Sum256([]byte(name))
	return c.cfg.Durable + "-park-" + hex.EncodeToString(sum[:8])
}

// subjectToken escapes name into one subject token: bytes other than
// letters, digits, '-' and '_' become %XX, so that distinct names never
// share a token.
func subjectToken(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' {
			b.WriteByte(ch)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", ch)
	}
	return b.String()
}

// bindPark finds or creates the park stream, with the results stream's
// replica count. The park is the worker's own, so it is created whatever
// CreateStream says.
func (c *Consumer) bindPark(ctx context.Context) error {
	if c.tenants == nil {
		c.warnStranded(ctx)
		return nil
	}
	// The park holds results as the results stream does: as many replicas.
	replicas, err := c.replicas(ctx)
	if err != nil {
		return err
	}
	c.park.replicas = replicas
	name := c.parkStreamName()
	stream, err := c.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		stream, err = c.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:       name,
			Subjects:   []string{"spanferry.park.>"},
			Retention:  jetstream.WorkQueuePolicy, // a parked copy is gone once exported
			Storage:    jetstream.FileStorage,
			Duplicates: parkDuplicates,
			Replicas:   c.park.replicas,
		})
		if err == nil {
			c.log.Info("created park stream", "stream", name)
		}
	}
	if err != nil {
		return fmt.Errorf("park stream %s: %w", name, err)
	}
	if err := c.checkParkStream(stream.CachedInfo().Config); err != nil {
		return err
	}
	c.park.stream = stream
	return nil
}

// checkParkStream refuses a park stream, found as an operator made it,
// that could drop parked results (their originals are acknowledged: that
// would lose them) or that does not store this durable consumer's park
// subjects (every move would fail).
func (c *Consumer) checkParkStream(sc jetstream.StreamConfig) error {
	var why []string
	if sc.Retention == jetstream.InterestPolicy {
		// nats-server stores nothing for a subject no consumer is
		// interested in yet (processJetStreamMsg: SkipMsgNoInterest), and
		// a tenant's park consumer is created after its first move.
		why = append(why, "Retention is interest: a result parked before its tenant's park consumer exists would be dropped")
	}
	if sc.MaxAge > 0 {
		why = append(why, "MaxAge is set: parked results would expire")
	}
	if sc.Discard != jetstream.DiscardNew && (sc.MaxMsgs > 0 || sc.MaxBytes > 0) {
		why = append(why, "MaxMsgs or MaxBytes is set with Discard old: parked results would be deleted to make room")
	}
	if sc.MaxMsgsPerSubject > 0 && !(sc.Discard == jetstream.DiscardNew && sc.DiscardNewPerSubject) {
		why = append(why, "MaxMsgsPerSubject is set without DiscardNewPerSubject: parked results would be deleted to make room")
	}
	if want := c.parkPrefix() + ".>"; !slices.ContainsFunc(sc.Subjects, func(s string) bool { return subjectCovers(s, want) }) {
		why = append(why, fmt.Sprintf("its subjects %v do not cover %s", sc.Subjects, want))
	}
	if len(why) > 0 {
		return fmt.Errorf("%w: park stream %s (WORKER_PARK_STREAM) cannot hold parked results safely: %s",
			ErrInvalidConfig, sc.Name, strings.Join(why, "; "))
	}
	return nil
}

// subjectCovers reports whether filter matches every subject that sub
// (itself possibly a wildcard) matches.
func subjectCovers(filter, sub string) bool {
	f, s := strings.Split(filter, "."), strings.Split(sub, ".")
	for i, ft := range f {
		if ft == ">" {
			return len(s) > i
		}
		if i >= len(s) || ft == "*" && s[i] == ">" || ft != "*" && ft != s[i] {
			return false
		}
	}
	return len(f) == len(s)
}

// warnStranded warns, without tenants, of results parked by an earlier
// run with tenants: nothing exports them until tenants are configured
// again.
func (c *Consumer) warnStranded(ctx context.Context) {
	stream, err := c.js.Stream(ctx, c.parkStreamName())
	if err != nil {
		return
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(c.parkPrefix()+".>"))
	if err != nil {
		return
	}
	var n uint64
	for _, count := range info.State.Subjects {
		n += count
	}
	if n > 0 {
		c.log.Warn("results are parked from a run with WORKER_TENANTS_FILE; set it again to export them", "stream", stream.CachedInfo().Config.Name, "parked", n)
	}
}

// runParking starts a park loop for every tenant of the table, for every
// tenant a park consumer exists for (parked before a restart or a reload),
// and for tenants a reload adds. The returned function waits for the loops,
// which stop when ctx is done.
func (c *Consumer) runParking(ctx context.Context) (wait func()) {
	if c.tenants == nil {
		return func() {}
	}
	var wg sync.WaitGroup
	c.park.mu.Lock()
	c.park.loops = map[string]bool{}
	c.park.start = func(name string) { // with c.park.mu held
		if c.park.loops[name] || ctx.Err() != nil {
			return
		}
		c.park.loops[name] = true
		wg.Go(func() { c.parkLoop(ctx, name) })
	}
	for _, name := range c.tenants.Names() {
		c.park.start(name)
	}
	for _, name := range c.parkedTenants(ctx) {
		c.park.start(name)
	}
	c.park.mu.Unlock()
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.tenants.Changed():
				c.park.mu.Lock()
				for _, name := range c.tenants.Names() {
					c.park.start(name)
				}
				c.park.mu.Unlock()
			}
		}
	})
	return wg.Wait
}

// parkedTenants lists the tenants this durable consumer has park
// consumers for.
func (c *Consumer) parkedTenants(ctx context.Context) []string {
	var names []string
	l := c.park.stream.ListConsumers(ctx)
	for info := range l.Info() {
		if info.Config.Metadata[metaParkDurable] == c.cfg.Durable {
			names = append(names, info.Config.Metadata[metaParkTenant])
		}
	}
	if err := l.Err(); err != nil {
		c.log.Warn("cannot list the park consumers; parked results of unlisted tenants wait for the next start", "err", err)
	}
	return names
}

// ensureParkLoop starts name's park loop if it does not run yet.
func (c *Consumer) ensureParkLoop(name string) {
	c.park.mu.Lock()
	defer c.park.mu.Unlock()
	if c.park.start != nil {
		c.park.start(name)
	}
}

// parkLoop exports tenant name's parked results: it waits for the tenant's
// backoff, fetches a batch from the tenant's park consumer and handles it
// as any batch, except that a transient failure naks the parked copies
// back into the park. The route is looked up for each batch, so that a
// reload applies to parked results too (a tenant no longer listed follows
// default).
func (c *Consumer) parkLoop(ctx context.Context, name string) {
	work := context.WithoutCancel(ctx)
	var cons jetstream.Consumer
	for retry := 0; ; retry++ {
		var err error
		if cons, err = c.parkConsumer(ctx, name); err == nil {
			break
		}
		c.log.Warn("cannot bind the park consumer; retrying", "tenant", name, "err", err)
		if sleep(ctx, jitter(min(gateMin<<min(retry, 5), gateMax))) != nil {
			return
		}
	}
	failures := 0
	var polled time.Time
	for {
		rs, release := c.tenants.acquire()
		r := rs.route(name)
		release()
		// Labels are the configured tenants' only: a tenant no longer
		// listed drains under default's route without a gauge of its own.
		if time.Since(polled) >= parkPollInterval && r.name == name {
			polled = time.Now()
			if info, err := cons.Info(ctx); err == nil {
				c.tenants.metrics.Pending.WithLabelValues(name).Set(float64(info.NumPending + uint64(info.NumAckPending)))
			}
		}
		if r.gate.wait(ctx) != nil {
			return
		}
		batch, err := cons.Fetch(c.cfg.BatchSize, jetstream.FetchMaxWait(parkFetchWait))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			c.log.Warn("park fetch failed", "tenant", name, "err", err)
			if sleep(ctx, jitter(min(gateMin<<min(failures, 5), gateMax))) != nil {
				return
			}
			continue
		}
		failures = 0
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, parked(m))
		}
		if len(msgs) > 0 {
			c.handle(work, policy{deadLetter: true}, msgs, nil)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// parkConsumer creates (or finds, identical) tenant name's park consumer.
func (c *Consumer) parkConsumer(ctx context.Context, name string) (jetstream.Consumer, error) {
	return c.park.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       c.parkConsumerName(name),
		Description:   "spanferry: results of tenant " + name + " parked while its destination failed",
		FilterSubject: c.parkSubject(name),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 8 * c.cfg.BatchSize, // a batch per replica, for eight
		Replicas:      c.park.replicas,
		Metadata:      map[string]string{metaParkDurable: c.cfg.Durable, metaParkTenant: name},
	})
}

// parkItems moves r's results to the park: each copy is stored first, and
// only then is the original acknowledged. A copy that cannot be stored
// leaves its original nak'd for redelivery: nothing is lost. The copies
// are published asynchronously, so that a batch costs one round trip to
// the server rather than one per result.
//
// A failure to park one result is that result's alone: it is nak'd with
// its own growing delay, and never slows the worker's fetching (every
// tenant's). parkItems returns, unsettled, the results whose copy is too
// large (tooLargeToPark: the park's headers added to a result just under
// max_payload): they can never be parked, and wait in the results stream
// instead (holdBack).
func (c *Consumer) parkItems(ctx context.Context, p policy, r *route, items []item) (unparkable []item) {
	c.ensureParkLoop(r.name)
	failed := func(it item, err error) {
		c.log.Error("cannot park a result; it will be redelivered", "tenant", r.name, "subject", it.msg.Subject(), "err", err)
		c.settle(p, it.msg, &retry{})
	}
	futures := make([]jetstream.PubAckFuture, len(items))
	for i, it := range items {
		pm, err := c.parkMsg(r.name, it)
		if err == nil {
			futures[i], err = c.js.PublishMsgAsync(pm)
		}
		switch {
		case tooLargeToPark(err):
			unparkable = append(unparkable, it)
		case err != nil:
			failed(it, err)
		}
	}
	deadline := time.NewTimer(parkPublishTimeout)
	defer deadline.Stop()
	parkedN := c.metrics.Messages.WithLabelValues(OutcomeParked)
	for i, f := range futures {
		if f == nil {
			continue
		}
		it := items[i]
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if tooLargeToPark(err) {
				unparkable = append(unparkable, it)
			} else {
				failed(it, err)
			}
			continue
		case <-deadline.C:
			// Stored or not, the original is redelivered; a copy that
			// was stored makes the next move a duplicate.
			deadline.Reset(0)
			failed(it, errors.New("no acknowledgement from JetStream within "+parkPublishTimeout.String()))
			continue
		case <-ctx.Done():
			failed(it, ctx.Err())
			continue
		}
		if err := it.msg.Ack(); err != nil {
			// Redelivered after AckWait and parked again: the copy's
			// Nats-Msg-Id makes that a duplicate JetStream drops.
			c.log.Warn("ack after parking failed; the result will be redelivered", "err", err)
			continue
		}
		parkedN.Inc()
		c.tenants.metrics.Parked.WithLabelValues(r.name).Inc()
		p.observed(it.msg, OutcomeParked)
	}
	return unparkable
}

// tooLargeToPark reports whether a parked copy was refused for its size:
// over the server's max_payload (the client refuses it), or over the park
// stream's MaxMsgSize (JetStream does). Retrying cannot help.
func tooLargeToPark(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

// holdBack naks results of r that are not parked, to be redelivered once
// r's backoff is over. They stay in the durable consumer's ack-pending
// set meanwhile, so this is only for the few that cannot be parked: a
// valid result is never dead-lettered for its destination's outage.
func (c *Consumer) holdBack(p policy, r *route, items []item) {
	if len(items) == 0 {
		return
	}
	wait := r.gate.remaining()
	c.log.Warn("results too large to park (with the park's headers they exceed the server's max_payload or the park stream's MaxMsgSize) wait in the stream for their tenant's destination",
		"tenant", r.name, "results", len(items), "retry_in", wait.String())
	for _, it := range items {
		c.settle(p, it.msg, &retry{after: wait})
	}
}

// parkPublishTimeout bounds the wait for the park's acknowledgements of a
// batch's copies.
const parkPublishTimeout = 10 * time.Second

// parkMsg is the parked copy of it: its body and headers, where it came
// from, and an id derived from its stream and sequence.
func (c *Consumer) parkMsg(name string, it item) (*nats.Msg, error) {
	meta, err := it.msg.Metadata()
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	pm := nats.NewMsg(c.parkSubject(name))
	pm.Data = it.msg.Data()
	for k, v := range it.msg.Headers() {
		pm.Header[k] = v
	}
	if id := pm.Header.Get(jetstream.MsgIDHeader); id != "" {
		pm.Header.Set(headerParkMsgID, id)
	}
	seq := strconv.FormatUint(meta.Sequence.Stream, 10)
	// The stored time tells apart the same sequence of a stream deleted
	// and created again; a redelivery has the same.
	pm.Header.Set(jetstream.MsgIDHeader, meta.Stream+":"+seq+":"+strconv.FormatInt(meta.Timestamp.UnixNano(), 10))
	pm.Header.Set(HeaderSubject, it.msg.Subject())
	pm.Header.Set(HeaderStream, meta.Stream)
	pm.Header.Set(HeaderStreamSeq, seq)
	pm.Header.Set(headerParkStored, meta.Timestamp.UTC().Format(time.RFC3339Nano))
	if it.org != "" {
		pm.Header.Set(HeaderTenant, it.org)
	}
	return pm, nil
}

// parkedMsg is a delivery of a parked copy, seen as its original: the
// original's subject, headers, stream, sequence and stored time, so that
// it maps to the same spans and dead-letters as the original would. Acks
// and naks go to the parked copy.
type parkedMsg struct {
	jetstream.Msg
	subject string
	headers nats.Header
	meta    *jetstream.MsgMetadata
}

func parked(m jetstream.Msg) jetstream.Msg {
	pm := &parkedMsg{Msg: m, subject: m.Subject(), headers: cloneHeader(m.Headers())}
	h := pm.headers
	if meta, err := m.Metadata(); err == nil {
		orig := *meta
		if s := h.Get(HeaderStream); s != "" {
			orig.Stream = s
		}
		if seq, err := strconv.ParseUint(h.Get(HeaderStreamSeq), 10, 64); err == nil {
			orig.Sequence.Stream = seq
		}
		if t, err := time.Parse(time.RFC3339Nano, h.Get(headerParkStored)); err == nil {
			orig.Timestamp = t
		}
		pm.meta = &orig
	}
	if s := h.Get(HeaderSubject); s != "" {
		pm.subject = s
	}
	h.Del(jetstream.MsgIDHeader)
	if id := h.Get(headerParkMsgID); id != "" {
		h.Set(jetstream.MsgIDHeader, id)
	}
	for _, k := range []string{headerParkMsgID, headerParkStored, HeaderSubject, HeaderStream, HeaderStreamSeq} {
		h.Del(k)
	}
	return pm
}

func isParked(m jetstream.Msg) bool {
	_, ok := m.(*parkedMsg)
	return ok
}

func (m *parkedMsg) Subject() string      { return m.subject }
func (m *parkedMsg) Headers() nats.Header { return m.headers }

func (m *parkedMsg) Metadata() (*jetstream.MsgMetadata, error) {
	if m.meta == nil {
		return m.Msg.Metadata()
	}
	return m.meta, nil
}
