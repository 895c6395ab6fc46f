// Package publishtest is what the example publishers' tests share: a real
// JetStream server holding the stream a worker creates, and the checks of
// what a publisher stored there.
package publishtest

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/mapping"
)

// Stream is the stream a worker with its defaults creates.
const Stream = "WORKFLOW_RESULTS"

// Start starts an embedded JetStream server on a free port with Stream on
// workflows.results.>.
func Start(t *testing.T) *natstest.Server {
	t.Helper()
	srv := natstest.Start(t)
	if _, err := srv.JS.CreateStream(t.Context(), jetstream.StreamConfig{Name: Stream, Subjects: []string{"workflows.results.>"}}); err != nil {
		t.Fatal(err)
	}
	return srv
}

// Stored checks that the stream holds one message, on subject with
// Nats-Msg-Id = id, and that it is a valid workflow result with that id;
// it returns the result decoded.
func Stored(t *testing.T, srv *natstest.Server, subject, id string) *mapping.Decoded {
	t.Helper()
	msgs := srv.StreamMsgs(t, Stream)
	if len(msgs) != 1 {
		t.Fatalf("stream holds %d messages, want 1", len(msgs))
	}
	msg := msgs[0]
	if got := msg.Header.Get(jetstream.MsgIDHeader); got != id {
		t.Errorf("Nats-Msg-Id %q, want %q", got, id)
	}
	if msg.Subject != subject {
		t.Errorf("subject %q, want %q", msg.Subject, subject)
	}
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.Decode(msg.Data, mapping.Source{Stored: msg.Time})
	if err != nil {
		t.Fatalf("the published result is invalid: %v\n%s", err, msg.Data)
	}
	if d.Result.ID != id {
		t.Errorf("published id %q, want %q", d.Result.ID, id)
	}
	return d
}
