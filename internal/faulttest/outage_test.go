package faulttest

import (
	"net/http"
	"slices"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/internal/otlptest"
)

// TestReceiverOutage: with a backlog waiting, the receiver goes away
// (connection refused) for a quarter of the outage, then answers 503 with
// Retry-After for the rest, while more results are published. The
// worker must dead-letter nothing, keep its memory bounded, slow its
// export attempts to a few per second at most, and deliver everything once
// the receiver is back.
func TestReceiverOutage(t *testing.T) {
	n := size(4000, 20000)
	outage := size(6*time.Second, 30*time.Second)
	s := startNATS(t)
	k := newSink(t)
	s.createStream()
	msgs, want := goodResults("outage", n)
	s.publish(msgs[:n/2])

	w := startWorker(t, s, k, "w1", nil)
	baseline, err := w.memory()
	if err != nil {
		t.Fatal(err)
	}
	rss := sampleRSS(w.proc)
	await(t, 2*time.Minute, "the first results exported", func() bool { return k.distinct() >= 200 })

	// Phase 1: connection refused.
	if err := k.recv.Stop(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	m0 := w.metrics(t)
	s.publish(msgs[n/2:]) // the backlog grows during the outage
	// Read after the publishes: a request answered as the receiver
	// stopped may still be recorded just after Stop returned.
	_, accepted0 := k.counts()
	exportedBefore := k.distinct()
	holdFault(outage/4 - time.Since(down))
	m1 := w.metrics(t)

	// Phase 2: 503 with Retry-After.
	k.setAnswer(func(*coltracepb.ExportTraceServiceRequest, string) otlptest.Response {
		return otlptest.Response{Status: http.StatusServiceUnavailable, RetryAfter: "2"}
	})
	if err := k.recv.Restart(); err != nil {
		t.Fatal(err)
	}
	requests0, _ := k.counts()
	holdFault(outage - time.Since(down))
	m2 := w.metrics(t)
	requests1, accepted1 := k.counts()
	memOutage, err := w.memory()
	if err != nil {
		t.Fatal(err)
	}
	maxRSSOutage, samples := rss.finish()
	dlOutage := s.streamMsgs(dlqStream)

	// Recovery.
	k.setAnswer(nil)
	up := time.Now()
	await(t, 2*time.Minute, "the first export after the outage", func() bool {
		_, a := k.counts()
		return a > accepted1
	})
	firstAfter := time.Since(up)
	// Until every message has been delivered once (NumPending 0), the
	// worker always has work it need not wait for: a long gap between
	// accepted requests then is a stall, not a backoff.
	var pendingZero time.Time
	await(t, 5*time.Minute, "every result delivered", func() bool {
		if pendingZero.IsZero() {
			if ci, err := s.consumerInfo(); err == nil && ci.NumPending == 0 {
				pendingZero = time.Now()
			}
		}
		return k.distinct() >= n
	})
	drained := time.Since(up)
	stall := longestGap(k.acceptTimes(), up, pendingZero)
	s.awaitSettled(time.Minute)
	c := k.check(t, want)
	mEnd := w.metrics(t)
	memEnd, _ := w.memory()

	attempts := m2[mAttempts] - m0[mAttempts]
	attemptsRefused := m1[mAttempts] - m0[mAttempts]
	attempts503 := requests1 - requests0
	retried := m2[mRetried] - m0[mRetried]
	if accepted1 != accepted0 {
		t.Errorf("%d requests accepted during the outage, want 0", accepted1-accepted0)
	}
	// CONTRACT §3: a few attempts per second at most, not one per message.
	// The worker backs off 250ms doubling to 30s: some ten attempts in 30s.
	// The bound is loose (two replicas' worth at 3/s) for a noisy machine.
	if limit := 6 * outage.Seconds(); attempts > limit {
		t.Errorf("%v export attempts during a %s outage, want fewer than %v", attempts, outage, limit)
	}
	if attempts < 2 {
		t.Errorf("%v export attempts during the outage: the worker did not try", attempts)
	}
	if dlOutage != 0 || mEnd[mDeadLettered] != 0 || s.streamMsgs(dlqStream) != 0 {
		t.Errorf("dead letters during/after a receiver outage: %d stored during, metric %v", dlOutage, mEnd[mDeadLettered])
	}
	// Bounded: the worker holds at most concurrency × batch size results.
	// 256 MiB is far above what it needs (and what the machine can spare).
	if memOutage.HWM > 256<<20 {
		t.Errorf("peak RSS %s during the outage", mib(memOutage.HWM))
	}
	report(t, "n=%d (half published during the outage); outage %s (%s refused, then 503 Retry-After: 2); %d results exported before it",
		n, outage, outage/4, exportedBefore)
	report(t, "export attempts during the outage: %v (%.2f/s; %v while refused, %d reached the receiver as 503s), %v deliveries nak'd, %d dead letters",
		attempts, attempts/outage.Seconds(), attemptsRefused, attempts503, retried, dlOutage)
	report(t, "RSS: %s at start, max %s sampled during the outage (%d samples), VmHWM %s at its end, %s at the end (VmHWM %s); /metrics %s %s",
		mib(baseline.RSS), mib(maxRSSOutage), samples, mib(memOutage.HWM), mib(memEnd.RSS), mib(memEnd.HWM), mResident, mib(int64(mEnd[mResident])))
	report(t, "recovery: first export %s after the receiver came back, every message delivered once after %s, all %d exported after %s, longest pause between exports meanwhile %s; %s",
		firstAfter.Round(time.Millisecond), pendingZero.Sub(up).Round(time.Millisecond), n, drained.Round(time.Millisecond), stall.Round(time.Millisecond), c)
	// Once an export has succeeded, the receiver is back: the backlog must
	// flow at once, not after the backoff the outage had built up.
	if stall > 5*time.Second {
		t.Errorf("the worker paused %s between exports after the receiver had recovered, with messages waiting: "+
			"gate.wait must wake when an export succeeds (gate.ok)", stall.Round(time.Millisecond))
	}
}

// longestGap returns the longest time between consecutive accepted
// requests after from (starting at the first of them) and until until,
// counting the time from the last of them to until.
func longestGap(times []time.Time, from, until time.Time) time.Duration {
	slices.SortFunc(times, time.Time.Compare)
	var gap time.Duration
	var prev time.Time
	for _, at := range times {
		if at.Before(from) || at.After(until) {
			continue
		}
		if !prev.IsZero() {
			gap = max(gap, at.Sub(prev))
		}
		prev = at
	}
	if !prev.IsZero() {
		gap = max(gap, until.Sub(prev))
	}
	return gap
}
