package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors of the dead-letter operations. They are kept here rather than in
// errors.go because only DeadLetters returns them.
var (
	// ErrNoDeadLetterStream is wrapped by OpenDeadLetters when the stream
	// does not exist.
	ErrNoDeadLetterStream = errors.New("dead-letter stream not found")
	// ErrUnknownLetter is wrapped by DeadLetters.Get for a sequence that
	// holds no dead letter (never stored, deleted or purged).
	ErrUnknownLetter = errors.New("no such dead letter")
	// ErrNoSubject is wrapped by Letter.RedriveMsg for a letter without a
	// Spanferry-Subject header: there is nowhere to send it back to.
	ErrNoSubject = errors.New("no " + HeaderSubject + " header: the original subject is unknown")
)

// Buffering of a listing: at most letterWindowBytes (or two of the
// server's largest messages) of letters are held client-side at once,
// whatever the stream's size.
const (
	letterWindowBytes = 8 << 20
	// letterIdle is how long a listing waits for the next letter before
	// asking the server whether any is left (one may be deleted meanwhile).
	letterIdle = 2 * time.Second
)

// Letter is one dead letter as stored in the dead-letter stream: the
// original body and headers, plus the Spanferry-* headers of CONTRACT §6.
type Letter struct {
	Seq        uint64      // its sequence in the dead-letter stream
	Time       time.Time   // when the dead-letter stream stored it
	Subject    string      // the original subject (Spanferry-Subject); "" when absent
	ID         string      // the body's "id", else Nats-Msg-Id, else ""
	Deliveries uint64      // Spanferry-Deliveries; 0 when absent
	Reason     string      // Spanferry-Error
	Tenant     string      // Spanferry-Tenant; "" for a result without a tenant
	Header     nats.Header // every header, as stored
	Data       []byte      // the original body
}

func newLetter(seq uint64, stored time.Time, h nats.Header, data []byte) *Letter {
	if h == nil {
		h = nats.Header{}
	}
	l := &Letter{
		Seq: seq, Time: stored, Header: h, Data: data,
		Subject: h.Get(HeaderSubject),
		Reason:  h.Get(HeaderError),
		Tenant:  h.Get(HeaderTenant),
		ID:      bodyID(data),
	}
	if l.ID == "" {
		l.ID = headerSafe(h.Get(jetstream.MsgIDHeader))
	}
	l.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDeliveries), 10, 64)
	return l
}

// bodyID returns the top-level "id" of a JSON object body when it is a
// string that can travel in a header, else "". It reads only up to the id,
// so a listing does not pay for decoding whole bodies, and a body cut short
// after its id (dead-lettered as invalid JSON) still shows it.
func bodyID(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		if key == "id" {
			var id string
			if dec.Decode(&id) != nil {
				return ""
			}
			return headerSafe(id)
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

// headerSafe returns s, or "" when s cannot be a header value: a line break
// would end the header block of the NATS message early.
func headerSafe(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		return ""
	}
	return s
}

// RedriveID returns the Nats-Msg-Id a redrive of l publishes with:
// "<id>.redrive.<seq>", with "-" for a letter without an id. It is stable,
// so that JetStream's duplicate window drops a second redrive of the same
// letter, and it differs from the original id, which the window would drop.
func (l *Letter) RedriveID() string {
	id := l.ID
	if id == "" {
		id = "-"
	}
	return id + ".redrive." + strconv.FormatUint(l.Seq, 10)
}

// RedriveMsg returns the message a redrive of l publishes: the original
// body and headers to the original subject, with every Spanferry-* header
// removed, Nats-Msg-Id set to RedriveID, Spanferry-Redriven-From set to the
// letter's sequence, and the original Nats-Expected-* headers removed (they
// were preconditions of the first publish, which no longer hold). It returns
// an error wrapping ErrNoSubject for a letter without Spanferry-Subject.
func (l *Letter) RedriveMsg() (*nats.Msg, error) {
	if l.Subject == "" {
		return nil, fmt.Errorf("dead letter %d: %w", l.Seq, ErrNoSubject)
	}
	msg := nats.NewMsg(l.Subject)
	msg.Data = l.Data
	for k, v := range l.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "spanferry-") || strings.HasPrefix(lk, "nats-expected-") || lk == strings.ToLower(jetstream.MsgIDHeader) {
			continue
		}
		msg.Header[k] = v
	}
	msg.Header.Set(jetstream.MsgIDHeader, l.RedriveID())
	msg.Header.Set(HeaderRedrivenFrom, strconv.FormatUint(l.Seq, 10))
	return msg, nil
}

