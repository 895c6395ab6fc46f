package main

import (
	"testing"

	"github.com/spanferry/spanferry/examples/internal/publishtest"
)

// TestPublisherGo runs the README's Go publisher against a real JetStream
// server and checks that what it stored is a valid result, deduplicated
// by its id.
func TestPublisherGo(t *testing.T) {
	srv := publishtest.Start(t)
	const id = "run_go_example"
	for range 2 { // the second publish is a duplicate JetStream drops
		if err := publish(t.Context(), srv.ClientURL(), id); err != nil {
			t.Fatal(err)
		}
	}
	d := publishtest.Stored(t, srv, "workflows.results.support", id)
	if d.Steps() != 2 || d.Result.Steps[1].Usage == nil || d.Result.StartedAt == "" {
		t.Errorf("published %+v", d.Result)
	}
}
