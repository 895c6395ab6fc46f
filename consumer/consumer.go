// Package consumer moves workflow results from a JetStream durable consumer
// to an OTLP exporter: it fetches a batch, maps each result inside its own
// scoped collector, exports every span of the batch in one request, and
// only then acknowledges. It owns the ack decision: exactly one function,
// settle, turns an outcome into Ack, Term (after the dead letter is
// stored) or NakWithDelay.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spanferry/spanferry/collector"
	"github.com/spanferry/spanferry/mapping"
)

// Config says where to consume from and how much to hold at once.
type Config struct {
	Stream        string
	Subjects      []string
	Durable       string
	CreateStream  bool // create the stream, the dead-letter stream and the consumer when missing
	DLQSubject    string
	DLQStream     string
	BatchSize     int           // most results per export request
	BatchWait     time.Duration // longest wait to fill a batch
	AckWait       time.Duration // the consumer's AckWait, when the worker creates it
	Concurrency   int           // export requests in flight at once
	MaxAckPending int           // when the worker creates the consumer; 0 derives it
	ParkStream    string        // with tenants: the stream a failing tenant's results are parked in
	// TenantParkAfter: with tenants, a request unanswered this long parks
	// its results (0: DefaultTenantParkAfter).
	TenantParkAfter time.Duration
	// StreamReplicas is the replica count of the results stream when the
	// worker creates it (0 is 1). What else the worker creates takes the
	// results stream's count (replicas.go).
	StreamReplicas int
}

func (c Config) validate() error {
	switch {
	case c.Stream == "" || c.Durable == "" || c.DLQSubject == "":
		return fmt.Errorf("%w: stream, durable and dead-letter subject are required", ErrInvalidConfig)
	case c.BatchSize < 1 || c.Concurrency < 1:
		return fmt.Errorf("%w: batch size and concurrency must be at least 1", ErrInvalidConfig)
	case c.BatchWait <= 0 || c.AckWait < time.Second:
		return fmt.Errorf("%w: batch wait must be positive and ack wait at least 1s", ErrInvalidConfig)
	}
	return nil
}

// Headers of a dead letter (CONTRACT §6), added to the original ones.
const (
	HeaderError      = "Spanferry-Error"
	HeaderStream     = "Spanferry-Stream"
	HeaderStreamSeq  = "Spanferry-Stream-Seq"
	HeaderSubject    = "Spanferry-Subject"
	HeaderDeliveries = "Spanferry-Deliveries"
	// HeaderTenant names the tenant of a dead-lettered result (CONTRACT §8).
	HeaderTenant = "Spanferry-Tenant"
	// HeaderRedrivenFrom is set on a redriven result: the sequence of the
	// dead letter it was redriven from (CONTRACT §10).
	HeaderRedrivenFrom = "Spanferry-Redriven-From"
)

// Consumer is the worker's main loop. Create it with New, call Run.
type Consumer struct {
	js      jetstream.JetStream
	mapper  *mapping.Mapper
	exp     sdktrace.SpanExporter
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	gate    gate
	ready   atomic.Bool
	tenants *Tenants
	park    parking
	avail   availability // ready.go
}

// Option configures a Consumer.
type Option func(*Consumer)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *Consumer) { c.log = l } }

// WithMetrics sets the metrics (default: unregistered ones).
func WithMetrics(m *Metrics) Option { return func(c *Consumer) { c.metrics = m } }

// New returns a Consumer. It does no I/O; Run binds to the stream.
func New(js jetstream.JetStream, m *mapping.Mapper, exp sdktrace.SpanExporter, cfg Config, opts ...Option) (*Consumer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Consumer{js: js, mapper: m, exp: exp, cfg: cfg, log: slog.Default()}
	for _, opt := range opts {
		opt(c)
	}
	if c.metrics == nil {
		c.metrics = NewMetrics(nil)
	}
	c.metrics.initRedactions(m.Redactor())
	return c, nil
}

// Ready reports whether the consumer is bound to its durable consumer and
// the durable answers: not while it has no leader (ready.go).
func (c *Consumer) Ready() bool { return c.ready.Load() && !c.avail.down.Load() }

