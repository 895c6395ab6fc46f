// Command publisher-go publishes one workflow result to NATS JetStream, as
// a Go backend would when a run ends, with nats.go alone (no spanferry
// package): NATS_URL=nats://127.0.0.1:4222 go run ./examples/publisher-go
//
// The README shows publish; TestPublisherGo runs it against a real server.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := fmt.Sprintf("run_go_%d", time.Now().UnixNano())
	if err := publish(ctx, cmp.Or(os.Getenv("NATS_URL"), nats.DefaultURL), id); err != nil {
		log.Fatal(err)
	}
}

func publish(ctx context.Context, url, id string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Drain()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	end := time.Now().UTC()
	body, err := json.Marshal(map[string]any{
		"version": 1, "id": id, "name": "support-agent", "service": "backend-go",
		"started_at": end.Add(-1500 * time.Millisecond).Format(time.RFC3339Nano),
		"ended_at":   end.Format(time.RFC3339Nano),
		"steps": []map[string]any{
			{"id": "s1", "name": "retrieve", "kind": "retriever", "latency_ms": 120},
			{"id": "s2", "name": "answer", "kind": "llm", "model": "gpt-4o", "latency_ms": 900,
				"usage": map[string]int{"input_tokens": 812, "output_tokens": 64}},
		},
	})
	if err != nil {
		return err
	}
	// Nats-Msg-Id = id: JetStream drops the same result published twice.
	ack, err := js.Publish(ctx, "workflows.results.support", body, jetstream.WithMsgID(id))
	if err != nil {
		return err
	}
	fmt.Printf("published %s: stream %s, seq %d\n", id, ack.Stream, ack.Sequence)
	return nil
}
