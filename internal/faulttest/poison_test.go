package faulttest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/mapping"
)

// TestPoisonCatalogue checks the storm's expectations against the mapping
// alone, through the whole message path (no processes): every poison is
// refused, permanently, with its reason; every oddity maps and exports.
func TestPoisonCatalogue(t *testing.T) {
	h := newPathHarness(t, mapping.Limits{MaxBytes: stormMaxBytes})
	for _, p := range poisons {
		t.Run("poison/"+p.name, func(t *testing.T) {
			err, _ := h.run(t, p.body("poison-"+p.name), "")
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), p.reason) {
				t.Errorf("refused with %q, want it to contain %q", err, p.reason)
			}
		})
	}
	for _, o := range oddities {
		t.Run("oddity/"+o.name, func(t *testing.T) {
			id := "oddity-" + o.name
			err, spans := h.run(t, o.body(id), o.header["traceparent"])
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if len(spans) != o.spans {
				t.Errorf("%d spans, want %d", len(spans), o.spans)
			}
			if want := o.expect(id).traceID; spans[0].TraceID != want {
				t.Errorf("trace %s, want %s", spans[0].TraceID, want)
			}
		})
	}
}

func (o oddity) expect(id string) expect {
	e := expect{spans: o.spans, traceID: o.traceID}
	if e.traceID == "" {
		e.traceID = mapping.DeriveTraceID(id).String()
	}
	return e
}

// rejected are valid results that the storm's receiver refuses: with 400,
// or with a partial success rejecting a span.
var rejected = []poison{
	{name: "receiver-400", body: rejectable, reason: "rejected by the OTLP receiver (status 400"},
	{name: "receiver-partial-success", body: rejectable, reason: "rejected by the OTLP receiver (status 200, 1 spans rejected)"},
	// The answer's google.rpc.Status is over 127 bytes: its length is a
	// two-byte varint, which is not UTF-8.
	{name: "receiver-400-long-message", body: rejectable, reason: "rejected by the OTLP receiver (status 400"},
}

// stormPoisons are all the kinds of bad message of the storm.
var stormPoisons = append(slices.Clone(poisons), rejected...)

func rejectable(id string) []byte { m, _ := goodResult(id, 1); return m.body }

// rejectMarked answers 400 to a request holding a receiver-400 result,
// a partial success to one holding a receiver-partial-success result.
func rejectMarked(req *coltracepb.ExportTraceServiceRequest, _ string) otlptest.Response {
	for _, id := range resultIDs(req) {
		switch {
		case strings.HasSuffix(id, "-receiver-400"):
			return otlptest.Response{Status: http.StatusBadRequest, ErrorMessage: "faulttest: refused"}
		case strings.HasSuffix(id, "-receiver-400-long-message"):
			return otlptest.Response{Status: http.StatusBadRequest, ErrorMessage: "faulttest:" + strings.Repeat(" refused", 25)}
		case strings.HasSuffix(id, "-receiver-partial-success"):
			return otlptest.Response{RejectedSpans: 1, ErrorMessage: "faulttest: one span refused"}
		}
	}
	return otlptest.Response{}
}

