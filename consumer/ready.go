package consumer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// While the consumer has no leader (its server died, the survivors are
// electing a new one), fetches fail at once with no responders. The fetch
// loop then fetches again every probeInterval instead of backing off as it
// does for a failing receiver: a fetch without a leader costs the cluster
// nothing, and the worker resumes within a probe of the new leader's
// election.
const (
	probeInterval = 250 * time.Millisecond
	probeTimeout  = time.Second
)

// availability tracks whether the consumer has a leader that answers, for
// /readyz and for resuming quickly after a leader election. Its zero value
// is available.
type availability struct {
	down atomic.Bool

	mu        sync.Mutex
	lostAt    time.Time
	lastProbe time.Time
	// acks holds the reply subjects of the latest acks: an ack sent while
	// the consumer has no leader reaches no one, and is sent again when a
	// leader answers (ack.go).
	acks recentAcks
	// reconnects is the connection's reconnect count at the last fetch.
	reconnects atomic.Uint64
}

// fetchFailed is told of a failed fetch: the consumer is not available
// until a fetch or a probe says otherwise. It waits a probe interval, so
// that the caller can fetch again: a fetch is the quickest probe (no
// responders comes back at once while there is no leader, and the first
// fetch after the election gets messages), where an info request without a
// leader waits for its timeout.
func (c *Consumer) fetchFailed(ctx context.Context, cons jetstream.Consumer, err error) {
	c.lost(cons, "fetch", err)
	t := time.NewTimer(jitter(probeInterval))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// fetched is told of a fetch that did not fail. Messages prove that the
// consumer has a leader; an empty fetch does not (a fetch whose leader
// died mid-wait also ends empty), so while the consumer is down it probes,
// at most once a probe interval.
func (c *Consumer) fetched(ctx context.Context, cons jetstream.Consumer, n int) {
	c.checkReconnect()
	if !c.avail.down.Load() {
		return
	}
	if n > 0 {
		c.available(cons, "a fetch got messages")
		return
	}
	c.avail.mu.Lock()
	due := time.Since(c.avail.lastProbe) >= probeInterval
	c.avail.mu.Unlock()
	if due {
		c.probe(ctx, cons)
	}
}

// probe asks the consumer for its info: an answer naming a leader (or from
// a single server) makes the consumer available again.
func (c *Consumer) probe(ctx context.Context, cons jetstream.Consumer) bool {
	c.avail.mu.Lock()
	c.avail.lastProbe = time.Now()
	c.avail.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	info, err := cons.Info(pctx)
	if err != nil || !led(info.Cluster) {
		return false
	}
	why := "consumer info answered"
	if info.Cluster != nil {
		why = "consumer info names the leader " + info.Cluster.Leader
	}
	c.available(cons, why)
	return true
}

// available marks the consumer available and acks again what was acked
// lately: acks sent while it had no leader were lost.
func (c *Consumer) available(cons jetstream.Consumer, why string) {
	if !c.avail.down.Swap(false) {
		return
	}
	c.avail.mu.Lock()
	lost := time.Since(c.avail.lostAt)
	c.avail.mu.Unlock()
	reacked := c.avail.acks.resend(c.js.Conn(), c.cfg.AckWait)
	c.log.Info("consumer available again; ready", "consumer", consName(cons), "unavailable_for", lost.Round(time.Millisecond).String(), "acks_resent", reacked, "because", why)
}

// checkReconnect resends the latest acks when the connection has
// reconnected since the last fetch: acks written to a server that died
// went nowhere, though the consumer's leader, elsewhere, never left.
func (c *Consumer) checkReconnect() {
	nc := c.js.Conn()
	if nc == nil {
		return
	}
	n := nc.Stats().Reconnects
	if c.avail.reconnects.Swap(n) == n {
		return
	}
	resent := c.avail.acks.resend(nc, c.cfg.AckWait)
	c.log.Info("reconnected to nats; latest acks sent again", "acks_resent", resent)
}

// lost marks the consumer unavailable, logging the first failure of an
// outage only.
func (c *Consumer) lost(cons jetstream.Consumer, what string, err error) {
	if c.avail.down.Swap(true) {
		c.log.Debug(what+" failed", "err", err)
		return
	}
	c.avail.mu.Lock()
	c.avail.lostAt = time.Now()
	c.avail.mu.Unlock()
	c.log.Warn(what+" failed: no consumer to fetch from; not ready until it answers", "consumer", consName(cons), "err", err)
}

// infoFailed is told of a failed info request of the periodic watch: with
// every export slot busy the fetch loop would notice a lost leader only
// after the exports.
func (c *Consumer) infoFailed(cons jetstream.Consumer, info *jetstream.ConsumerInfo, err error) {
	if err == nil && !led(info.Cluster) {
		err = errNoLeader
	}
	if err != nil {
		c.lost(cons, "consumer info", err)
	}
}

var errNoLeader = errors.New("the consumer has no leader with a quorum")

// led reports whether a consumer's cluster info names a leader that has a
// quorum of its group online: a leader that lost its peers answers for a
// while before it steps down, and can do nothing. A single server reports
// no cluster.
func led(ci *jetstream.ClusterInfo) bool {
	if ci == nil {
		return true
	}
	if ci.Leader == "" {
		return false
	}
	online := 1
	for _, p := range ci.Replicas {
		if p != nil && !p.Offline {
			online++
		}
	}
	return online > (len(ci.Replicas)+1)/2
}

func consName(cons jetstream.Consumer) string {
	if info := cons.CachedInfo(); info != nil {
		return info.Name
	}
	return ""
}
