package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/natstest"
)

// dlqEnv is a server with the two streams a worker creates, and no worker.
type dlqEnv struct {
	srv     *natstest.Server
	js      jetstream.JetStream
	letters *consumer.DeadLetters
}

func startDLQ(tb testing.TB) *dlqEnv {
	tb.Helper()
	srv := natstest.Start(tb)
	ctx := context.Background()
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "WORKFLOW_RESULTS", Subjects: []string{"workflows.results.>"}, Duplicates: 2 * time.Minute},
		{Name: "WORKFLOW_DLQ", Subjects: []string{"workflows.dlq"}},
	} {
		if _, err := srv.JS.CreateStream(ctx, cfg); err != nil {
			tb.Fatal(err)
		}
	}
	letters, err := consumer.OpenDeadLetters(ctx, srv.JS, "WORKFLOW_DLQ")
	if err != nil {
		tb.Fatal(err)
	}
	return &dlqEnv{srv: srv, js: srv.JS, letters: letters}
}

// letter is what a worker dead-letters: the original message plus the
// Spanferry-* headers of CONTRACT §6.
type letter struct {
	subject, id, reason, tenant string
	body                        []byte
	header                      nats.Header // extra original headers
}

func (e *dlqEnv) put(tb testing.TB, l letter) uint64 {
	tb.Helper()
	msg := deadLetterMsg(l)
	ack, err := e.js.PublishMsg(context.Background(), msg)
	if err != nil {
		tb.Fatal(err)
	}
	return ack.Sequence
}

func deadLetterMsg(l letter) *nats.Msg {
	msg := nats.NewMsg("workflows.dlq")
	msg.Data = l.body
	if msg.Data == nil {
		msg.Data = []byte(result(l.id, 1))
	}
	for k, v := range l.header {
		msg.Header[k] = v
	}
	if l.id != "" {
		msg.Header.Set(jetstream.MsgIDHeader, l.id)
	}
	msg.Header.Set(consumer.HeaderError, l.reason)
	msg.Header.Set(consumer.HeaderSubject, l.subject)
	msg.Header.Set(consumer.HeaderStream, "WORKFLOW_RESULTS")
	msg.Header.Set(consumer.HeaderStreamSeq, "7")
	msg.Header.Set(consumer.HeaderDeliveries, "3")
	if l.tenant != "" {
		msg.Header.Set(consumer.HeaderTenant, l.tenant)
	}
	return msg
}

func collect(tb testing.TB, d *consumer.DeadLetters, f consumer.Filter) []uint64 {
	tb.Helper()
	var seqs []uint64
	for l, err := range d.Letters(context.Background(), f) {
		if err != nil {
			tb.Fatalf("Letters(%+v): %v", f, err)
		}
		seqs = append(seqs, l.Seq)
	}
	return seqs
}

