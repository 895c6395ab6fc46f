package consumer

import (
	"testing"
	"time"
)

// TestAwaitRoutesDetachesOnlySlowRoutes: a batch's routes that settle
// close together keep its fetch slot to the end; a route still running
// long after the first settled is detached, and the slot freed, while it
// runs.
func TestAwaitRoutesDetachesOnlySlowRoutes(t *testing.T) {
	c := &Consumer{cfg: Config{Concurrency: 2}}
	p := policy{detachSlow: true}

	t.Run("together", func(t *testing.T) {
		a, b := &route{name: "a"}, &route{name: "b"}
		done := make(chan *route, 2)
		freed := false
		// As if the routes had run for a second: the second settling
		// just after the first is well within as long again.
		done <- a
		done <- b
		c.awaitRoutes(p, []*route{a, b}, done, func() { freed = true }, time.Now().Add(-time.Second))
		if freed {
			t.Error("routes that settled together were detached")
		}
		if a.detached.Load() != 0 || b.detached.Load() != 0 {
			t.Errorf("detached deliveries left: %d, %d", a.detached.Load(), b.detached.Load())
		}
	})

	t.Run("one slow", func(t *testing.T) {
		fast, slow := &route{name: "fast"}, &route{name: "slow"}
		done := make(chan *route, 2)
		freed := make(chan struct{})
		done <- fast
		go func() {
			<-freed // the slow route ends only once the slot is freed
			done <- slow
		}()
		c.awaitRoutes(p, []*route{fast, slow}, done, func() { close(freed) }, time.Now())
		if slow.detached.Load() != 0 || fast.detached.Load() != 0 {
			t.Errorf("detached deliveries left: fast %d, slow %d", fast.detached.Load(), slow.detached.Load())
		}
	})
}
