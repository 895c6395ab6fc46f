package consumer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrReplayConflict is wrapped by FleetReplay's error when a replay of the
// same name exists with another range or subject.
var ErrReplayConflict = errors.New("consumer: a replay of that name exists with another range")

// Metadata of a fleet replay's consumer: what every process that joins
// must agree on, recorded by the first.
const (
	metaReplayRange = "spanferry.replay.range"   // the range as given, canonical
	metaReplayEnd   = "spanferry.replay.end-seq" // the last stream sequence of the range
	metaReplayTotal = "spanferry.replay.total"   // results in the range when it was created
)

// Fleet replay timing. Every process polls the consumer's info for the
// consumer-wide progress and the end; the one that sees the range settled
// removes the consumer a grace of a few polls later, so that the others
// see the settled range themselves rather than a missing consumer.
const (
	fleetPoll  = 500 * time.Millisecond
	fleetGrace = 3 * fleetPoll
	// DefaultReplayInactiveThreshold is how long a fleet replay's consumer
	// outlives the last process that used it: long enough for a Job to
	// restart its pods, short enough not to linger.
	DefaultReplayInactiveThreshold = 5 * time.Minute
)

var replayNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ReplayConsumerName is the durable consumer a fleet replay of name uses.
func ReplayConsumerName(name string) string { return "spanferry-replay-" + name }

// WithInactiveThreshold sets how long a fleet replay's consumer outlives
// the last process that used it (default DefaultReplayInactiveThreshold).
func WithInactiveThreshold(d time.Duration) ReplayOption {
	return func(o *replayOptions) { o.inactive = d }
}

// key is the range in canonical form, with the subject filter it resolves
// to: two processes agree on a replay when their keys are equal.
func (r Range) key(filter []string) string {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("from-seq=%d to-seq=%d since=%s until=%s subjects=%v", r.FromSeq, r.ToSeq, ts(r.Since), ts(r.Until), filter)
}

// FleetReplay is Replay shared by every process that calls it with the
// same name and range: they join one durable replay consumer (created by
// the first, with the range and its end recorded in its metadata), share
// its messages, and each returns when the whole range is settled, as the
// consumer's info tells: nothing delivered and unacknowledged, and
// delivered up to the range's end sequence (or nothing left pending).
// A process that dies loses nothing: what it held is redelivered to the
// others after AckWait. The consumer is deleted when the range is done and
// expires by itself after an inactivity threshold if every process died.
// The stats count this process's own results, and the whole range's in
// RangeTotal and RangeSettled.
func (c *Consumer) FleetReplay(ctx context.Context, name string, r Range, opts ...ReplayOption) (ReplayStats, error) {
	o := replayOptions{inactive: DefaultReplayInactiveThreshold}
	for _, opt := range opts {
		opt(&o)
	}
	if !replayNameRE.MatchString(name) {
		return ReplayStats{}, fmt.Errorf("%w: replay name %q: 1 to 64 letters, digits, - or _", ErrInvalidConfig, name)
	}
	if err := r.validate(); err != nil {
		return ReplayStats{}, err
	}
	start := time.Now()
	stream, err := c.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return ReplayStats{}, fmt.Errorf("replay %s: stream %s: %w", name, c.cfg.Stream, err)
	}
	cons, end, total, err := c.joinReplay(ctx, stream, name, r, o)
	if err != nil {
		return ReplayStats{}, err
	}
	cname := ReplayConsumerName(name)
	c.log.Info("replaying with a fleet", "stream", c.cfg.Stream, "consumer", cname, "end_seq", end, "results", total)

	fs := &fleetState{rs: &replayState{start: start}, end: end, total: total}
	pctx, stopPoll := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); fs.poll(pctx, cons) }()
	stopProgress := func() {}
	if o.progress != nil {
		stopProgress = fs.rs.report(o.interval, func(ReplayStats) { o.progress(fs.snapshot()) })
	}
	c.consume(ctx, cons, policy{deadLetter: o.deadLetter, admit: fs.admit, observe: fs.rs.observe}, fs.more)
	stopPoll()
	wg.Wait()
	stopProgress()

	done, gone := fs.finished()
	st := fs.snapshot()
	if o.progress != nil {
		o.progress(st)
	}
	switch {
	case done && !gone:
		// The others see the settled range in their next polls; then
		// the consumer goes.
		t := time.NewTimer(fleetGrace)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if err := deleteReplayConsumer(context.WithoutCancel(ctx), stream, cname); err != nil {
			c.log.Warn("replay: delete the replay consumer; it expires by itself", "consumer", cname, "err", err)
		}
		return st, nil
	case done:
		return st, nil // settled, and removed by another process
	case gone:
		return st, fmt.Errorf("replay %s: the consumer %s was removed before the range was settled", name, cname)
	}
	return st, fmt.Errorf("replay %s: stopped before the end of the range: %w", name, context.Cause(ctx))
}

