package consumer

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ackBody is what an ack publishes to a message's reply subject.
var ackBody = []byte("+ACK")

// recentAcks keeps the reply subjects of the latest acks, a bounded ring.
// An ack is a publish nobody confirms; sent while the consumer has no
// leader it is lost. Two things save the results held across a leader
// change from being exported twice: the acks are sent again once a leader
// answers (the new leader holds the pending state it was replicated, and
// ignores an ack of a message already acked), and for an AckWait after
// that, a message the new leader delivers anew although this worker
// exported it (its predecessor had not replicated the delivery yet) is
// acked, not exported again.
type recentAcks struct {
	mu      sync.Mutex
	replies []string
	next    int

	// After a leader change: the stream sequences the ring held, and
	// until when (unix nanoseconds) fetched messages are checked
	// against them. Outside that window the check costs one atomic load.
	until atomic.Int64
	seqs  map[stored]struct{}
}

// stored names a stored message: its stream sequence, and its stored time,
// so that a stream deleted and created again under the same name, whose
// sequences start again at 1, is not mistaken for the old one.
type stored struct {
	seq uint64
	ts  int64
}

// record remembers the reply subject of an ack; size bounds the ring (at
// least what one worker holds at once).
func (r *recentAcks) record(reply string, size int) {
	if reply == "" {
		return
	}
	r.mu.Lock()
	if r.replies == nil {
		r.replies = make([]string, size)
	}
	r.replies[r.next] = reply
	r.next = (r.next + 1) % len(r.replies)
	r.mu.Unlock()
}

// resend publishes an ack to every remembered reply subject, and watches
// for their messages coming back for window; it returns how many it sent.
func (r *recentAcks) resend(nc *nats.Conn, window time.Duration) int {
	r.mu.Lock()
	replies := make([]string, 0, len(r.replies))
	seqs := make(map[stored]struct{}, len(r.replies))
	for _, reply := range r.replies {
		if reply == "" {
			continue
		}
		replies = append(replies, reply)
		if m, ok := ackStored(reply); ok {
			seqs[m] = struct{}{}
		}
	}
	r.seqs = seqs
	r.until.Store(time.Now().Add(window).UnixNano())
	r.mu.Unlock()
	n := 0
	for _, reply := range replies {
		if nc.Publish(reply, ackBody) == nil {
			n++
		}
	}
	return n
}

// exported reports whether msg is one of the messages acked before the
// latest leader change, while that is recent.
func (r *recentAcks) exported(msg jetstream.Msg) bool {
	if time.Now().UnixNano() > r.until.Load() {
		return false
	}
	meta, err := msg.Metadata()
	if err != nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.seqs[stored{meta.Sequence.Stream, meta.Timestamp.UnixNano()}]
	return ok
}

// ackSent remembers an ack that was sent: the ring holds twice what the
// worker holds at once.
func (c *Consumer) ackSent(msg jetstream.Msg) {
	c.avail.acks.record(msg.Reply(), 2*c.cfg.BatchSize*c.cfg.Concurrency)
}

// dropExported acks, without exporting them again, the messages of a
// fetched batch that this worker had exported and acked when the leader
// changed, and returns the others.
func (c *Consumer) dropExported(msgs []jetstream.Msg) []jetstream.Msg {
	if time.Now().UnixNano() > c.avail.acks.until.Load() {
		return msgs
	}
	keep := msgs[:0]
	for _, m := range msgs {
		if c.avail.acks.exported(m) {
			_ = m.Ack()
			continue
		}
		keep = append(keep, m)
	}
	if n := len(msgs) - len(keep); n > 0 {
		c.log.Info("acked, not exported again: delivered anew by the new consumer leader", "not_exported_again", n)
	}
	return keep
}

// ackStored returns the stream sequence and stored time an ack reply
// subject carries: $JS.ACK.<stream>.<consumer>.<delivered>.<stream
// seq>.<consumer seq>.<time>.<pending> (9 tokens), or the same after
// $JS.ACK.<domain>.<account hash> (11 or more).
func ackStored(reply string) (stored, bool) {
	tokens := strings.Split(reply, ".")
	switch {
	case len(tokens) == 9:
	case len(tokens) >= 11:
		tokens = tokens[2:]
	default:
		return stored{}, false
	}
	seq, err1 := strconv.ParseUint(tokens[5], 10, 64)
	ts, err2 := strconv.ParseInt(tokens[7], 10, 64)
	return stored{seq, ts}, err1 == nil && err2 == nil
}
