package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Range selects the stored messages a replay re-exports. Unset bounds are
// the stream's first and last message; the last is the one stored when the
// replay starts, so that a replay beside a busy stream ends.
type Range struct {
	FromSeq, ToSeq uint64    // stream sequences, inclusive; 0 is unset
	Since, Until   time.Time // stored times, inclusive; zero is unset
	// Subject narrows the replay to one subject (wildcards allowed) within
	// the consumer's subjects; empty replays them all.
	Subject string
}

func (r Range) validate() error {
	switch {
	case r.FromSeq > 0 && !r.Since.IsZero():
		return fmt.Errorf("%w: a replay starts at a sequence or at a time, not both", ErrInvalidConfig)
	case r.ToSeq > 0 && r.FromSeq > r.ToSeq:
		return fmt.Errorf("%w: the replay's last sequence %d is before its first %d", ErrInvalidConfig, r.ToSeq, r.FromSeq)
	case !r.Until.IsZero() && !r.Since.IsZero() && r.Until.Before(r.Since):
		return fmt.Errorf("%w: the replay's end %s is before its start %s", ErrInvalidConfig, r.Until.Format(time.RFC3339), r.Since.Format(time.RFC3339))
	}
	return nil
}

// ReplayStats counts a replay's results. Total is known once the replay
// has bound its consumer and is an upper bound until the end: messages of
// other subjects and the end of a time range are only seen on arrival.
type ReplayStats struct {
	Total        uint64
	Exported     uint64
	DeadLettered uint64
	Skipped      uint64 // can never succeed; acknowledged without a dead letter
	Retries      uint64 // nak'd after a transient failure, done again later
	Elapsed      time.Duration

	// A fleet replay (FleetReplay) counts the whole range too, every
	// process's results: the counts above are this process's own.
	Fleet        bool
	RangeTotal   uint64 // results in the range
	RangeSettled uint64 // of them, settled by any process
	RangeJoined  uint64 // of them, settled already when this process joined
}

// Done is the number of results settled for good.
func (s ReplayStats) Done() uint64 { return s.Exported + s.DeadLettered + s.Skipped }

// ReplayOption configures a replay.
type ReplayOption func(*replayOptions)

type replayOptions struct {
	deadLetter bool
	progress   func(ReplayStats)
	interval   time.Duration
	inactive   time.Duration // a fleet replay's InactiveThreshold
}

// WithReplayDeadLetters sends results that can never succeed to the
// dead-letter subject, as Run does. By default a replay skips them: they
// were dead-lettered when first consumed.
func WithReplayDeadLetters() ReplayOption {
	return func(o *replayOptions) { o.deadLetter = true }
}

// WithProgress calls f with the counts every interval while the replay
// runs, from a goroutine of its own, and once more at the end.
func WithProgress(interval time.Duration, f func(ReplayStats)) ReplayOption {
	return func(o *replayOptions) { o.progress, o.interval = f, interval }
}