// bind finds the durable consumer, creating the streams and the consumer
// when CreateStream is set. Existing streams and consumers are never
// modified: in production, operators own them.
func (c *Consumer) bind(ctx context.Context) (jetstream.Consumer, error) {
	stream, err := c.js.Stream(ctx, c.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) && c.cfg.CreateStream {
		stream, err = c.js.CreateStream(ctx, jetstream.StreamConfig{
			Name: c.cfg.Stream, Subjects: c.cfg.Subjects, Storage: jetstream.FileStorage,
			Duplicates: 2 * time.Minute, Replicas: max(1, c.cfg.StreamReplicas),
		})
		if err == nil {
			c.log.Info("created stream", "stream", c.cfg.Stream, "subjects", c.cfg.Subjects)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", c.cfg.Stream, err)
	}
	replicas := streamReplicas(stream.CachedInfo())
	if c.cfg.CreateStream && c.cfg.DLQStream != "" {
		if _, err := c.js.Stream(ctx, c.cfg.DLQStream); errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = c.js.CreateStream(ctx, jetstream.StreamConfig{
				Name: c.cfg.DLQStream, Subjects: []string{c.cfg.DLQSubject}, Storage: jetstream.FileStorage,
				Replicas: replicas,
			})
			if err != nil {
				return nil, fmt.Errorf("dead-letter stream %s: %w", c.cfg.DLQStream, err)
			}
			c.log.Info("created dead-letter stream", "stream", c.cfg.DLQStream, "subject", c.cfg.DLQSubject, "replicas", replicas)
		}
	}
	cons, err := stream.Consumer(ctx, c.cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) && c.cfg.CreateStream {
		maxPending := c.cfg.MaxAckPending
		if maxPending == 0 {
			// Room for eight replicas at full concurrency: a consumer-wide
			// cap below that would leave replicas idle.
			maxPending = 8 * c.cfg.BatchSize * c.cfg.Concurrency
		}
		cc := jetstream.ConsumerConfig{
			Durable:       c.cfg.Durable,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       c.cfg.AckWait,
			MaxDeliver:    -1, // transient failures retry until the receiver is back
			MaxAckPending: maxPending,
			Replicas:      replicas,
		}
		if len(c.cfg.Subjects) == 1 {
			cc.FilterSubject = c.cfg.Subjects[0]
		} else {
			cc.FilterSubjects = c.cfg.Subjects
		}
		cons, err = stream.CreateConsumer(ctx, cc)
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", c.cfg.Durable, c.cfg.Stream, err)
	}
	return cons, nil
}

// Run consumes until ctx is done, then stops fetching and waits for the
// batches in flight to be exported and settled. Their exports run on a
// context of their own, so the caller bounds shutdown by how long it waits
// for Run (unsettled messages are redelivered after AckWait: nothing is
// lost either way). Run returns an error only when ctx ends before it
// could bind to the durable consumer.
func (c *Consumer) Run(ctx context.Context) error {
	var cons jetstream.Consumer
	for {
		var err error
		if cons, err = c.bind(ctx); err == nil {
			if err = c.bindPark(ctx); err == nil {
				break
			}
		}
		c.log.Error("cannot bind to the durable consumer; retrying", "err", err)
		c.gate.fail(0)
		if c.gate.wait(ctx) != nil {
			return err
		}
	}
	c.gate.ok()
	c.ready.Store(true)
	c.log.Info("consuming", "stream", c.cfg.Stream, "durable", c.cfg.Durable, "batch_size", c.cfg.BatchSize, "concurrency", c.cfg.Concurrency)
	go c.watchPending(ctx, cons)
	defer c.runParking(ctx)()
	c.consume(ctx, cons, policy{deadLetter: true, detachSlow: true}, nil)
	return nil
}