// Filter chooses dead letters. Its zero value chooses every one.
type Filter struct {
	// Subject keeps the letters whose original subject matches: a subject
	// or a NATS wildcard (workflows.results.*, workflows.>).
	Subject string
	// Grep keeps the letters whose reason or original subject contains it,
	// ignoring case.
	Grep string
	// Since keeps the letters the dead-letter stream stored at or after it.
	Since time.Time
	// Limit keeps the Limit oldest of the letters chosen; 0 keeps all.
	Limit int
}

// Validate reports a filter that cannot match as the operator meant.
func (f Filter) Validate() error {
	if f.Limit < 0 {
		return errors.New("limit must not be negative")
	}
	if f.Subject == "" {
		return nil
	}
	tokens := strings.Split(f.Subject, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return fmt.Errorf("subject %q has an empty token", f.Subject)
		case strings.ContainsAny(t, " \t\r\n"):
			return fmt.Errorf("subject %q contains white space", f.Subject)
		case t == ">" && i != len(tokens)-1:
			return fmt.Errorf("subject %q: > must be the last token", f.Subject)
		case len(t) > 1 && strings.ContainsAny(t, "*>"):
			return fmt.Errorf("subject %q: a wildcard must be a whole token", f.Subject)
		}
	}
	return nil
}

// Match reports whether l passes the filter's subject, grep and since tests
// (Limit is applied by DeadLetters.Letters).
func (f Filter) Match(l *Letter) bool {
	if f.Subject != "" && !subjectMatches(f.Subject, l.Subject) {
		return false
	}
	if f.Grep != "" {
		grep := strings.ToLower(f.Grep)
		if !strings.Contains(strings.ToLower(l.Reason), grep) && !strings.Contains(strings.ToLower(l.Subject), grep) {
			return false
		}
	}
	return !l.Time.Before(f.Since)
}

// subjectMatches reports whether subject matches pattern, where * stands
// for one token and a final > for one or more.
func subjectMatches(pattern, subject string) bool {
	if subject == "" {
		return false
	}
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(pt) == len(st)
}

// DeadLetters reads and acts on the dead-letter stream: list, redrive and
// delete its letters. It never creates or modifies the stream itself.
type DeadLetters struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// OpenDeadLetters binds to the dead-letter stream named stream. A missing
// stream is an error wrapping ErrNoDeadLetterStream.
func OpenDeadLetters(ctx context.Context, js jetstream.JetStream, stream string) (*DeadLetters, error) {
	if stream == "" {
		return nil, fmt.Errorf("%w: no stream name given", ErrNoDeadLetterStream)
	}
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoDeadLetterStream, stream)
	}
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", stream, err)
	}
	return &DeadLetters{js: js, stream: s}, nil
}

// Name is the dead-letter stream's name.
func (d *DeadLetters) Name() string { return d.stream.CachedInfo().Config.Name }

// state returns the stream's current message count and last sequence.
func (d *DeadLetters) state(ctx context.Context) (jetstream.StreamState, error) {
	info, err := d.stream.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("dead-letter stream %s: %w", d.Name(), err)
	}
	return info.State, nil
}

// Count returns how many letters the stream holds now.
func (d *DeadLetters) Count(ctx context.Context) (uint64, error) {
	st, err := d.state(ctx)
	return st.Msgs, err
}

// Get returns the letter at seq, or an error wrapping ErrUnknownLetter when
// the stream holds none there.
func (d *DeadLetters) Get(ctx context.Context, seq uint64) (*Letter, error) {
	m, err := d.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: %d in %s (never stored, or deleted)", ErrUnknownLetter, seq, d.Name())
	}
	if err != nil {
		return nil, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return newLetter(m.Sequence, m.Time, m.Header, m.Data), nil
}