// joinReplay returns the fleet's consumer, creating it when missing, with
// the range's end sequence and size as recorded by its creator.
func (c *Consumer) joinReplay(ctx context.Context, stream jetstream.Stream, name string, r Range, o replayOptions) (jetstream.Consumer, uint64, uint64, error) {
	cname := ReplayConsumerName(name)
	filter := c.cfg.Subjects
	if r.Subject != "" {
		filter = []string{r.Subject}
	}
	key := r.key(filter)
	for range 5 { // lost races with another creator, each time
		cons, err := stream.Consumer(ctx, cname)
		if err == nil {
			end, total, err := checkReplay(cons.CachedInfo(), name, key)
			return cons, end, total, err
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, 0, 0, fmt.Errorf("replay %s: consumer %s: %w", name, cname, err)
		}
		cons, end, total, err := c.createReplay(ctx, stream, cname, r, filter, key, o)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			continue // another process created it first: join it
		}
		return cons, end, total, err
	}
	return nil, 0, 0, fmt.Errorf("replay %s: consumer %s keeps changing; try again", name, cname)
}

// checkReplay reads an existing replay consumer's metadata and refuses it
// when its range is not key.
func checkReplay(info *jetstream.ConsumerInfo, name, key string) (end, total uint64, err error) {
	meta := info.Config.Metadata
	got, ok := meta[metaReplayRange]
	if !ok {
		return 0, 0, fmt.Errorf("%w: consumer %s exists and is not a spanferry replay; choose another --name", ErrReplayConflict, info.Name)
	}
	if got != key {
		return 0, 0, fmt.Errorf("%w: replay %q runs %s, this process was given %s; give the same range and subject, or another --name", ErrReplayConflict, name, got, key)
	}
	end, err = strconv.ParseUint(meta[metaReplayEnd], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("replay %s: consumer %s: metadata %s: %w", name, info.Name, metaReplayEnd, err)
	}
	total, _ = strconv.ParseUint(meta[metaReplayTotal], 10, 64)
	return end, total, nil
}

// createReplay creates the fleet's consumer. The range's end is fixed now:
// --to-seq, the last message stored at --until, or the stream's last.
func (c *Consumer) createReplay(ctx context.Context, stream jetstream.Stream, cname string, r Range, filter []string, key string, o replayOptions) (jetstream.Consumer, uint64, uint64, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("replay: stream %s: %w", c.cfg.Stream, err)
	}
	end := info.State.LastSeq
	if r.ToSeq > 0 {
		end = min(end, r.ToSeq)
	}
	if !r.Until.IsZero() {
		u, err := lastStoredBy(ctx, stream, r.Until)
		if err != nil {
			return nil, 0, 0, err
		}
		end = min(end, u)
	}
	// The range's size: what a consumer on it would have pending now,
	// bounded by the sequences it spans.
	total, err := countRange(ctx, stream, r, filter, end)
	if err != nil {
		return nil, 0, 0, err
	}
	maxPending := c.cfg.MaxAckPending
	if maxPending == 0 {
		maxPending = 8 * c.cfg.BatchSize * c.cfg.Concurrency
	}
	cc := jetstream.ConsumerConfig{
		Durable:           cname,
		Description:       "spanferry fleet replay",
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           c.cfg.AckWait,
		MaxDeliver:        -1,
		MaxAckPending:     maxPending,
		InactiveThreshold: o.inactive,
		Replicas:          streamReplicas(info),
		Metadata: map[string]string{
			metaReplayRange: key,
			metaReplayEnd:   strconv.FormatUint(end, 10),
			metaReplayTotal: strconv.FormatUint(total, 10),
		},
	}
	setStart(&cc, r)
	setFilter(&cc, filter)
	cons, err := stream.CreateConsumer(ctx, cc)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("replay: create the replay consumer %s: %w", cname, err)
	}
	// Another process may have created it a moment before with the same
	// range but another end (the stream grew): theirs is the one.
	end, total, err = checkReplay(cons.CachedInfo(), cname, key)
	return cons, end, total, err
}

func setStart(cc *jetstream.ConsumerConfig, r Range) {
	switch {
	case r.FromSeq > 0:
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, r.FromSeq
	case !r.Since.IsZero():
		since := r.Since
		cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	default:
		cc.DeliverPolicy = jetstream.DeliverAllPolicy
	}
}

func setFilter(cc *jetstream.ConsumerConfig, filter []string) {
	if len(filter) == 1 {
		cc.FilterSubject = filter[0]
	} else {
		cc.FilterSubjects = filter
	}
}

// lastStoredBy returns the sequence of the last message stored at or
// before t: a consumer starting after t is positioned just past it.
func lastStoredBy(ctx context.Context, stream jetstream.Stream, t time.Time) (uint64, error) {
	after := t.Add(time.Nanosecond)
	return probeConsumer(ctx, stream, func(cc *jetstream.ConsumerConfig) {
		cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &after
	}, func(info *jetstream.ConsumerInfo) uint64 { return info.Delivered.Stream })
}

