package consumer

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// replicas returns the replica count of the results stream. Every stream
// and consumer the worker creates beside it (the dead-letter stream, the
// durable, replay consumers) takes that count: on an R3 cluster a
// dead-letter stream or a consumer with one replica would make the worker
// depend on one server after all. Consumers must also name it: the server
// gives an ephemeral consumer that names none one replica.
func (c *Consumer) replicas(ctx context.Context) (int, error) {
	stream, err := c.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", c.cfg.Stream, err)
	}
	return streamReplicas(stream.CachedInfo()), nil
}

// streamReplicas is the replica count a stream's info reports, at least 1
// (a single server reports 0 or 1).
func streamReplicas(info *jetstream.StreamInfo) int {
	if info == nil {
		return 1
	}
	return max(1, info.Config.Replicas)
}