// Replay re-exports the stored messages of r through the same mapping,
// batching, export and retries as Run, using an ephemeral consumer that it
// deletes at the end: the durable consumer and its position are left
// untouched, so a replay can run beside the workers. Because span and trace
// ids are deterministic, a replayed result's spans are identical to the
// first export's.
//
// Replay returns when every result of the range is exported or settled
// for good (receiver outages are waited out, as in Run), or with an error
// when ctx ends first or the range cannot be read.
func (c *Consumer) Replay(ctx context.Context, r Range, opts ...ReplayOption) (ReplayStats, error) {
	var o replayOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := r.validate(); err != nil {
		return ReplayStats{}, err
	}
	stream, err := c.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return ReplayStats{}, fmt.Errorf("replay: stream %s: %w", c.cfg.Stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return ReplayStats{}, fmt.Errorf("replay: stream %s: %w", c.cfg.Stream, err)
	}
	last := info.State.LastSeq
	if r.ToSeq > 0 {
		last = min(last, r.ToSeq)
	}

	cc := jetstream.ConsumerConfig{
		Description:       "spanferry replay",
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           c.cfg.AckWait,
		MaxDeliver:        -1,
		MaxAckPending:     2 * c.cfg.BatchSize * c.cfg.Concurrency,
		InactiveThreshold: time.Minute, // the server removes it if Replay dies
		Replicas:          streamReplicas(info),
	}
	setStart(&cc, r)
	filter := c.cfg.Subjects
	if r.Subject != "" {
		filter = []string{r.Subject}
	}
	setFilter(&cc, filter)
	cons, err := stream.CreateConsumer(ctx, cc)
	if err != nil {
		return ReplayStats{}, fmt.Errorf("replay: create the ephemeral consumer: %w", err)
	}
	name := cons.CachedInfo().Name
	defer func() {
		// The consumer is of no use to anyone else; the inactivity
		// threshold removes it if this delete cannot.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := stream.DeleteConsumer(dctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			c.log.Warn("replay: delete the ephemeral consumer", "consumer", name, "err", err)
		}
	}()

	rs := &replayState{last: last, until: r.Until, start: time.Now()}
	rs.stats.Total = cons.CachedInfo().NumPending
	if last < info.State.LastSeq || r.FromSeq > 0 {
		first := max(r.FromSeq, info.State.FirstSeq)
		if last >= first {
			rs.stats.Total = min(rs.stats.Total, last-first+1)
		} else {
			rs.stats.Total = 0
		}
	}
	rs.reachedEnd = rs.stats.Total == 0
	c.log.Info("replaying", "stream", c.cfg.Stream, "consumer", name, "results", rs.stats.Total, "last_seq", last)

	stopProgress := func() {}
	if o.progress != nil {
		stopProgress = rs.report(o.interval, o.progress)
	}
	p := policy{deadLetter: o.deadLetter, admit: rs.admit, observe: rs.observe}
	c.consume(ctx, cons, p, rs.more)
	stopProgress()

	st := rs.snapshot()
	if o.progress != nil {
		o.progress(st)
	}
	if !rs.finished() {
		return st, fmt.Errorf("replay: stopped before the end of the range: %w", context.Cause(ctx))
	}
	return st, nil
}

// replayState tracks which messages of the range are settled, so that the
// replay ends when the last one is, and not before a nak'd one is retried.
type replayState struct {
	last  uint64
	until time.Time
	start time.Time

	mu         sync.Mutex
	stats      ReplayStats
	reachedEnd bool                // a message at or past the end was seen
	retrying   map[uint64]struct{} // nak'd, waiting to be redelivered
}

// admit keeps the messages within the range. A message past it marks the
// end; it is acknowledged, which only moves the ephemeral consumer.
func (rs *replayState) admit(msgs []jetstream.Msg) []jetstream.Msg {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	in := msgs[:0]
	for _, m := range msgs {
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		if meta.Sequence.Stream > rs.last || (!rs.until.IsZero() && meta.Timestamp.After(rs.until)) {
			rs.reachedEnd = true
			_ = m.Ack()
			continue
		}
		if meta.Sequence.Stream == rs.last || meta.NumPending == 0 {
			rs.reachedEnd = true
		}
		in = append(in, m)
	}
	return in
}

func (rs *replayState) observe(msg jetstream.Msg, outcome string) {
	meta, err := msg.Metadata()
	if err != nil {
		return
	}
	seq := meta.Sequence.Stream
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if outcome == OutcomeRetried {
		if rs.retrying == nil {
			rs.retrying = map[uint64]struct{}{}
		}
		rs.retrying[seq] = struct{}{}
		rs.stats.Retries++
		return
	}
	delete(rs.retrying, seq)
	switch outcome {
	case OutcomeAcked:
		rs.stats.Exported++
	case OutcomeDeadLettered:
		rs.stats.DeadLettered++
	case OutcomeSkipped:
		rs.stats.Skipped++
	}
}

// more reports whether to fetch again: until the end of the range is seen
// and nothing is in flight or waiting for a retry.
func (rs *replayState) more(inflight int) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return !(rs.reachedEnd && inflight == 0 && len(rs.retrying) == 0)
}

func (rs *replayState) finished() bool { return !rs.more(0) }

func (rs *replayState) snapshot() ReplayStats {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	st := rs.stats
	st.Elapsed = time.Since(rs.start)
	if rs.reachedEnd && len(rs.retrying) == 0 && st.Done() < st.Total {
		// The end is known now: the rest of the estimate was other
		// subjects or past the end time.
		st.Total = st.Done()
	}
	return st
}

func (rs *replayState) report(interval time.Duration, f func(ReplayStats)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f(rs.snapshot())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
