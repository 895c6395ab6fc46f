package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/internal/natsconn"
)

// headerPublished carries a message's publish time (Unix nanoseconds), so
// that whoever acknowledges it can tell publish→ack.
const headerPublished = "Bench-Published"

// broker is the embedded JetStream server of a bench run (FILE storage
// under the run's directory) and the bench's own connection to it.
type broker struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

func startBroker(dir string, log *slog.Logger) (*broker, error) {
	srv, err := natsconn.StartEmbedded(dir, "127.0.0.1", -1, log)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.Name("spanferry-bench"))
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, err
	}
	return &broker{srv: srv, nc: nc, js: js}, nil
}

func (b *broker) close() {
	b.nc.Close()
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
}

// stream is one stream of the bench: its name and the subject prefix its
// results are published under.
type stream struct {
	name, subject string
	// orgs, when set, are the results' organizations in turn (the
	// template's is acme): the tenants section's mixed batches.
	orgs []string
}

// createStream creates a stream as the worker would (FILE storage, a
// two-minute duplicate window), replacing one left from an earlier section.
func (b *broker) createStream(ctx context.Context, name string) (stream, error) {
	s := stream{name: name, subject: "bench." + name}
	if err := b.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return s, err
	}
	_, err := b.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{s.subject + ".>"}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute,
	})
	return s, err
}

func (b *broker) deleteStream(ctx context.Context, s stream) error {
	return b.js.DeleteStream(ctx, s.name)
}

// publisher publishes rendered results with Nats-Msg-Id = id, as backends
// do, asynchronously.
type publisher struct {
	b    *broker
	s    stream
	body *body
	next int
	buf  []byte
}

func (p *publisher) publish() error {
	id := p.s.name + "-" + strconv.Itoa(p.next)
	p.next++
	now := time.Now()
	msg := &nats.Msg{
		Subject: p.s.subject + ".results",
		Data:    p.body.render(make([]byte, 0, len(p.buf)), id, now),
		Header: nats.Header{
			jetstream.MsgIDHeader: []string{id},
			headerPublished:       []string{strconv.FormatInt(now.UnixNano(), 10)},
		},
	}
	if len(p.s.orgs) > 0 {
		msg.Data = bytes.Replace(msg.Data, []byte(`"organization":"acme"`), []byte(`"organization":"`+p.s.orgs[(p.next-1)%len(p.s.orgs)]+`"`), 1)
	}
	p.buf = msg.Data
	// A server busy writing a large backlog to disk can take a while to
	// acknowledge; the publisher waits for room rather than fail.
	_, err := p.b.js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute))
	return err
}

// wait waits until every publish is acknowledged and checks that the
// stream holds them all.
func (p *publisher) wait(ctx context.Context) error {
	select {
	case <-p.b.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	st, err := p.b.js.Stream(ctx, p.s.name)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs < uint64(p.next) {
		return fmt.Errorf("bench: stream %s holds %d messages, %d were published", p.s.name, info.State.Msgs, p.next)
	}
	return nil
}

// prefill publishes n results as fast as JetStream takes them.
func (b *broker) prefill(ctx context.Context, s stream, body *body, n int) (time.Duration, error) {
	p := &publisher{b: b, s: s, body: body}
	start := time.Now()
	for range n {
		if err := p.publish(); err != nil {
			return 0, err
		}
	}
	err := p.wait(ctx)
	return time.Since(start), err
}

// paced publishes rate results per second for d, each at its own moment
// (not in bursts), so that latency is measured under a steady load.
func (b *broker) paced(ctx context.Context, s stream, body *body, rate int, d time.Duration) (int, error) {
	p := &publisher{b: b, s: s, body: body}
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		if err := p.publish(); err != nil {
			return i, err
		}
	}
	return n, p.wait(ctx)
}
