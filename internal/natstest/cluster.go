package natstest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a JetStream cluster of embedded servers on loopback, with a
// connection to all of them.
type Cluster struct {
	Servers []*server.Server
	Conn    *nats.Conn
	JS      jetstream.JetStream

	opts []server.Options
}

// StartCluster starts n clustered JetStream servers on free loopback
// ports, each storing under a temporary directory, waits until the
// cluster has a meta leader, and connects to every server. Everything is
// shut down when the test ends.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(tb)
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	c := &Cluster{}
	for i := range n {
		opts := server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: tb.TempDir(), NoSigs: true,
			Cluster: server.ClusterOpts{Name: "natstest", Host: "127.0.0.1", Port: ports[i]},
			Routes:  routes,
		}
		c.opts = append(c.opts, opts)
		c.Servers = append(c.Servers, nil)
		c.start(tb, i)
	}
	tb.Cleanup(func() {
		for _, s := range c.Servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
	var urls []string
	for i, s := range c.Servers {
		if !s.ReadyForConnections(10 * time.Second) {
			tb.Fatal("natstest: cluster server not ready after 10s")
		}
		urls = append(urls, s.ClientURL())
		// The port is fixed from now on, so that Restart comes back
		// where clients reconnect.
		c.opts[i].Port = s.Addr().(*net.TCPAddr).Port
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	if c.JS, err = jetstream.New(nc); err != nil {
		tb.Fatal(err)
	}
	c.Conn = nc
	// JetStream answers once the meta group has elected its leader.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.JS.AccountInfo(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("natstest: no JetStream meta leader after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

func (c *Cluster) start(tb testing.TB, i int) {
	tb.Helper()
	opts := c.opts[i] // the server keeps and modifies its options
	srv, err := server.NewServer(&opts)
	if err != nil {
		tb.Fatal(err)
	}
	srv.Start()
	c.Servers[i] = srv
}

// Stop shuts server i down, keeping its store; Restart brings it back.
func (c *Cluster) Stop(i int) {
	c.Servers[i].Shutdown()
	c.Servers[i].WaitForShutdown()
}

// Restart starts server i again on its port and store, after Stop, from
// the test's goroutine: it replaces c.Servers[i].
func (c *Cluster) Restart(tb testing.TB, i int) {
	tb.Helper()
	c.start(tb, i)
	if !c.Servers[i].ReadyForConnections(10 * time.Second) {
		tb.Fatal("natstest: restarted server not ready after 10s")
	}
}

// URLs returns the client URLs of every server, comma separated, as
// NATS_URL lists them.
func (c *Cluster) URLs() string {
	var urls []string
	for _, s := range c.Servers {
		urls = append(urls, s.ClientURL())
	}
	return strings.Join(urls, ",")
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
