package faulttest

import (
	"net/http"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/internal/otlptest"
)

// holder makes the receiver hold one worker's export requests unanswered
// until released, so that a test knows exactly which results that worker
// holds when it is stopped or killed. Held requests are answered 200 when
// released with accept, else 503 (their worker is gone: nothing of them
// must count as exported).
type holder struct {
	victim  string
	mu      sync.Mutex
	on      bool
	ids     map[string]bool
	reqs    int
	release chan struct{}
	once    sync.Once
	accept  bool
}

// newHolder returns a holder for the worker named victim; what it still
// holds when the test ends is answered 503.
func newHolder(t *testing.T, victim string) *holder {
	h := &holder{victim: victim, ids: map[string]bool{}, release: make(chan struct{})}
	t.Cleanup(func() { h.finish(false) })
	return h
}

// answer is the sink's answer function.
func (h *holder) answer(req *coltracepb.ExportTraceServiceRequest, worker string) otlptest.Response {
	h.mu.Lock()
	if worker != h.victim || !h.on {
		h.mu.Unlock()
		return otlptest.Response{}
	}
	for _, id := range resultIDs(req) {
		h.ids[id] = true
	}
	h.reqs++
	h.mu.Unlock()
	<-h.release
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.accept {
		return otlptest.Response{}
	}
	return otlptest.Response{Status: http.StatusServiceUnavailable}
}

func (h *holder) start() {
	h.mu.Lock()
	h.on = true
	h.mu.Unlock()
}

// held returns the number of requests held and the result ids in them.
func (h *holder) held() (reqs int, ids map[string]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids = make(map[string]bool, len(h.ids))
	for id := range h.ids {
		ids[id] = true
	}
	return h.reqs, ids
}

// finish answers every held request (and every later one of the victim)
// with 200 when accept, else 503. Only its first call counts.
func (h *holder) finish(accept bool) {
	h.once.Do(func() {
		h.mu.Lock()
		h.accept = accept
		h.mu.Unlock()
		close(h.release)
	})
}