// TestPoisonStorm: a tenth of the messages are malformed in every way of
// the catalogue, shuffled among good results and strange-but-valid ones.
// Every good result is exported exactly once; every bad one is
// dead-lettered once, with its body, its headers and the reason; none
// blocks the stream.
func TestPoisonStorm(t *testing.T) {
	n := size(2000, 10_000)
	heavyEach := size(1, 4) // the megabyte-sized poisons, each
	s := startNATS(t)
	k := newSink(t)
	s.createStream()

	type badMsg struct {
		p    poison
		body []byte
	}
	var msgs []message
	want := map[string]expect{}
	bad := map[string]badMsg{}
	addBad := func(p poison) {
		id := fmt.Sprintf("bad-%05d-%s", len(bad), p.name)
		body := p.body(id)
		bad[id] = badMsg{p, body}
		msgs = append(msgs, message{id: id, body: body, header: map[string]string{"Faulttest-Kind": p.name}})
	}
	for _, p := range poisons {
		if p.heavy {
			for range heavyEach {
				addBad(p)
			}
		}
	}
	// Valid results the receiver refuses for good: the worker must split
	// their batch until they are alone and dead-letter only them.
	for range size(3, 10) {
		for _, p := range rejected {
			addBad(p)
		}
	}
	k.setAnswer(rejectMarked)
	for i := 0; len(bad) < n/10; i++ { // the light kinds fill a tenth
		if p := poisons[i%len(poisons)]; !p.heavy {
			addBad(p)
		}
	}
	for _, o := range oddities {
		id := "odd-" + o.name
		header := map[string]string{"Faulttest-Kind": o.name}
		for k, v := range o.header {
			header[k] = v
		}
		msgs = append(msgs, message{id: id, body: o.body(id), header: header})
		want[id] = o.expect(id)
	}
	good, goodWant := goodResults("good", n-len(msgs))
	msgs = append(msgs, good...)
	for id, e := range goodWant {
		want[id] = e
	}
	r := rand.New(rand.NewPCG(6, 6))
	r.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })

	w := startWorker(t, s, k, "w1", map[string]string{"WORKER_MAX_MESSAGE_BYTES": strconv.Itoa(stormMaxBytes)})
	start := time.Now()
	s.publish(msgs)
	published := time.Since(start)
	k.awaitAll(t, want, 5*time.Minute)
	await(t, 2*time.Minute, "every poison dead-lettered", func() bool { return s.streamMsgs(dlqStream) >= uint64(len(bad)) })
	info := s.awaitSettled(time.Minute)
	took := time.Since(start)
	c := k.check(t, want)
	if c.dups() != 0 {
		t.Errorf("%d good results exported twice, with no fault injected", c.dups())
	}

	// The dead letters: each poison once, as CONTRACT §6 describes.
	dls := s.deadLetters()
	seen := map[string]int{}
	reasons := map[string]string{}
	var unclean []string // reasons that are not clean text
	for _, dl := range dls {
		h := dl.Header
		id := h.Get(jetstream.MsgIDHeader)
		seen[id]++
		b, ok := bad[id]
		if !ok {
			t.Errorf("dead letter %q (%s) is not a poison: %s", id, h.Get("Faulttest-Kind"), h.Get(consumer.HeaderError))
			continue
		}
		reason := h.Get(consumer.HeaderError)
		reasons[b.p.name] = reason
		switch {
		case !strings.Contains(reason, b.p.reason):
			t.Errorf("%s (%s): reason %q, want it to contain %q", id, b.p.name, reason, b.p.reason)
		case strings.ContainsAny(reason, "\r\n") || len(reason) > 1024:
			t.Errorf("%s: reason is not one line of at most 1024 bytes: %q", id, reason)
		case !utf8.ValidString(reason) || strings.ContainsFunc(reason, unicode.IsControl):
			unclean = append(unclean, b.p.name)
		}
		if string(dl.Data) != string(b.body) {
			t.Errorf("%s (%s): dead letter body differs from the original (%d bytes, want %d)", id, b.p.name, len(dl.Data), len(b.body))
		}
		seq, err := strconv.ParseUint(h.Get(consumer.HeaderStreamSeq), 10, 64)
		if h.Get(consumer.HeaderStream) != streamName || h.Get(consumer.HeaderSubject) != subject || err != nil || seq == 0 ||
			h.Get(consumer.HeaderDeliveries) != "1" || h.Get("Faulttest-Kind") != b.p.name {
			t.Errorf("%s: dead-letter headers %v", id, h)
		}
	}
	for id := range bad {
		if seen[id] != 1 {
			t.Errorf("poison %s dead-lettered %d times, want 1", id, seen[id])
		}
	}
	m := w.metrics(t)
	if m[mDeadLettered] != float64(len(bad)) || m[mAcked] != float64(len(want)) || m[mRetried] != 0 {
		t.Errorf("metrics: %v dead-lettered, %v acked, %v retried; want %d, %d, 0", m[mDeadLettered], m[mAcked], m[mRetried], len(bad), len(want))
	}
	if info.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered", info.NumRedelivered)
	}
	kinds := map[string]int{}
	for _, b := range bad {
		kinds[b.p.name]++
	}
	report(t, "n=%d: %d poisons of %d kinds (%d of each megabyte-sized one), %d oddities, %d plain results; published in %s, all settled %s after the first publish; %d dead letters, each with its reason; good: %s",
		len(msgs), len(bad), len(kinds), heavyEach, len(oddities), len(good), published.Round(time.Millisecond), took.Round(time.Millisecond), len(dls), c)
	if testing.Verbose() {
		for _, p := range stormPoisons {
			t.Logf("%-30s %.200s", p.name, reasons[p.name])
		}
	}
	if len(unclean) > 0 {
		slices.Sort(unclean)
		t.Errorf("%d dead letters (%v) have a Spanferry-Error that is not clean text (invalid UTF-8 or control characters)",
			len(unclean), slices.Compact(unclean))
	}
}
