package consumer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/mapping"
)

// TestParkStreamCheckedAtBind checks that an existing park stream that
// could drop parked results (their originals are acknowledged: a loss),
// or whose subjects do not cover this durable consumer's park, stops the
// bind with an error naming WORKER_PARK_STREAM and the setting, and that
// safe ones are used.
func TestParkStreamCheckedAtBind(t *testing.T) {
	srv := natstest.Start(t)
	ctx := context.Background()
	if _, err := srv.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "WORKFLOW_RESULTS", Subjects: []string{"workflows.results.>"}}); err != nil {
		t.Fatal(err)
	}
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(srv.JS, m, nil, Config{
		Stream: "WORKFLOW_RESULTS", Durable: "spanferry", DLQSubject: "workflows.dlq", ParkStream: "PARK",
		BatchSize: 1, BatchWait: time.Millisecond, AckWait: time.Second, Concurrency: 1,
	}, WithTenants(NewTenants(TenantTable{}, true, nil)))
	if err != nil {
		t.Fatal(err)
	}
	wq := func(sc jetstream.StreamConfig) jetstream.StreamConfig {
		sc.Name = "PARK"
		if sc.Subjects == nil {
			sc.Subjects = []string{"spanferry.park.>"}
		}
		return sc
	}
	for _, tc := range []struct {
		name    string
		sc      jetstream.StreamConfig
		wantErr string // "" when the stream must be accepted
	}{
		{"work queue", wq(jetstream.StreamConfig{Retention: jetstream.WorkQueuePolicy}), ""},
		{"limits without limits", wq(jetstream.StreamConfig{}), ""},
		{"durable's subjects", wq(jetstream.StreamConfig{Subjects: []string{"other", "spanferry.park.spanferry.>"}}), ""},
		{"full wildcard", wq(jetstream.StreamConfig{Subjects: []string{"spanferry.*.spanferry.>"}}), ""},
		{"discard new", wq(jetstream.StreamConfig{MaxMsgs: 10, MaxBytes: 1 << 20, Discard: jetstream.DiscardNew}), ""},
		{"interest", wq(jetstream.StreamConfig{Retention: jetstream.InterestPolicy}), "Retention is interest"},
		{"max age", wq(jetstream.StreamConfig{MaxAge: time.Hour}), "MaxAge"},
		{"max msgs", wq(jetstream.StreamConfig{MaxMsgs: 1000}), "MaxMsgs or MaxBytes"},
		{"max bytes", wq(jetstream.StreamConfig{MaxBytes: 1 << 20}), "MaxMsgs or MaxBytes"},
		{"per subject", wq(jetstream.StreamConfig{MaxMsgsPerSubject: 5}), "MaxMsgsPerSubject"},
		{"other durable", wq(jetstream.StreamConfig{Subjects: []string{"spanferry.park.other.>"}}), "do not cover spanferry.park.spanferry.>"},
		{"one token", wq(jetstream.StreamConfig{Subjects: []string{"spanferry.park.spanferry.*"}}), "do not cover"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := srv.JS.CreateStream(ctx, tc.sc); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = srv.JS.DeleteStream(ctx, "PARK") }()
			err := c.bindPark(ctx)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("bindPark: %v, want the stream used", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("bindPark accepted a park stream with %s", tc.wantErr)
			case tc.wantErr != "" && (!strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "WORKER_PARK_STREAM") || !errors.Is(err, ErrInvalidConfig)):
				t.Errorf("bindPark: %v, want an invalid configuration naming WORKER_PARK_STREAM and %q", err, tc.wantErr)
			}
		})
	}
}

func TestSubjectCovers(t *testing.T) {
	const sub = "spanferry.park.d.>"
	for filter, want := range map[string]bool{
		">": true, "spanferry.>": true, "spanferry.park.>": true, "spanferry.park.d.>": true, "spanferry.*.d.>": true,
		"spanferry.park.d.*": false, "spanferry.park.d": false, "spanferry.park.e.>": false, "spanferry.park.*": false,
		"spanferry.park.d.t.>": false, "*": false, "spanferry.park.*.>": true,
	} {
		if got := subjectCovers(filter, sub); got != want {
			t.Errorf("subjectCovers(%q, %q) = %v, want %v", filter, sub, got, want)
		}
	}
}
