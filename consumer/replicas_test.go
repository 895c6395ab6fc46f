package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/internal/otlptest"
	"github.com/spanferry/spanferry/mapping"
)

// runOn runs a consumer with cfg on js until the test ends and returns it
// once it is bound, with the receiver it exports to.
func runOn(t *testing.T, js jetstream.JetStream, cfg consumer.Config) (*consumer.Consumer, *otlptest.Receiver) {
	t.Helper()
	recv := otlptest.StartT(t)
	m, err := mapping.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := consumer.New(js, m, otlpExporter(t, recv), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !c.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("consumer not bound after 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c, recv
}

func testConfig() consumer.Config {
	return consumer.Config{
		Stream: "WORKFLOW_RESULTS", Subjects: []string{"workflows.results.>"}, Durable: "spanferry",
		CreateStream: true, DLQSubject: "workflows.dlq", DLQStream: "WORKFLOW_DLQ",
		BatchSize: 10, BatchWait: 20 * time.Millisecond, AckWait: 5 * time.Second, Concurrency: 2,
	}
}

func replicasOf(t *testing.T, js jetstream.JetStream, stream, cons string) int {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	if cons == "" {
		return st.CachedInfo().Config.Replicas
	}
	c, err := st.Consumer(ctx, cons)
	if err != nil {
		t.Fatalf("consumer %s: %v", cons, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The count the consumer runs with: its raft group's size.
	if info.Cluster != nil {
		if n := len(info.Cluster.Replicas) + 1; n != info.Config.Replicas {
			t.Errorf("consumer %s: config says %d replicas, its group has %d servers", cons, info.Config.Replicas, n)
		}
	}
	return info.Config.Replicas
}

// TestCreatedStreamsAndConsumersTakeTheStreamsReplicas: on a 3-node
// cluster with an R3 results stream (as an operator creates it), the
// dead-letter stream and the durable the worker creates are R3 too.
func TestCreatedStreamsAndConsumersTakeTheStreamsReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a 3-node cluster")
	}
	cl := natstest.StartCluster(t, 3)
	ctx := context.Background()
	_, err := cl.JS.CreateStream(ctx, jetstream.StreamConfig{
		Name: "WORKFLOW_RESULTS", Subjects: []string{"workflows.results.>"}, Storage: jetstream.FileStorage, Replicas: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	runOn(t, cl.JS, testConfig())
	if got := replicasOf(t, cl.JS, "WORKFLOW_DLQ", ""); got != 3 {
		t.Errorf("dead-letter stream: %d replicas, want the results stream's 3", got)
	}
	if got := replicasOf(t, cl.JS, "WORKFLOW_RESULTS", "spanferry"); got != 3 {
		t.Errorf("durable: %d replicas, want the results stream's 3", got)
	}
}

// TestCreatedStreamReplicas: the results stream the worker creates has
// StreamReplicas replicas; on one server, 0 means 1.
func TestCreatedStreamReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a 3-node cluster")
	}
	cl := natstest.StartCluster(t, 3)
	cfg := testConfig()
	cfg.StreamReplicas = 3
	runOn(t, cl.JS, cfg)
	for _, s := range []struct{ stream, cons string }{{"WORKFLOW_RESULTS", ""}, {"WORKFLOW_DLQ", ""}, {"WORKFLOW_RESULTS", "spanferry"}} {
		if got := replicasOf(t, cl.JS, s.stream, s.cons); got != 3 {
			t.Errorf("%s %s: %d replicas, want 3", s.stream, s.cons, got)
		}
	}

	single := natstest.Start(t)
	runOn(t, single.JS, testConfig())
	if got := replicasOf(t, single.JS, "WORKFLOW_RESULTS", ""); got != 1 {
		t.Errorf("one server: %d replicas, want 1", got)
	}
}

func otlpExporter(t *testing.T, recv *otlptest.Receiver) *otlptrace.Exporter {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(recv.TracesURL()),
		otlptracehttp.WithHTTPClient(consumer.HTTPClient(5*time.Second)),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	return exp
}