func TestDeadLettersFiltersAndGaps(t *testing.T) {
	e := startDLQ(t)
	ctx := context.Background()
	if got := collect(t, e.letters, consumer.Filter{}); len(got) != 0 {
		t.Fatalf("empty stream lists %v", got)
	}
	n := 0
	put := func(subject, reason string) uint64 {
		n++
		return e.put(t, letter{subject: subject, id: "r" + strconv.Itoa(n), reason: reason})
	}
	s1 := put("workflows.results.billing", "rejected by the OTLP receiver (status 400)")
	s2 := put("workflows.results.support", "steps[2]: more than the limit of 2 steps")
	s3 := put("workflows.results.eu.billing", "invalid JSON")
	s4 := put("workflows.results.support", "Rejected by the OTLP receiver (status 413)")
	s5 := put("workflows.results.support", "invalid JSON")

	tests := []struct {
		name string
		f    consumer.Filter
		want []uint64
	}{
		{"all", consumer.Filter{}, []uint64{s1, s2, s3, s4, s5}},
		{"grep reason ignores case", consumer.Filter{Grep: "REJECTED by"}, []uint64{s1, s4}},
		{"grep subject", consumer.Filter{Grep: "BILLING"}, []uint64{s1, s3}},
		{"subject exact", consumer.Filter{Subject: "workflows.results.support"}, []uint64{s2, s4, s5}},
		{"subject *", consumer.Filter{Subject: "workflows.results.*"}, []uint64{s1, s2, s4, s5}},
		{"subject >", consumer.Filter{Subject: "workflows.results.>"}, []uint64{s1, s2, s3, s4, s5}},
		{"subject * in the middle", consumer.Filter{Subject: "workflows.*.eu.billing"}, []uint64{s3}},
		{"subject no match", consumer.Filter{Subject: "workflows.results"}, nil},
		{"grep and subject", consumer.Filter{Grep: "json", Subject: "workflows.results.support"}, []uint64{s5}},
		{"limit keeps the oldest", consumer.Filter{Subject: "workflows.results.support", Limit: 2}, []uint64{s2, s4}},
	}
	for _, tt := range tests {
		if got := collect(t, e.letters, tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}

	// --since: the letters stored at or after a letter's own time.
	l3, err := e.letters.Get(ctx, s3)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, e.letters, consumer.Filter{Since: l3.Time}); !slices.Equal(got, []uint64{s3, s4, s5}) {
		t.Errorf("since letter 3's time: %v", got)
	}
	if got := collect(t, e.letters, consumer.Filter{Since: time.Now().Add(time.Hour)}); len(got) != 0 {
		t.Errorf("since the future: %v", got)
	}

	// Gaps left by deletions cost nothing and are skipped.
	for _, seq := range []uint64{s2, s4} {
		if err := e.letters.Delete(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.letters.Delete(ctx, s2); err != nil {
		t.Errorf("deleting a deleted letter: %v", err)
	}
	if got := collect(t, e.letters, consumer.Filter{}); !slices.Equal(got, []uint64{s1, s3, s5}) {
		t.Errorf("after deleting %d and %d: %v", s2, s4, got)
	}
	for _, seq := range []uint64{s2, 99} {
		if _, err := e.letters.Get(ctx, seq); !errors.Is(err, consumer.ErrUnknownLetter) {
			t.Errorf("Get(%d) = %v, want ErrUnknownLetter", seq, err)
		}
	}
	// The last letter deleted: the listing ends at the one before.
	if err := e.letters.Delete(ctx, s5); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, e.letters, consumer.Filter{}); !slices.Equal(got, []uint64{s1, s3}) {
		t.Errorf("after deleting the last: %v", got)
	}

	// No listing leaves its consumer behind.
	st, err := e.js.Stream(ctx, "WORKFLOW_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Errorf("%d consumers left on the dead-letter stream", info.State.Consumers)
	}
}

func TestDeadLetterFields(t *testing.T) {
	e := startDLQ(t)
	ctx := context.Background()
	withTenant := e.put(t, letter{subject: "workflows.results.a", id: "hdr-id", reason: "why", tenant: "acme",
		body: []byte(`{"id":"body-id","name":"wf"}`)})
	noBodyID := e.put(t, letter{subject: "workflows.results.a", id: "hdr-id-2", reason: "why", body: []byte(`{"name":`)})
	noID := e.put(t, letter{subject: "workflows.results.a", reason: "why", body: []byte("\x00\x01")})
	cut := e.put(t, letter{subject: "workflows.results.a", id: "hdr-id-3", reason: "invalid JSON", body: []byte(`{"id":"cut-1","name":`)})
	nested := e.put(t, letter{subject: "workflows.results.a", reason: "why", body: []byte(`{"name":"wf","steps":[{"id":"s1"}],"id":"top"}`)})
	badID := e.put(t, letter{subject: "workflows.results.a", reason: "why", body: []byte(`{"id":"two\nlines"}`)})

	l, err := e.letters.Get(ctx, withTenant)
	if err != nil {
		t.Fatal(err)
	}
	if l.ID != "body-id" || l.Tenant != "acme" || l.Reason != "why" || l.Subject != "workflows.results.a" || l.Deliveries != 3 {
		t.Errorf("letter %+v", l)
	}
	if time.Since(l.Time) > time.Minute {
		t.Errorf("stored time %v", l.Time)
	}
	for seq, want := range map[uint64]string{noBodyID: "hdr-id-2", noID: "", cut: "cut-1", nested: "top", badID: ""} {
		l, err := e.letters.Get(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if l.ID != want || l.Tenant != "" {
			t.Errorf("letter %d: id %q tenant %q, want id %q", seq, l.ID, l.Tenant, want)
		}
		wantID := want
		if want == "" {
			wantID = "-"
		}
		wantID += ".redrive." + strconv.FormatUint(seq, 10)
		if l.RedriveID() != wantID {
			t.Errorf("RedriveID = %q, want %q", l.RedriveID(), wantID)
		}
	}
}

func TestRedriveMsg(t *testing.T) {
	l := &consumer.Letter{
		Seq: 42, Subject: "workflows.results.eu", ID: "run-1", Data: []byte(`{"id":"run-1"}`),
		Header: nats.Header{
			"Traceparent":               {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
			"X-Origin":                  {"backend-a", "backend-b"},
			jetstream.MsgIDHeader:       {"run-1"},
			"Nats-Expected-Stream":      {"WORKFLOW_RESULTS"},
			consumer.HeaderError:        {"why"},
			consumer.HeaderSubject:      {"workflows.results.eu"},
			consumer.HeaderStream:       {"WORKFLOW_RESULTS"},
			consumer.HeaderStreamSeq:    {"9"},
			consumer.HeaderDeliveries:   {"1"},
			consumer.HeaderTenant:       {"acme"},
			consumer.HeaderRedrivenFrom: {"7"}, // a letter redriven before
			"spanferry-lowercase":       {"x"},
		},
	}
	msg, err := l.RedriveMsg()
	if err != nil {
		t.Fatal(err)
	}
	want := nats.Header{
		"Traceparent":               l.Header["Traceparent"],
		"X-Origin":                  {"backend-a", "backend-b"},
		jetstream.MsgIDHeader:       {"run-1.redrive.42"},
		consumer.HeaderRedrivenFrom: {"42"},
	}
	if msg.Subject != "workflows.results.eu" || string(msg.Data) != `{"id":"run-1"}` {
		t.Errorf("msg %s %q", msg.Subject, msg.Data)
	}
	if fmt.Sprint(msg.Header) != fmt.Sprint(want) {
		t.Errorf("headers\n%v\nwant\n%v", msg.Header, want)
	}
	if _, ok := l.Header[consumer.HeaderError]; !ok {
		t.Error("RedriveMsg modified the letter's headers")
	}

	l.Subject = ""
	if _, err := l.RedriveMsg(); !errors.Is(err, consumer.ErrNoSubject) {
		t.Errorf("no subject: %v", err)
	}
}

// TestRedriveOnceAfterACrash: a redrive interrupted between its publish and
// its delete leaves the letter; redriving it again publishes nothing twice.
func TestRedriveOnceAfterACrash(t *testing.T) {
	e := startDLQ(t)
	ctx := context.Background()
	seq := e.put(t, letter{subject: "workflows.results.test", id: "crash-1", reason: "rejected"})
	l, err := e.letters.Get(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	// The crash: the publish was stored, the delete never happened.
	msg, err := l.RedriveMsg()
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}

	r, err := e.letters.Redrive(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Duplicate || r.Stream != "WORKFLOW_RESULTS" || r.Seq != first.Sequence {
		t.Errorf("second redrive %+v, want a duplicate of seq %d", r, first.Sequence)
	}
	if got := e.srv.StreamMsgs(t, "WORKFLOW_RESULTS"); len(got) != 1 {
		t.Errorf("results stream holds %d messages, want 1", len(got))
	}
	if _, err := e.letters.Get(ctx, seq); !errors.Is(err, consumer.ErrUnknownLetter) {
		t.Errorf("letter still there after the redrive: %v", err)
	}
}

func TestRedriveWithoutAStream(t *testing.T) {
	e := startDLQ(t)
	ctx := context.Background()
	seq := e.put(t, letter{subject: "nobody.listens", id: "lost-1", reason: "why"})
	l, err := e.letters.Get(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.letters.Redrive(ctx, l); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("redrive to an uncaptured subject: %v", err)
	}
	if _, err := e.letters.Get(ctx, seq); err != nil {
		t.Errorf("the letter of a failed redrive was deleted: %v", err)
	}

	// A letter whose subject is the dead-letter stream's own is refused.
	loop := e.put(t, letter{subject: "workflows.dlq", id: "loop-1", reason: "why"})
	if l, err = e.letters.Get(ctx, loop); err != nil {
		t.Fatal(err)
	}
	if _, err := e.letters.Redrive(ctx, l); err == nil || !strings.Contains(err.Error(), "the dead-letter stream's own") {
		t.Errorf("redrive into the dead-letter stream: %v", err)
	}
	if got := collect(t, e.letters, consumer.Filter{}); !slices.Equal(got, []uint64{seq, loop}) {
		t.Errorf("letters after the refused redrives: %v", got)
	}
}

func TestPurgeAllKeepsLaterLetters(t *testing.T) {
	e := startDLQ(t)
	ctx := context.Background()
	for i := range 5 {
		e.put(t, letter{subject: "workflows.results.a", id: fmt.Sprint("p", i), reason: "why"})
	}
	if err := e.letters.Delete(ctx, 2); err != nil {
		t.Fatal(err)
	}
	n, err := e.letters.PurgeAll(ctx)
	if err != nil || n != 4 {
		t.Fatalf("PurgeAll = %d, %v; want 4", n, err)
	}
	after := e.put(t, letter{subject: "workflows.results.a", id: "late", reason: "why"})
	if got := collect(t, e.letters, consumer.Filter{}); !slices.Equal(got, []uint64{after}) {
		t.Errorf("after the purge: %v", got)
	}
	if n, err := e.letters.PurgeAll(ctx); err != nil || n != 1 {
		t.Errorf("second PurgeAll = %d, %v", n, err)
	}
	if n, err := e.letters.PurgeAll(ctx); err != nil || n != 0 {
		t.Errorf("PurgeAll of an empty stream = %d, %v", n, err)
	}
}

func TestOpenDeadLettersErrors(t *testing.T) {
	srv := natstest.Start(t)
	if _, err := consumer.OpenDeadLetters(context.Background(), srv.JS, "NOPE"); !errors.Is(err, consumer.ErrNoDeadLetterStream) {
		t.Errorf("missing stream: %v", err)
	}
	for _, f := range []consumer.Filter{
		{Subject: "a..b"}, {Subject: "a.>.b"}, {Subject: "a.b*"}, {Subject: "a b"}, {Limit: -1},
	} {
		if err := f.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", f)
		}
	}
}

// TestLettersStream: a listing holds a bounded window of letters, not the
// stream: when the first letter is seen, the server has delivered only the
// letters that fit in the window (8 MiB), not the stream's 24 MiB.
func TestLettersStream(t *testing.T) {
	e := startDLQ(t)
	const n, size = 3000, 8 << 10
	publishLetters(t, e.js, n, size)
	ctx := context.Background()
	st, err := e.js.Stream(ctx, "WORKFLOW_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	var seen uint64
	for l, err := range e.letters.Letters(ctx, consumer.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		seen++
		if l.Seq != seen {
			t.Fatalf("letter %d after %d", l.Seq, seen-1)
		}
		if seen == 1 {
			delivered := uint64(0)
			for info := range st.ListConsumers(ctx).Info() {
				delivered = max(delivered, info.Delivered.Stream)
			}
			t.Logf("at the first letter the server has delivered %d of %d letters (%d KiB of %d KiB)", delivered, n, delivered*size>>10, n*size>>10)
			if delivered == 0 || delivered*size > 10<<20 {
				t.Errorf("at the first letter the server has delivered %d of %d letters: more than the window", delivered, n)
			}
		}
	}
	if seen != n {
		t.Errorf("listed %d of %d", seen, n)
	}
}

// publishLetters stores n dead letters with bodies of about size bytes.
func publishLetters(tb testing.TB, js jetstream.JetStream, n, size int) {
	tb.Helper()
	pad := make([]byte, size)
	for i := range pad {
		pad[i] = 'x'
	}
	natstest.PublishAll(tb, js, n, func(i int) *nats.Msg {
		return deadLetterMsg(letter{subject: "workflows.results.bulk", id: fmt.Sprintf("bulk-%d", i), reason: "rejected by the OTLP receiver (status 400)",
			body: fmt.Appendf(nil, `{"id":"bulk-%d","name":"wf","metadata":{"pad":%q}}`, i, pad)})
	})
}

// BenchmarkListDeadLetters lists a stream of 100,000 dead letters of about
// 1 KiB each: the time per listing and, with -benchmem, what it allocates
// (the peak held is bounded by the window, whatever the stream's size).
func BenchmarkListDeadLetters(b *testing.B) {
	e := startDLQ(b)
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("DLQ_BENCH_N")); err == nil {
		n = v
	}
	publishLetters(b, e.js, n, 1000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		seen := 0
		for _, err := range e.letters.Letters(ctx, consumer.Filter{}) {
			if err != nil {
				b.Fatal(err)
			}
			seen++
		}
		if seen != n {
			b.Fatalf("listed %d of %d", seen, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "letters/s")
}

// TestLettersEndAtTheStart: letters stored while a listing runs (a redrive
// whose results fail again, with the worker running) are left for the next
// run, so that redrive --all ends.
func TestLettersEndAtTheStart(t *testing.T) {
	e := startDLQ(t)
	for i := range 3 {
		e.put(t, letter{subject: "workflows.results.a", id: fmt.Sprint("first-", i), reason: "why"})
	}
	var seen []uint64
	for l, err := range e.letters.Letters(context.Background(), consumer.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, l.Seq)
		e.put(t, letter{subject: "workflows.results.a", id: fmt.Sprint("again-", l.Seq), reason: "why"})
	}
	if !slices.Equal(seen, []uint64{1, 2, 3}) {
		t.Errorf("listed %v, want the 3 stored before the listing", seen)
	}
	if got := collect(t, e.letters, consumer.Filter{}); !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("next listing %v", got)
	}
}
