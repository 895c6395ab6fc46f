package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/internal/config"
)

const (
	// publishWindow bounds the results awaiting their PubAck: enough to keep
	// a remote server busy instead of paying one round trip per result, and
	// no more memory than that.
	publishWindow = 256

	// publishAckTimeout bounds the wait for each PubAck, so that a server
	// that vanishes mid-publish fails the command instead of hanging it.
	publishAckTimeout = 30 * time.Second
)

// publishResult is one workflow result ready to publish.
type publishResult struct {
	id   string // its "id", sent as Nats-Msg-Id
	body []byte // the object, compacted
}

// publishInput is the results of one FILE argument.
type publishInput struct {
	name    string // as shown: the path, or "stdin" for "-"
	results []publishResult
}

// publishCmd runs `worker publish`.
//
// It reads every FILE (an object, an array of objects or JSON lines; "-" is
// stdin) before publishing anything, so that an invalid input publishes
// nothing. Each result is published compacted, with Nats-Msg-Id set to its
// "id" so that JetStream drops a result published twice, and counted once its
// PubAck says it is stored.
func publishCmd(ctx context.Context, cfg config.Config, args []string, stdin io.Reader, stdout, stderr io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	subject := fs.String("subject", defaultPublishSubject(cfg.Subjects), "subject to publish on")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: worker publish [--subject S] FILE... (or - for stdin)

Publishes workflow results to JetStream, each with Nats-Msg-Id = its "id".
A FILE holds one JSON object, a JSON array of objects, or JSON lines.
NATS_URL unset means the embedded server of a local worker (nats://`+cfg.EmbeddedAddr+`).

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("publish: no FILE given (use - for stdin)")
	}
	if err := checkPublishSubject(*subject); err != nil {
		return fmt.Errorf("publish: --subject %q: %w", *subject, err)
	}

	inputs := make([]publishInput, 0, fs.NArg())
	for _, name := range fs.Args() {
		in, err := readPublishInput(name, stdin)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		inputs = append(inputs, in)
	}

	nc, err := connectClient(ctx, cfg, log, "publish")
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(publishWindow),
		jetstream.WithPublishAsyncTimeout(publishAckTimeout))
	if err != nil {
		return fmt.Errorf("publish: jetstream: %w", err)
	}

	for _, in := range inputs {
		published, duplicates, err := publishAll(ctx, js, *subject, in)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		fmt.Fprintf(stdout, "published %d results from %s to %s (%d duplicates)\n", published, in.name, *subject, duplicates)
	}
	return nil
}

// defaultPublishSubject turns the first stream subject into a concrete one by
// replacing its wildcard tokens with "default" (workflows.results.> →
// workflows.results.default), which the stream then captures.
func defaultPublishSubject(subjects []string) string {
	if len(subjects) == 0 {
		return ""
	}
	tokens := strings.Split(subjects[0], ".")
	for i, t := range tokens {
		if t == "*" || t == ">" {
			tokens[i] = "default"
		}
	}
	return strings.Join(tokens, ".")
}

// checkPublishSubject rejects what a message cannot be published on.
func checkPublishSubject(subject string) error {
	if subject == "" {
		return errors.New("required (WORKER_SUBJECTS is empty)")
	}
	if strings.ContainsAny(subject, " \t\r\n") {
		return errors.New("contains white space")
	}
	for t := range strings.SplitSeq(subject, ".") {
		switch t {
		case "":
			return errors.New("has an empty token")
		case "*", ">":
			return errors.New("has a wildcard; publish needs a concrete subject")
		}
	}
	return nil
}

// readPublishInput reads and checks every result of one FILE argument.
func readPublishInput(name string, stdin io.Reader) (publishInput, error) {
	in := publishInput{name: name}
	if name == "-" {
		in.name = "stdin"
	}
	f, err := openInput(name, stdin)
	if err != nil {
		return in, err
	}
	raws, err := readResults(f)
	_ = f.Close()
	if err != nil {
		return in, fmt.Errorf("%s: %w", in.name, err)
	}
	in.results = make([]publishResult, 0, len(raws))
	for i, raw := range raws {
		r, err := newPublishResult(raw)
		if err != nil {
			return in, fmt.Errorf("%s[%d]: %w", in.name, i, err)
		}
		in.results = append(in.results, r)
	}
	return in, nil
}

// newPublishResult compacts one result and takes its id.
func newPublishResult(raw json.RawMessage) (publishResult, error) {
	if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || trimmed[0] != '{' {
		return publishResult{}, errors.New("not a JSON object")
	}
	var head struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return publishResult{}, fmt.Errorf("invalid JSON: %w", err)
	}
	var id string
	if len(head.ID) == 0 || json.Unmarshal(head.ID, &id) != nil || id == "" {
		return publishResult{}, errors.New(`no string "id" (it is sent as Nats-Msg-Id)`)
	}
	// A line break would end the header block of the NATS message early.
	if strings.ContainsAny(id, "\r\n") {
		return publishResult{}, errors.New(`"id" contains a line break`)
	}
	var body bytes.Buffer
	if err := json.Compact(&body, raw); err != nil {
		return publishResult{}, fmt.Errorf("invalid JSON: %w", err)
	}
	return publishResult{id: id, body: body.Bytes()}, nil
}

// publishAll publishes the results of in with at most publishWindow awaiting
// their PubAck, and returns once every one is acknowledged.
func publishAll(ctx context.Context, js jetstream.JetStream, subject string, in publishInput) (published, duplicates int, err error) {
	type inflight struct {
		index int
		ack   jetstream.PubAckFuture
	}
	var window []inflight
	await := func(p inflight) error {
		select {
		case ack := <-p.ack.Ok():
			published++
			if ack.Duplicate {
				duplicates++
			}
			return nil
		case err := <-p.ack.Err():
			return publishError(in.name, p.index, subject, err)
		case <-ctx.Done():
			return fmt.Errorf("%s[%d]: %w", in.name, p.index, context.Cause(ctx))
		}
	}

	for i, r := range in.results {
		if len(window) == publishWindow {
			if err := await(window[0]); err != nil {
				return published, duplicates, err
			}
			window = window[1:]
		}
		msg := &nats.Msg{Subject: subject, Data: r.body}
		ack, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(r.id))
		if err != nil {
			return published, duplicates, publishError(in.name, i, subject, err)
		}
		window = append(window, inflight{index: i, ack: ack})
	}
	for _, p := range window {
		if err := await(p); err != nil {
			return published, duplicates, err
		}
	}
	return published, duplicates, nil
}

// publishError names the result that failed, and explains the failure every
// first user meets: no stream captures the subject.
func publishError(name string, index int, subject string, err error) error {
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		return fmt.Errorf("no stream captures subject %s: is a worker with WORKER_CREATE_STREAM=true running, or is the stream created? (%s[%d]: %w)", subject, name, index, err)
	}
	return fmt.Errorf("%s[%d]: %w", name, index, err)
}
