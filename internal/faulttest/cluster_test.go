package faulttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsCluster is a 3-node NATS cluster of nats-server processes on
// loopback (cluster routes, JetStream), and a natsServer value for the
// helpers that need only a connection: its url lists every node.
type natsCluster struct {
	t     *testing.T
	nodes []*proc
	names []string
	*natsServer
}

// startCluster starts n nats-server processes routed to each other and
// waits until JetStream has a meta leader.
func startCluster(t *testing.T, n int) *natsCluster {
	t.Helper()
	_, bin := binaries(t)
	dir := t.TempDir()
	clientPorts, routePorts := make([]int, n), make([]int, n)
	var routes, urls []string
	for i := range n {
		clientPorts[i], routePorts[i] = freePort(t), freePort(t)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	c := &natsCluster{t: t}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		conf := filepath.Join(dir, name+".conf")
		err := os.WriteFile(conf, fmt.Appendf(nil, `
server_name: %s
listen: 127.0.0.1:%d
max_payload: 4194304
jetstream {
  store_dir: %q
}
cluster {
  name: faulttest
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, name, clientPorts[i], filepath.Join(dir, name), routePorts[i], strings.Join(routes, ", ")), 0o644)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, startProc(t, "nats-"+name, bin, []string{"-c", conf}, []string{"PATH=" + os.Getenv("PATH")}))
		c.names = append(c.names, name)
	}
	s := &natsServer{t: t, url: strings.Join(urls, ",")}
	var err error
	// The nodes may not listen yet: the connection retries.
	s.nc, err = nats.Connect(s.url, nats.Name("faulttest"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.nc.Close)
	if s.js, err = jetstream.New(s.nc); err != nil {
		t.Fatal(err)
	}
	c.natsServer = s
	await(t, 60*time.Second, "a JetStream meta leader", func() bool {
		for _, p := range c.nodes {
			if p.exited() {
				t.Fatalf("%s exited: %s", p.name, p.tail(20))
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := s.js.AccountInfo(ctx)
		return err == nil
	})
	return c
}

// createStream creates the results stream with three replicas.
func (c *natsCluster) createStream() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: streamName, Subjects: []string{"workflows.results.>"}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute, Replicas: 3,
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// leaders returns the names of the servers leading the stream and the
// consumer cons ("" when it has none or cannot say).
func (c *natsCluster) leaders(cons string) (stream, consumer string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, streamName)
	if err != nil || st.CachedInfo().Cluster == nil {
		return "", ""
	}
	stream = st.CachedInfo().Cluster.Leader
	if cc, err := st.Consumer(ctx, cons); err == nil && cc.CachedInfo().Cluster != nil {
		consumer = cc.CachedInfo().Cluster.Leader
	}
	return stream, consumer
}

// separateLeaders makes the stream and cons led by different servers (a
// leader step-down moves one), so that killing one leader is not killing
// both, and returns them.
func (c *natsCluster) separateLeaders(cons string) (stream, consumer string) {
	c.t.Helper()
	await(c.t, time.Minute, "the stream and "+cons+" led by different servers", func() bool {
		stream, consumer = c.leaders(cons)
		if stream == "" || consumer == "" {
			return false
		}
		if stream != consumer {
			return true
		}
		_, _ = c.nc.Request(fmt.Sprintf("$JS.API.CONSUMER.LEADER.STEPDOWN.%s.%s", streamName, cons), nil, 5*time.Second)
		return false
	})
	return stream, consumer
}

// kill9 kills the node named name.
func (c *natsCluster) kill9(name string) {
	c.t.Helper()
	for i, n := range c.names {
		if n == name {
			c.nodes[i].kill9(c.t)
			return
		}
	}
	c.t.Fatalf("no node named %q", name)
}

// steadyPublisher publishes results one at a time at a steady rate,
// retrying each (same Nats-Msg-Id, so stored once) until JetStream stores
// it: a backend that keeps publishing through a leader election. It
// records when each publish was first attempted.
type steadyPublisher struct {
	mu        sync.Mutex
	attempted map[string]time.Time
	retries   int
	done      chan struct{}
}

func publishSteadily(t *testing.T, s *natsServer, msgs []message, every time.Duration) *steadyPublisher {
	p := &steadyPublisher{attempted: map[string]time.Time{}, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); <-p.done })
	go func() {
		defer close(p.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for _, m := range msgs {
			p.mu.Lock()
			p.attempted[m.id] = time.Now()
			p.mu.Unlock()
			for {
				nm := nats.NewMsg(subject)
				nm.Data = m.body
				nm.Header.Set(jetstream.MsgIDHeader, m.id)
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := s.js.PublishMsg(pctx, nm)
				pcancel()
				if err == nil || ctx.Err() != nil {
					break
				}
				p.mu.Lock()
				p.retries++
				p.mu.Unlock()
				time.Sleep(50 * time.Millisecond) // a backend's retry pause
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// publishedAfter returns the ids whose publish was first attempted at or
// after at.
func (p *steadyPublisher) publishedAfter(at time.Time) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for id, when := range p.attempted {
		if !when.Before(at) {
			ids = append(ids, id)
		}
	}
	return ids
}

// readiness samples a worker's /readyz every 25ms and records the first
// answer other than 200 and the first 200 after it.
type readiness struct {
	mu             sync.Mutex
	notReady, back time.Time
	stop           chan struct{}
	done           chan struct{}
}

func watchReadiness(w *worker) *readiness {
	r := &readiness{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			ok := w.ready()
			now := time.Now()
			r.mu.Lock()
			switch {
			case !ok && r.notReady.IsZero():
				r.notReady = now
			case ok && !r.notReady.IsZero() && r.back.IsZero():
				r.back = now
			}
			r.mu.Unlock()
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

func (r *readiness) finish() (notReady, back time.Time) {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.notReady, r.back
}

// firstExportOf returns the earliest first export of ids (zero if none).
func (k *sink) firstExportOf(ids []string) time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	var first time.Time
	for _, id := range ids {
		if d := k.results[id]; d != nil && (first.IsZero() || d.first.Before(first)) {
			first = d.first
		}
	}
	return first
}

// longestGapAfter returns the longest pause between accepted requests that
// ends after at (counting from at when the first one after at is later),
// and when it ended: how long exporting stalled after a fault.
func (k *sink) longestGapAfter(at time.Time) (gap time.Duration, resumed time.Time) {
	prev := at
	for _, ts := range k.acceptTimes() {
		if ts.Before(at) {
			continue
		}
		if d := ts.Sub(prev); d > gap {
			gap, resumed = d, ts
		}
		prev = ts
	}
	return gap, resumed
}

// elected returns when a surviving node logged that it became the leader
// of the stream (cons empty) or of cons, after at; zero if none did.
func (c *natsCluster) elected(cons string, at time.Time) time.Time {
	what := fmt.Sprintf("new stream leader for '$G > %s'", streamName)
	if cons != "" {
		what = fmt.Sprintf("new consumer leader for '$G > %s > %s'", streamName, cons)
	}
	var first time.Time
	for _, p := range c.nodes {
		for line := range strings.Lines(p.log()) {
			if !strings.Contains(line, what) {
				continue
			}
			// [pid] 2026/12/01 08:32:28.378298 [INF] …
			_, rest, ok := strings.Cut(line, "] ")
			if !ok || len(rest) < 26 {
				continue
			}
			ts, err := time.ParseInLocation("2006/01/02 15:04:05.000000", rest[:26], time.Local)
			if err == nil && ts.After(at) && (first.IsZero() || ts.Before(first)) {
				first = ts
			}
		}
	}
	return first
}

// logValue returns the values of a JSON log key across a log's lines.
func logValue(log, key string) string {
	var vals []string
	for line := range strings.Lines(log) {
		_, rest, ok := strings.Cut(line, `"`+key+`":`)
		if !ok {
			continue
		}
		end := strings.IndexAny(rest, ",}")
		if end < 0 {
			end = len(rest)
		}
		vals = append(vals, rest[:end])
	}
	if len(vals) == 0 {
		return "none"
	}
	return strings.Join(vals, ",")
}