// consume fetches batches from cons and hands each to handle, with at most
// Concurrency batches in flight, until ctx is done or more (checked before
// each fetch, given the number of batches in flight) says to stop. admit,
// when not nil, picks the messages of a batch to handle; it settles the
// others itself. consume returns once the batches in flight are settled:
// they run on a context of their own so that cancelling ctx stops the
// fetching, not the exports.
func (c *Consumer) consume(ctx context.Context, cons jetstream.Consumer, p policy, more func(inflight int) bool) {
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	slots := make(chan struct{}, c.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if more != nil && !more(len(slots)-1) {
			return
		}
		if c.gate.wait(ctx) != nil {
			return
		}
		msgs, err := c.fetch(cons)
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return
			}
			c.fetchFailed(ctx, cons, err)
			continue
		}
		c.fetched(ctx, cons, len(msgs))
		msgs = c.dropExported(msgs)
		if c.tenants != nil {
			// With tenants the gate paces fetch errors only (each tenant
			// backs off on its own): a fetch that works ends it.
			c.gate.ok()
		}
		if p.admit != nil {
			msgs = p.admit(msgs)
		}
		if len(msgs) == 0 {
			<-slots
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			free := func() { once.Do(func() { <-slots }) }
			defer free()
			c.handle(work, p, msgs, free)
		}()
	}
}

func (c *Consumer) fetch(cons jetstream.Consumer) ([]jetstream.Msg, error) {
	batch, err := cons.Fetch(c.cfg.BatchSize, jetstream.FetchMaxWait(c.cfg.BatchWait))
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && len(msgs) == 0 {
		return nil, err
	}
	return msgs, nil
}

