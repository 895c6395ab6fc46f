package main

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// instrument wraps js so that the worker's fetches start the recorder's
// clock and its acknowledgements are counted, without touching the
// consumer package: the wrappers embed the real values and override only
// the calls on the way to Fetch and Ack.
func instrument(js jetstream.JetStream, rec *recorder) jetstream.JetStream {
	return instrumentedJS{JetStream: js, rec: rec}
}

type instrumentedJS struct {
	jetstream.JetStream
	rec *recorder
}

func (j instrumentedJS) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	s, err := j.JetStream.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return instrumentedStream{Stream: s, rec: j.rec}, nil
}

type instrumentedStream struct {
	jetstream.Stream
	rec *recorder
}

func (s instrumentedStream) Consumer(ctx context.Context, name string) (jetstream.Consumer, error) {
	c, err := s.Stream.Consumer(ctx, name)
	if err != nil {
		return nil, err
	}
	return instrumentedConsumer{Consumer: c, rec: s.rec}, nil
}

func (s instrumentedStream) CreateConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := s.Stream.CreateConsumer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return instrumentedConsumer{Consumer: c, rec: s.rec}, nil
}

type instrumentedConsumer struct {
	jetstream.Consumer
	rec *recorder
}

func (c instrumentedConsumer) Fetch(n int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	c.rec.begin()
	b, err := c.Consumer.Fetch(n, opts...)
	if err != nil {
		return nil, err
	}
	out := make(chan jetstream.Msg, n)
	go func() {
		defer close(out)
		for m := range b.Messages() {
			out <- instrumentedMsg{Msg: m, rec: c.rec}
		}
	}()
	return instrumentedBatch{MessageBatch: b, msgs: out}, nil
}

type instrumentedBatch struct {
	jetstream.MessageBatch
	msgs chan jetstream.Msg
}

func (b instrumentedBatch) Messages() <-chan jetstream.Msg { return b.msgs }

type instrumentedMsg struct {
	jetstream.Msg
	rec *recorder
}

func (m instrumentedMsg) Ack() error {
	err := m.Msg.Ack()
	if err == nil {
		m.rec.ack(m.Msg)
	}
	return err
}
