package wiring

import (
	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/redactfile"
	"github.com/spanferry/spanferry/mapping"
)

// ContentOptions returns the mapping options of the content controls
// (CONTRACT §9): WORKER_CAPTURE_CONTENT=false as a capture switch that
// always says no, and the rules of WORKER_REDACT_FILE.
//
// A per-tenant switch (a tenant's capture_content) is a later
// mapping.WithCaptureContent given to Mapper, which replaces this one: it
// should answer cfg.CaptureContent for the organizations it does not
// know.
func ContentOptions(cfg config.Config) ([]mapping.Option, error) {
	var opts []mapping.Option
	if !cfg.CaptureContent {
		opts = append(opts, mapping.WithCaptureContent(func(string) bool { return false }))
	}
	if cfg.RedactFile != "" {
		r, err := redactfile.Load(cfg.RedactFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, mapping.WithRedactor(r))
	}
	return opts, nil
}
