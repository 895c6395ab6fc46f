package faulttest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"

	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/mapping"
)

// sink is an otlptest receiver (bodies discarded, so that 20,000 results
// cost little memory) that indexes what it accepts by result id: how many
// times each result was exported, by which worker, and a fingerprint of its
// spans' ids, so that a duplicate export can be checked to carry identical
// ids. It checks on the way that a result's spans arrive in one request,
// with one root.
type sink struct {
	recv *otlptest.Receiver

	mu       sync.Mutex
	answer   func(req *coltracepb.ExportTraceServiceRequest, worker string) otlptest.Response
	delay    time.Duration
	results  map[string]*delivery
	requests int // decoded requests, whatever the answer
	accepted int // requests accepted
	acceptAt []time.Time
	problems []string
	changed  chan struct{} // closed and replaced when results change
}

// delivery is what the receiver accepted of one result.
type delivery struct {
	exports int
	spans   int    // spans per export
	traceID string // of the root
	fp      string // fingerprint of every span's trace, span and parent ids and name
	workers []string
	first   time.Time
}

func newSink(t *testing.T) *sink {
	k := &sink{results: map[string]*delivery{}, changed: make(chan struct{})}
	k.recv = otlptest.StartT(t, otlptest.DiscardBodies())
	k.recv.SetBehavior(k.behave)
	return k
}

// setAnswer sets how the receiver answers (nil: accept everything).
func (k *sink) setAnswer(f func(req *coltracepb.ExportTraceServiceRequest, worker string) otlptest.Response) {
	k.mu.Lock()
	k.answer = f
	k.mu.Unlock()
}

// setDelay makes the receiver take d per request: a slow receiver keeps
// batches in flight.
func (k *sink) setDelay(d time.Duration) {
	k.mu.Lock()
	k.delay = d
	k.mu.Unlock()
}

func (k *sink) behave(req *coltracepb.ExportTraceServiceRequest) otlptest.Response {
	k.mu.Lock()
	answer, delay := k.answer, k.delay
	k.requests++
	k.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay) // a slow receiver, not a synchronisation
	}
	var resp otlptest.Response
	if answer != nil {
		resp = answer(req, exporterOf(req))
	}
	if resp.Accepted() {
		k.index(req)
	}
	return resp
}

// exporterOf returns the faulttest.worker resource attribute of req.
func exporterOf(req *coltracepb.ExportTraceServiceRequest) string {
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "faulttest.worker" {
				return kv.GetValue().GetStringValue()
			}
		}
	}
	return ""
}

// resultIDs returns the result ids of the spans of req, each once.
func resultIDs(req *coltracepb.ExportTraceServiceRequest) []string {
	seen := map[string]bool{}
	var ids []string
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				if id := resultIDOf(sp.GetAttributes()); !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
		}
	}
	return ids
}

func (k *sink) index(req *coltracepb.ExportTraceServiceRequest) {
	type group struct {
		keys    []string
		spans   map[string]bool // span ids
		parents []string        // parent span id of each span, "" for none
		traceID []string        // trace id of each span
	}
	groups := map[string]*group{}
	worker := exporterOf(req)
	var problems []string
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				id := resultIDOf(sp.GetAttributes())
				if id == "" {
					problems = append(problems, fmt.Sprintf("span %q without %s", sp.GetName(), mapping.AttrResultID))
					continue
				}
				g := groups[id]
				if g == nil {
					g = &group{spans: map[string]bool{}}
					groups[id] = g
				}
				tid, sid, pid := hex.EncodeToString(sp.GetTraceId()), hex.EncodeToString(sp.GetSpanId()), hex.EncodeToString(sp.GetParentSpanId())
				g.keys = append(g.keys, tid+"/"+sid+"/"+pid+"/"+sp.GetName())
				g.spans[sid] = true
				g.parents = append(g.parents, pid)
				g.traceID = append(g.traceID, tid)
			}
		}
	}
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.accepted++
	k.acceptAt = append(k.acceptAt, now)
	for id, g := range groups {
		// The root is the span whose parent is not among the result's
		// spans (none, or the remote parent of a traceparent).
		roots, traceID := 0, ""
		for i, p := range g.parents {
			if !g.spans[p] {
				roots++
				traceID = g.traceID[i]
			}
			if g.traceID[i] != g.traceID[0] {
				problems = append(problems, fmt.Sprintf("result %s: spans in traces %s and %s", id, g.traceID[0], g.traceID[i]))
			}
		}
		if roots != 1 {
			problems = append(problems, fmt.Sprintf("result %s: %d root spans in one request", id, roots))
		}
		slices.Sort(g.keys)
		sum := sha256.Sum256([]byte(strings.Join(g.keys, "\n")))
		fp := hex.EncodeToString(sum[:8])
		d := k.results[id]
		if d == nil {
			k.results[id] = &delivery{exports: 1, spans: len(g.keys), traceID: traceID, fp: fp, workers: []string{worker}, first: now}
			continue
		}
		d.exports++
		d.workers = append(d.workers, worker)
		if d.fp != fp || d.spans != len(g.keys) {
			problems = append(problems, fmt.Sprintf("result %s exported again with different spans (%d spans, fingerprint %s; first %d spans, %s)", id, len(g.keys), fp, d.spans, d.fp))
		}
	}
	k.problems = append(k.problems, problems...)
	close(k.changed)
	k.changed = make(chan struct{})
}

