package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/internal/otlptest"
)

// fleetRun is one `worker replay --name` process, run in a goroutine.
type fleetRun struct {
	out, errOut bytes.Buffer
	err         error
	done        chan struct{}
}

func startFleet(ctx context.Context, cfg config.Config, args ...string) *fleetRun {
	f := &fleetRun{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		f.err = replayCmd(ctx, cfg, append([]string{"--progress", "lines"}, args...), &f.out, &f.errOut, slog.New(slog.DiscardHandler))
	}()
	return f
}

func (f *fleetRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("a fleet replay did not end within 2 minutes")
	}
}

func replayConsumer(t *testing.T, js jetstream.JetStream, name string) (*jetstream.ConsumerInfo, error) {
	t.Helper()
	c, err := js.Consumer(context.Background(), "WORKFLOW_RESULTS", consumer.ReplayConsumerName(name))
	if err != nil {
		return nil, err
	}
	return c.Info(context.Background())
}

// TestFleetReplaySettlesTheRangeOnce: three processes with the same name
// and range share one replay consumer, and one of the fleet dies holding
// messages it never acknowledges. Every result of the range is exported
// (each once, but the dead one's after AckWait), none past it; each
// process exits 0 with the whole range's count; the consumer is gone at
// the end and the durable of run was never touched.
func TestFleetReplaySettlesTheRangeOnce(t *testing.T) {
	srv := natstest.Start(t)
	recv := otlptest.StartT(t)
	createStream(t, srv.JS)
	ids := publishResults(t, srv.JS, "f", 300) // seqs 1..300
	publishResults(t, srv.JS, "past", 20)      // 301..320: past --to-seq
	recv.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
		time.Sleep(5 * time.Millisecond) // a receiver slow enough for the fleet to share the work
		return otlptest.Response{}
	})

	cfg := testConfig(t, srv.ClientURL())
	cfg.BatchSize = 10
	cfg.AckWait = time.Second
	withReceiver(t, &cfg, recv)
	args := []string{"--name", "backfill", "--from-seq", "1", "--to-seq", "300"}
	first := startFleet(t.Context(), cfg, args...)
	var info *jetstream.ConsumerInfo
	await(t, "the replay consumer created", func() bool {
		var err error
		info, err = replayConsumer(t, srv.JS, "backfill")
		return err == nil
	})
	if info.Config.InactiveThreshold != consumer.DefaultReplayInactiveThreshold || info.Config.Durable == "" {
		t.Errorf("replay consumer: durable %q, inactive threshold %s", info.Config.Durable, info.Config.InactiveThreshold)
	}
	if got := info.Config.Metadata["spanferry.replay.end-seq"]; got != "300" {
		t.Errorf("end sequence recorded as %q, want 300", got)
	}
	// A member of the fleet that dies at once: it takes a batch and never
	// settles it.
	dead, err := srv.JS.Consumer(t.Context(), "WORKFLOW_RESULTS", consumer.ReplayConsumerName("backfill"))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := dead.Fetch(15, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for range batch.Messages() {
		held++
	}
	others := []*fleetRun{startFleet(t.Context(), cfg, args...), startFleet(t.Context(), cfg, args...)}
	fleet := append([]*fleetRun{first}, others...)
	for _, f := range fleet {
		f.wait(t)
	}

	exportedHere := 0
	for i, f := range fleet {
		if f.err != nil {
			t.Fatalf("process %d: %v\n%s", i, f.err, f.errOut.String())
		}
		if !strings.Contains(f.out.String(), `the range "backfill": 300 of 300 settled`) {
			t.Errorf("process %d summary %q, want the whole range's count", i, f.out.String())
		}
		var n int
		if _, err := fmt.Sscanf(f.out.String(), "replay: exported %d", &n); err != nil {
			t.Errorf("process %d summary %q: %v", i, f.out.String(), err)
		}
		exportedHere += n
		t.Logf("process %d: %s", i, strings.TrimSpace(f.out.String()))
		if lines := regexp.MustCompile(`replay: \d+/300 results`).FindAllString(f.errOut.String(), -1); len(lines) == 0 {
			t.Errorf("process %d progress shows no whole-range count:\n%s", i, f.errOut.String())
		}
	}
	if held == 0 {
		t.Fatal("the dead member took nothing: the test did not test a death")
	}
	assertExactlyOnce(t, recv, ids)
	if exportedHere != len(ids) {
		t.Errorf("the processes exported %d results between them, want %d", exportedHere, len(ids))
	}
	if _, err := replayConsumer(t, srv.JS, "backfill"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the replay consumer after the end: %v, want it removed", err)
	}
	if _, err := srv.JS.Consumer(t.Context(), "WORKFLOW_RESULTS", "spanferry"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the durable of run: %v, want it never created by a replay", err)
	}
}

