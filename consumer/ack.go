package consumer

import (
	"sync"

	"github.com/nats-io/nats.go"
)

// ackBody is what an ack publishes to a message's reply subject.
var ackBody = []byte("+ACK")

// recentAcks keeps the reply subjects of the latest acks, a bounded ring.
// An ack is a publish nobody confirms: sent while the consumer has no
// leader, it is lost, and the message would be redelivered after AckWait
// and exported twice. Sending the latest acks again once a leader answers
// saves that: the new leader holds the replicated pending state, and an
// ack of a message already acked is ignored.
type recentAcks struct {
	mu      sync.Mutex
	replies []string
	next    int
	full    bool
}

// record remembers the reply subject of an ack; size bounds the ring (at
// least what one worker holds at once).
func (r *recentAcks) record(reply string, size int) {
	if reply == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.replies == nil {
		r.replies = make([]string, size)
	}
	r.replies[r.next] = reply
	r.next++
	if r.next == len(r.replies) {
		r.next, r.full = 0, true
	}
}

// resend publishes an ack to every remembered reply subject and forgets
// them; it returns how many it sent.
func (r *recentAcks) resend(nc *nats.Conn) int {
	r.mu.Lock()
	replies := r.replies[:r.next]
	if r.full {
		replies = r.replies
	}
	r.replies, r.next, r.full = nil, 0, false
	r.mu.Unlock()
	n := 0
	for _, reply := range replies {
		if reply != "" && nc.Publish(reply, ackBody) == nil {
			n++
		}
	}
	return n
}

// ackSent remembers an ack that was sent, for resending after a leader
// change: the ring holds twice what the worker holds at once.
func (c *Consumer) ackSent(msg interface{ Reply() string }) {
	c.avail.acks.record(msg.Reply(), 2*c.cfg.BatchSize*c.cfg.Concurrency)
}
