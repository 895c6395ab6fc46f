package main

import (
	"io"
	"log/slog"

	"github.com/spanferry/spanferry/internal/config"
)

// quietCommands print only their output when they succeed: their log lines
// ("connected to nats", ...) would be noise around it. Warnings and errors
// still reach stderr, and WORKER_LOG_LEVEL=debug shows everything.
var quietCommands = map[string]bool{"publish": true, "check": true, "dlq": true}

// newLogger returns the logger of the long-running commands (run, replay):
// WORKER_LOG_LEVEL, in the WORKER_LOG_FORMAT of w.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	return commandLogger(cfg, "run", w)
}

// commandLogger returns the logger of command cmd, writing to w.
func commandLogger(cfg config.Config, cmd string, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	if quietCommands[cmd] && level > slog.LevelDebug {
		level = max(level, slog.LevelWarn)
	}
	opts := &slog.HandlerOptions{Level: level}
	if logText(cfg.LogFormat, w) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// logText reports whether the log goes out as text: WORKER_LOG_FORMAT=text,
// or auto (the default) on a terminal, where a person reads it. Anywhere
// else (a file, a pipe, a container's log) it is JSON, for machines.
func logText(format string, w io.Writer) bool {
	switch format {
	case config.LogFormatText:
		return true
	case config.LogFormatJSON:
		return false
	default:
		return isTerminal(w)
	}
}