func (c *Consumer) watchPending(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		info, err := cons.Info(ctx)
		if err == nil {
			c.metrics.Pending.Set(float64(info.NumPending))
		}
		if ctx.Err() == nil {
			c.infoFailed(cons, info, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// policy is what differs between consuming (Run) and replaying (Replay).
type policy struct {
	// deadLetter sends messages that can never succeed to the dead-letter
	// subject; when false they are acknowledged and counted as skipped.
	deadLetter bool
	// admit, when not nil, picks the messages of a fetched batch to handle
	// and settles the others.
	admit func([]jetstream.Msg) []jetstream.Msg
	// observe, when not nil, is told each delivery's outcome (one of the
	// Outcome constants) once it is settled.
	observe func(msg jetstream.Msg, outcome string)
	// detachSlow, with tenants, frees a batch's fetch slot while its
	// slowest tenants' requests finish (deliverTenants).
	detachSlow bool
}

// item is one result of a batch: its message, its spans and its tenant
// (the result's organization).
type item struct {
	msg   jetstream.Msg
	spans []sdktrace.ReadOnlySpan
	org   string
	mem   *batchMemory // shared by the items of a batch; nil outside handle
}

// handle maps every message of a batch, dead-letters the ones that can
// never succeed, and exports the rest in one request. free, when not nil,
// frees the batch's fetch slot before handle returns.
func (c *Consumer) handle(ctx context.Context, p policy, msgs []jetstream.Msg, free func()) {
	c.metrics.Inflight.Add(float64(len(msgs)))
	defer c.metrics.Inflight.Sub(float64(len(msgs)))

	// A long export must not let AckWait expire: the messages would be
	// redelivered to another replica while this one still works on them.
	stop := c.keepAlive(msgs)
	defer stop()

	mem := newBatchMemory(len(msgs))
	defer mem.release()
	items := make([]item, 0, len(msgs))
	for _, msg := range msgs {
		col, org, err := c.mapOne(msg)
		if err != nil {
			c.deadLetter(ctx, p, msg, err)
			continue
		}
		mem.add(col)
		items = append(items, item{msg: msg, spans: col.Take(), org: org, mem: mem})
	}
	if c.tenants != nil {
		c.deliverTenants(ctx, p, items, free)
		return
	}
	c.deliver(ctx, p, items)
}

func (c *Consumer) mapOne(msg jetstream.Msg) (*collector.Collector, string, error) {
	src := mapping.Source{Traceparent: msg.Headers().Get("traceparent")}
	if meta, err := msg.Metadata(); err == nil {
		src.Stored = meta.Timestamp
	}
	d, err := c.mapper.Decode(msg.Data(), src)
	if err != nil {
		return nil, "", err
	}
	// The spans refer to none of d's own memory (see Recycle), whichever
	// exporter they go to: it serves the next message at once.
	defer d.Recycle()
	col, err := c.mapper.NewCollector(d, nil)
	if err != nil {
		return nil, "", err
	}
	st, err := c.mapper.Map(col, d)
	if err != nil {
		return nil, "", err
	}
	c.metrics.Truncations.Add(float64(st.Truncations))
	c.metrics.addRedactions(st.Redactions)
	return col, d.Result.Organization, nil
}

// deliver exports items in one request and settles them. A request the
// receiver refuses for good is split in halves until the offending results
// are alone, so that only they are dead-lettered.
func (c *Consumer) deliver(ctx context.Context, p policy, items []item) {
	if len(items) == 0 {
		return
	}
	spans := spansOf(items)
	actx, a := withAttempt(ctx)
	start := time.Now()
	items[0].mem.exportingTo(c.exp)
	err := c.exp.ExportSpans(actx, spans)
	c.metrics.ExportTime.Observe(time.Since(start).Seconds())
	c.metrics.BatchResults.Observe(float64(len(items)))

	switch classify(err, a) {
	case exported:
		c.gate.ok()
		c.metrics.SpansOut.Add(float64(len(spans)))
		for _, it := range items {
			c.settle(p, it.msg, nil)
		}
	case transient:
		c.gate.fail(a.retryAfter)
		c.log.Warn("export failed; will retry", "results", len(items), "status", a.status, "err", err)
		for _, it := range items {
			c.settle(p, it.msg, &retry{after: a.retryAfter})
		}
	case rejected:
		if len(items) == 1 {
			c.deadLetter(ctx, p, items[0].msg, fmt.Errorf("rejected by the OTLP receiver (status %d, %d spans rejected): %v", a.status, a.rejected, err))
			return
		}
		half := len(items) / 2
		c.deliver(ctx, p, items[:half])
		c.deliver(ctx, p, items[half:])
	}
}

// spansOf returns the spans of items in one slice, the content of one
// export request.
func spansOf(items []item) []sdktrace.ReadOnlySpan {
	n := 0
	for _, it := range items {
		n += len(it.spans)
	}
	spans := make([]sdktrace.ReadOnlySpan, 0, n)
	for _, it := range items {
		spans = append(spans, it.spans...)
	}
	return spans
}

// retry asks settle to nak a message for redelivery.
type retry struct{ after time.Duration }

// settle is the one place a delivery's fate is decided: ack after export,
// nak with a growing delay after a transient failure. Dead letters are
// terminated by deadLetter once the dead letter is stored.
func (c *Consumer) settle(p policy, msg jetstream.Msg, r *retry) {
	if r == nil {
		if err := msg.Ack(); err != nil {
			c.log.Warn("ack failed; the message will be redelivered", "err", err)
			return
		}
		c.ackSent(msg)
		c.metrics.acked.Inc()
		p.observed(msg, OutcomeAcked)
		return
	}
	delay := r.after
	if meta, err := msg.Metadata(); err == nil {
		delay = max(delay, nakDelay(meta.NumDelivered))
	}
	if err := msg.NakWithDelay(delay); err != nil {
		c.log.Warn("nak failed; the message will be redelivered after AckWait", "err", err)
	}
	c.metrics.retried.Inc()
	p.observed(msg, OutcomeRetried)
}

func (p policy) observed(msg jetstream.Msg, outcome string) {
	if p.observe != nil {
		p.observe(msg, outcome)
	}
}

// deadLetter publishes msg with the reason to the dead-letter subject and
// terminates it once JetStream has stored the dead letter. If the publish
// fails, the message is nak'd: it is never lost. Under a policy without
// dead letters (a replay), the message is acknowledged and skipped.
func (c *Consumer) deadLetter(ctx context.Context, p policy, msg jetstream.Msg, cause error) {
	reason := deadLetterReason(cause)
	if !p.deadLetter {
		_ = msg.Ack()
		c.metrics.Messages.WithLabelValues(OutcomeSkipped).Inc()
		c.log.Info("skipped", "subject", msg.Subject(), "reason", reason)
		p.observed(msg, OutcomeSkipped)
		return
	}
	dl := nats.NewMsg(c.cfg.DLQSubject)
	dl.Data = msg.Data()
	for k, v := range msg.Headers() {
		dl.Header[k] = v
	}
	dl.Header.Set(HeaderError, reason)
	dl.Header.Set(HeaderSubject, msg.Subject())
	if meta, err := msg.Metadata(); err == nil {
		dl.Header.Set(HeaderStream, meta.Stream)
		dl.Header.Set(HeaderStreamSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
		dl.Header.Set(HeaderDeliveries, strconv.FormatUint(meta.NumDelivered, 10))
	}
	if _, err := c.js.PublishMsg(ctx, dl); err != nil {
		c.log.Error("dead-letter publish failed; will retry", "subject", msg.Subject(), "err", err)
		c.settle(p, msg, &retry{})
		return
	}
	if err := msg.TermWithReason(reason); err != nil {
		c.log.Warn("term failed after the dead letter was stored", "err", err)
	}
	c.metrics.deadLettered.Inc()
	p.observed(msg, OutcomeDeadLettered)
	c.log.Info("dead-lettered", "subject", msg.Subject(), "reason", reason)
}

// keepAlive sends InProgress for msgs every third of AckWait until stopped.
func (c *Consumer) keepAlive(msgs []jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(c.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress() // a settled message ignores it
				}
			}
		}
	}()
	return func() { close(done) }
}

// nakDelay grows with the number of deliveries: 1s, 2s, 4s… up to a
// minute, with jitter so that a recovered receiver is not hit by every
// message at once.
func nakDelay(deliveries uint64) time.Duration {
	d := time.Second << min(deliveries-1, 6)
	return jitter(min(d, time.Minute))
}

func jitter(d time.Duration) time.Duration {
	return d - d/5 + time.Duration(rand.Int64N(int64(d/5)*2+1))
}

// Fetch backoff while exports fail. The cap bounds how late the worker
// notices that the receiver is back (the fault tests saw 15 s with a 30 s
// cap); one attempt per 5 s per replica is no load on a down receiver.
const (
	gateMin = 250 * time.Millisecond
	gateMax = 5 * time.Second
)

// gate slows fetching while exports fail: after each transient failure the
// fetch loop waits longer (gateMin doubling to gateMax, or Retry-After), so
// an outage costs a few attempts per second in total, not one per message.
type gate struct {
	mu       sync.Mutex
	until    time.Time
	failures int
	opened   chan struct{} // closed by ok: wakes the waiters
}

func (g *gate) fail(retryAfter time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures++
	d := jitter(min(gateMin<<min(g.failures-1, 7), gateMax))
	g.until = time.Now().Add(max(d, retryAfter))
}

func (g *gate) ok() {
	g.mu.Lock()
	g.failures, g.until = 0, time.Time{}
	if g.opened != nil {
		close(g.opened)
		g.opened = nil
	}
	g.mu.Unlock()
}

// wait returns when the gate is open: its backoff has passed, or an export
// has succeeded meanwhile.
func (g *gate) wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		d := time.Until(g.until)
		if d <= 0 {
			g.mu.Unlock()
			return nil
		}
		if g.opened == nil {
			g.opened = make(chan struct{})
		}
		opened := g.opened
		g.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-opened:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// deadLetterReason makes cause a dead letter's reason: one line of
// printable UTF-8 (a receiver's error may quote a binary body), at most
// 1024 bytes, cut on a character boundary.
func deadLetterReason(cause error) string {
	reason := strings.Join(strings.Fields(strings.ToValidUTF8(cause.Error(), "\uFFFD")), " ")
	reason = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, reason)
	if len(reason) > 1024 {
		cut := 1024
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	return reason
}