// TestFleetReplayRefusesAnotherRange: a replay of the same name with
// another range or subject is refused, naming both; the running one is
// untouched. When every process is gone the consumer expires by itself.
func TestFleetReplayRefusesAnotherRange(t *testing.T) {
	srv := natstest.Start(t)
	recv := otlptest.StartT(t)
	createStream(t, srv.JS)
	publishResults(t, srv.JS, "c", 30)
	recv.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
		return otlptest.Response{Status: 503} // never done: the replay stays
	})
	cfg := testConfig(t, srv.ClientURL())
	withReceiver(t, &cfg, recv)
	ctx, cancel := context.WithCancel(t.Context())
	running := startFleet(ctx, cfg, "--name", "r1", "--from-seq", "1", "--to-seq", "20", "--inactive-threshold", "2s")
	await(t, "the replay consumer created", func() bool { _, err := replayConsumer(t, srv.JS, "r1"); return err == nil })

	for _, args := range [][]string{
		{"--name", "r1", "--from-seq", "1", "--to-seq", "21"},
		{"--name", "r1", "--from-seq", "1", "--to-seq", "20", "--subject", "workflows.results.other"},
		{"--name", "r1", "--since", "2026-11-24T10:00:00Z"},
	} {
		_, _, err := replay(t, cfg, args...)
		if !errors.Is(err, consumer.ErrReplayConflict) || !strings.Contains(err.Error(), "from-seq=1 to-seq=20") {
			t.Errorf("replay %v: err = %v, want a conflict naming the running range", args, err)
		}
	}
	if _, _, err := replay(t, cfg, "--name", "bad name!", "--from-seq", "1"); err == nil || !strings.Contains(err.Error(), "replay name") {
		t.Errorf("a bad name: err = %v", err)
	}

	cancel()
	running.wait(t)
	if running.err == nil {
		t.Error("a replay stopped before its end exited 0")
	}
	// Every process is gone: the consumer removes itself.
	await(t, "the abandoned replay consumer expired", func() bool {
		_, err := replayConsumer(t, srv.JS, "r1")
		return errors.Is(err, jetstream.ErrConsumerNotFound)
	})
}

// TestFleetProgressCountsTheRangeAndItsOwnRate: a process that joins a
// fleet halfway shows the whole range, and a rate and ETA from what was
// settled since it joined.
func TestFleetProgressCountsTheRangeAndItsOwnRate(t *testing.T) {
	var buf bytes.Buffer
	r, err := progressRenderer("lines", &buf)
	if err != nil {
		t.Fatal(err)
	}
	r.draw(consumer.ReplayStats{Fleet: true, RangeTotal: 1000, RangeJoined: 500, RangeSettled: 600, Exported: 40, Elapsed: time.Second})
	want := "replay: 600/1000 results (60%), 100 results/s, ETA 4s for the fleet; 40 exported here\n"
	if buf.String() != want {
		t.Errorf("progress %q, want %q", buf.String(), want)
	}
}