func resultIDOf(attrs []*commonpb.KeyValue) string {
	for _, kv := range attrs {
		if kv.GetKey() == string(mapping.AttrResultID) {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// distinct returns how many distinct results were accepted.
func (k *sink) distinct() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.results)
}

// counts returns the requests received and accepted so far.
func (k *sink) counts() (requests, accepted int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.requests, k.accepted
}

// acceptTimes returns when each accepted request arrived, in order.
func (k *sink) acceptTimes() []time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.acceptAt)
}

// exportsBy returns how many result exports each worker made.
func (k *sink) exportsBy() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]int{}
	for _, d := range k.results {
		for _, w := range d.workers {
			out[w]++
		}
	}
	return out
}

// get returns a copy of what was accepted of result id.
func (k *sink) get(id string) (delivery, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	d, ok := k.results[id]
	if !ok {
		return delivery{}, false
	}
	c := *d
	c.workers = slices.Clone(d.workers)
	return c, true
}

// awaitAll waits until every result of want was accepted.
func (k *sink) awaitAll(t *testing.T, want map[string]expect, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		k.mu.Lock()
		missing := 0
		for id := range want {
			if k.results[id] == nil {
				missing++
			}
		}
		changed := k.changed
		k.mu.Unlock()
		if missing == 0 {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("after %s, %d of %d results are still missing from the receiver", timeout, missing, len(want))
		}
		select {
		case <-changed:
		case <-time.After(min(left, time.Second)):
		}
	}
}

// expect is what a result must map to.
type expect struct {
	spans   int
	traceID string // "" when not checked
}

// tally is what the receiver accepted of a set of results.
type tally struct {
	results int // distinct results accepted
	exports int // exports of them, duplicates included
}

func (c tally) dups() int { return c.exports - c.results }

// ratio is the duplicate ratio: extra exports per result.
func (c tally) ratio() float64 {
	if c.results == 0 {
		return 0
	}
	return float64(c.dups()) / float64(c.results)
}

func (c tally) String() string {
	return fmt.Sprintf("%d results, %d exports, %d duplicates (ratio %.4f)", c.results, c.exports, c.dups(), c.ratio())
}

// check asserts that every result of want was accepted with the spans it
// maps to, that nothing else was, and that no contract problem was seen.
func (k *sink) check(t *testing.T, want map[string]expect) tally {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	var c tally
	var missing, wrong, extra []string
	for id, e := range want {
		d := k.results[id]
		if d == nil {
			missing = append(missing, id)
			continue
		}
		c.results++
		c.exports += d.exports
		if d.spans != e.spans || (e.traceID != "" && d.traceID != e.traceID) {
			wrong = append(wrong, fmt.Sprintf("%s: %d spans in trace %s, want %d in %s", id, d.spans, d.traceID, e.spans, e.traceID))
		}
	}
	for id := range k.results {
		if _, ok := want[id]; !ok {
			extra = append(extra, id)
		}
	}
	for _, l := range []struct {
		what string
		ids  []string
	}{{"missing from the receiver", missing}, {"exported wrong", wrong}, {"exported but never published", extra}, {"contract problems", k.problems}} {
		if len(l.ids) > 0 {
			slices.Sort(l.ids)
			t.Errorf("%d results %s, e.g. %v", len(l.ids), l.what, l.ids[:min(len(l.ids), 10)])
		}
	}
	return c
}