// countRange returns how many messages of filter lie in the range up to
// end: what a consumer from the range's start has pending, less what one
// from past the end has. The second is asked first, so that a message
// stored meanwhile can only make the count high, never low.
func countRange(ctx context.Context, stream jetstream.Stream, r Range, filter []string, end uint64) (uint64, error) {
	past, err := probeConsumer(ctx, stream, func(cc *jetstream.ConsumerConfig) {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, end+1
		setFilter(cc, filter)
	}, numPending)
	if err != nil {
		return 0, err
	}
	from, err := probeConsumer(ctx, stream, func(cc *jetstream.ConsumerConfig) {
		setStart(cc, r)
		setFilter(cc, filter)
	}, numPending)
	if err != nil {
		return 0, err
	}
	return from - min(from, past), nil
}

func numPending(info *jetstream.ConsumerInfo) uint64 { return info.NumPending }

// probeConsumer creates a short-lived ephemeral consumer configured by
// set, reads read from its info, and deletes it.
func probeConsumer(ctx context.Context, stream jetstream.Stream, set func(*jetstream.ConsumerConfig), read func(*jetstream.ConsumerInfo) uint64) (uint64, error) {
	cc := jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, InactiveThreshold: 30 * time.Second}
	set(&cc)
	cons, err := stream.CreateConsumer(ctx, cc)
	if err != nil {
		return 0, fmt.Errorf("replay: find the range's end: %w", err)
	}
	v := read(cons.CachedInfo())
	_ = stream.DeleteConsumer(ctx, cons.CachedInfo().Name)
	return v, nil
}

// fleetState is one process's view of a fleet replay: its own counts (rs)
// and the consumer-wide state its poll reads.
type fleetState struct {
	rs    *replayState
	end   uint64
	total uint64

	mu        sync.Mutex
	done      bool // the consumer says the whole range is settled
	gone      bool // the consumer was removed
	remaining uint64
	polled    bool
	// settledOnce: the previous poll saw the range settled.
	settledOnce bool
	joined      uint64 // settled at this process's first poll
}

// admit keeps the messages of the range; those past its end are
// acknowledged, which only moves the replay consumer along.
func (fs *fleetState) admit(msgs []jetstream.Msg) []jetstream.Msg {
	in := msgs[:0]
	for _, m := range msgs {
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		if meta.Sequence.Stream > fs.end {
			_ = m.Ack()
			continue
		}
		in = append(in, m)
	}
	return in
}

func (fs *fleetState) more(int) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return !fs.done && !fs.gone
}

func (fs *fleetState) finished() (done, gone bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.done, fs.gone
}

// poll reads the consumer's info every fleetPoll until ctx ends or the
// range is settled.
func (fs *fleetState) poll(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(fleetPoll)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, probeTimeout)
		info, err := cons.Info(ictx)
		cancel()
		if fs.update(info, err) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// update takes in one poll's answer and reports whether the replay is
// over. The range is settled when nothing delivered is unacknowledged and
// the consumer has delivered up to the end (or has nothing left pending).
func (fs *fleetState) update(info *jetstream.ConsumerInfo, err error) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		// Removed: by a process that saw it settled, a grace ago, if
		// the last poll saw the end delivered.
		fs.gone = true
		fs.done = fs.polled && fs.remaining == 0
		return true
	}
	if err != nil {
		return false // a leader election, a slow server: poll again
	}
	if !led(info.Cluster) {
		// Answered without a working leader (a consumer just created,
		// an election): its counts are not the consumer's state.
		return false
	}
	delivered := info.Delivered.Stream
	undelivered := uint64(0)
	if delivered < fs.end {
		undelivered = min(info.NumPending, fs.end-delivered)
	}
	fs.remaining = uint64(info.NumAckPending) + undelivered
	if !fs.polled {
		fs.joined = fs.total - min(fs.total, fs.remaining)
	}
	fs.polled = true
	settled := info.NumAckPending == 0 && (delivered >= fs.end || info.NumPending == 0)
	// Two polls in a row must say so: one answer is one server's view,
	// and a wrong one would end every process early.
	fs.done = settled && fs.settledOnce
	fs.settledOnce = settled
	if settled {
		fs.remaining = 0
	}
	return fs.done
}

func (fs *fleetState) snapshot() ReplayStats {
	st := fs.rs.snapshot()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	st.Fleet = true
	st.RangeTotal = fs.total
	remaining := fs.remaining
	if !fs.polled {
		remaining = fs.total
	}
	st.RangeSettled = fs.total - min(fs.total, remaining)
	st.RangeJoined = min(fs.joined, st.RangeSettled)
	if fs.done {
		st.RangeSettled = fs.total
	}
	return st
}

// fleetDeleteFor bounds how long a process that saw the range settled keeps
// trying to delete the replay consumer: longer than a leader election (4–8 s
// in the cluster fault tests), during which the delete cannot succeed.
const fleetDeleteFor = 30 * time.Second

// deleteReplayConsumer deletes the fleet's consumer, trying again while
// the cluster cannot answer (no meta leader yet after a server died). A
// consumer already gone (another process deleted it) is success.
func deleteReplayConsumer(ctx context.Context, stream jetstream.Stream, name string) error {
	ctx, cancel := context.WithTimeout(ctx, fleetDeleteFor)
	defer cancel()
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		err := stream.DeleteConsumer(actx, name)
		acancel()
		if err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}
