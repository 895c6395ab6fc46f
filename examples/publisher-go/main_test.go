package main

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/mapping"
)

// TestPublisherGo runs the README's Go publisher against a real JetStream
// server and checks that what it stored is a valid result, deduplicated
// by its id.
func TestPublisherGo(t *testing.T) {
	srv := natstest.Start(t)
	if _, err := srv.JS.CreateStream(t.Context(), jetstream.StreamConfig{Name: "WORKFLOW_RESULTS", Subjects: []string{"workflows.results.>"}}); err != nil {
		t.Fatal(err)
	}
	const id = "run_go_example"
	for range 2 { // the second publish is a duplicate JetStream drops
		if err := publish(t.Context(), srv.ClientURL(), id); err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.StreamMsgs(t, "WORKFLOW_RESULTS")
	if len(msgs) != 1 {
		t.Fatalf("stream holds %d messages, want 1", len(msgs))
	}
	if got := msgs[0].Header.Get(jetstream.MsgIDHeader); got != id {
		t.Errorf("Nats-Msg-Id %q, want %q", got, id)
	}
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.Decode(msgs[0].Data, mapping.Source{Stored: msgs[0].Time})
	if err != nil {
		t.Fatalf("the published result is invalid: %v\n%s", err, msgs[0].Data)
	}
	if d.Result.ID != id || d.Steps() != 2 || d.Result.Steps[1].Usage == nil {
		t.Errorf("published %s", msgs[0].Data)
	}
}
