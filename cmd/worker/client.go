package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/natsconn"
)

// connectClient connects a short-lived command (publish, replay) to
// NATS_URL or, when it is unset, to the embedded server of a worker running
// on this machine, so that a second terminal needs no setup.
func connectClient(ctx context.Context, cfg config.Config, log *slog.Logger, command string) (*nats.Conn, error) {
	embedded := cfg.NATSURL == ""
	if embedded {
		cfg.NATSURL = "nats://" + cfg.EmbeddedAddr
	}
	nc, err := natsconn.Connect(ctx, cfg, log, nats.Name("spanferry-"+command))
	if err != nil && embedded {
		return nil, fmt.Errorf("%w (NATS_URL is unset, so %s expects a worker running on this machine with its embedded server; start one, or set NATS_URL)", err, command)
	}
	return nc, err
}