// Letters iterates over the letters f chooses, oldest first, up to the last
// one stored when the iteration starts (letters dead-lettered meanwhile,
// such as redriven results that fail again, are left for the next run).
//
// It reads the stream with an ordered consumer, so it streams: whatever the
// stream's size, at most a window of letters is held in memory, and the gaps
// that deletions and purges leave cost nothing (reading by sequence would
// cost a request per deleted sequence). The first error ends the iteration.
func (d *DeadLetters) Letters(ctx context.Context, f Filter) iter.Seq2[*Letter, error] {
	return func(yield func(*Letter, error) bool) {
		if err := f.Validate(); err != nil {
			yield(nil, err)
			return
		}
		st, err := d.state(ctx)
		if err != nil {
			yield(nil, err)
			return
		}
		if st.Msgs == 0 {
			return
		}
		cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
		if !f.Since.IsZero() {
			since := f.Since
			cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
		}
		cons, err := d.stream.OrderedConsumer(ctx, cfg)
		if err != nil {
			yield(nil, fmt.Errorf("dead-letter stream %s: ordered consumer: %w", d.Name(), err))
			return
		}
		// The library does not delete the server's consumer on Stop; an
		// operator's repeated listings should not leave them behind.
		defer func() {
			if info := cons.CachedInfo(); info != nil {
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				_ = d.stream.DeleteConsumer(dctx, info.Name)
				cancel()
			}
		}()
		if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 {
			return // nothing stored since f.Since
		}
		window := max(letterWindowBytes, 2*int(d.js.Conn().MaxPayload()))
		// A byte bound, not a message count: letters range from a few
		// bytes to the max payload. (PullMaxMessagesWithBytesLimit would
		// bound both, but its buffer overflows when the reader is slower
		// than the server: "slow consumer, messages dropped".)
		it, err := cons.Messages(jetstream.PullMaxBytes(window))
		if err != nil {
			yield(nil, fmt.Errorf("dead-letter stream %s: %w", d.Name(), err))
			return
		}
		defer it.Stop()

		kept := 0
		for {
			nctx, cancel := context.WithTimeout(ctx, letterIdle)
			msg, err := it.Next(jetstream.NextContext(nctx))
			cancel()
			if err != nil && ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
				// The letters left may have been deleted meanwhile.
				if info, ierr := cons.Info(ctx); ierr == nil && info.NumPending == 0 {
					return
				}
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					err = context.Cause(ctx)
				}
				yield(nil, fmt.Errorf("dead-letter stream %s: %w", d.Name(), err))
				return
			}
			meta, err := msg.Metadata()
			if err != nil {
				yield(nil, fmt.Errorf("dead-letter stream %s: %w", d.Name(), err))
				return
			}
			seq := meta.Sequence.Stream
			if seq > st.LastSeq {
				return
			}
			l := newLetter(seq, meta.Timestamp, msg.Headers(), msg.Data())
			if f.Match(l) {
				if !yield(l, nil) {
					return
				}
				kept++
				if f.Limit > 0 && kept == f.Limit {
					return
				}
			}
			if seq == st.LastSeq || meta.NumPending == 0 {
				return
			}
		}
	}
}

// Redriven says where a redriven letter went.
type Redriven struct {
	Stream string // the stream that stored the republished result
	Seq    uint64 // its sequence there
	// Duplicate is set when the stream's duplicate window dropped the
	// publish: an earlier redrive of the same letter (one interrupted
	// before the letter was deleted) was stored already.
	Duplicate bool
}

// Redrive publishes l's RedriveMsg and, only once JetStream has
// acknowledged that publish, deletes l from the dead-letter stream. A
// letter already deleted by someone else is not an error; a letter whose
// subject the dead-letter stream itself captures is refused. When the delete
// fails, the returned Redriven still says where the result went: redriving
// the letter again within the duplicate window publishes nothing twice.
func (d *DeadLetters) Redrive(ctx context.Context, l *Letter) (Redriven, error) {
	msg, err := l.RedriveMsg()
	if err != nil {
		return Redriven{}, err
	}
	for _, subject := range d.stream.CachedInfo().Config.Subjects {
		if subjectMatches(subject, l.Subject) {
			return Redriven{}, fmt.Errorf("dead letter %d: its subject %s is the dead-letter stream's own (%s): a redrive would dead-letter it again unread", l.Seq, l.Subject, subject)
		}
	}
	ack, err := d.js.PublishMsg(ctx, msg)
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		return Redriven{}, fmt.Errorf("dead letter %d: no stream captures subject %s: %w", l.Seq, l.Subject, err)
	}
	if err != nil {
		return Redriven{}, fmt.Errorf("dead letter %d: publish to %s: %w", l.Seq, l.Subject, err)
	}
	r := Redriven{Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}
	if err := d.Delete(ctx, l.Seq); err != nil {
		return r, fmt.Errorf("dead letter %d: published to %s (%s seq %d) but not deleted: %w", l.Seq, l.Subject, ack.Stream, ack.Sequence, err)
	}
	return r, nil
}

// Delete deletes the letter at seq. A letter already gone is not an error.
func (d *DeadLetters) Delete(ctx context.Context, seq uint64) error {
	err := d.stream.DeleteMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		// The server says why only in words; a letter that is gone is
		// what the caller wanted.
		if _, gerr := d.stream.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("delete dead letter %d from %s: %w", seq, d.Name(), err)
	}
	return nil
}

// PurgeAll deletes every letter stored so far and returns how many it
// deleted. Letters stored while it runs are kept: it purges up to the last
// sequence it saw, so nothing it did not count is deleted.
func (d *DeadLetters) PurgeAll(ctx context.Context) (uint64, error) {
	st, err := d.state(ctx)
	if err != nil || st.Msgs == 0 {
		return 0, err
	}
	if err := d.stream.Purge(ctx, jetstream.WithPurgeSequence(st.LastSeq+1)); err != nil {
		return 0, fmt.Errorf("purge %s: %w", d.Name(), err)
	}
	return st.Msgs, nil
}
