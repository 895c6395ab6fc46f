// Package natstest runs a real JetStream server, in process, for tests.
package natstest

import (
	"context"
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
}

// Start starts a server storing under a temporary directory and connects
// to it; both are shut down when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(), NoSigs: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		tb.Fatal("natstest: server not ready after 10s")
	}
	tb.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return &Server{Server: srv, Conn: nc, JS: js}
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
