// Package natstest runs a real JetStream server, in process, for tests.
package natstest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an embedded JetStream server on a free loopback port, with a
// connection to it.
type Server struct {
	*server.Server
	Conn *nats.Conn
	JS   jetstream.JetStream

	opts server.Options
}

// Start starts a server storing under a temporary directory and connects
// to it; both are shut down when the test ends. configure, when given,
// adjusts the server's options first (users, limits).
func Start(tb testing.TB, configure ...func(*server.Options)) *Server {
	tb.Helper()
	opts := server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(), NoSigs: true,
	}
	for _, f := range configure {
		f(&opts)
	}
	s := &Server{opts: opts}
	s.start(tb)
	// The port is fixed from now on, so that Restart comes back where
	// clients reconnect.
	s.opts.Port = s.Addr().(*net.TCPAddr).Port
	tb.Cleanup(func() { s.Server.Shutdown(); s.Server.WaitForShutdown() })

	copts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}
	if u := opts.Users; len(u) > 0 {
		copts = append(copts, nats.UserInfo(u[0].Username, u[0].Password))
	}
	nc, err := nats.Connect(s.ClientURL(), copts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	s.Conn, s.JS = nc, js
	return s
}

func (s *Server) start(tb testing.TB) {
	tb.Helper()
	opts := s.opts // the server keeps and modifies its options
	srv, err := server.NewServer(&opts)
	if err != nil {
		tb.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		tb.Fatal("natstest: server not ready after 10s")
	}
	s.Server = srv
}

// Stop shuts the server down, keeping its store; Restart brings it back.
func (s *Server) Stop() {
	s.Server.Shutdown()
	s.Server.WaitForShutdown()
}

// Restart starts the server again on the same port and store directory,
// as an operator's restart would. Call it after Stop, from the test's
// goroutine: it replaces s.Server.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.start(tb)
}

// StreamMsgs returns every message stored in the stream, in sequence order.
func (s *Server) StreamMsgs(tb testing.TB, stream string) []*jetstream.RawStreamMsg {
	tb.Helper()
	ctx := context.Background()
	st, err := s.JS.Stream(ctx, stream)
	if err != nil {
		tb.Fatalf("natstest: stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		tb.Fatalf("natstest: stream %s: %v", stream, err)
	}
	var msgs []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			tb.Fatalf("natstest: stream %s seq %d: %v", stream, seq, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// PublishAll publishes the n messages msg makes, asynchronously with up to
// 512 awaiting their PubAck, and returns once JetStream has stored them all.
func PublishAll(tb testing.TB, js jetstream.JetStream, n int, msg func(i int) *nats.Msg) {
	tb.Helper()
	var futures []jetstream.PubAckFuture
	for i := range n {
		f, err := js.PublishMsgAsync(msg(i))
		if err != nil {
			tb.Fatalf("natstest: publish %d of %d: %v", i, n, err)
		}
		futures = append(futures, f)
		if len(futures) == 512 || i == n-1 {
			for _, f := range futures {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					tb.Fatalf("natstest: publish: %v", err)
				}
			}
			futures = futures[:0]
		}
	}
}
