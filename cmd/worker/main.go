// Command worker turns finished workflow runs, published to NATS JetStream,
// into OpenTelemetry traces exported over OTLP/HTTP.
//
//	worker [run]                 consume, map, export, then acknowledge
//	worker replay --since T      re-export stored results (backfill)
//	worker publish FILE...       publish workflow results (JSON, array or lines)
//	worker check FILE...         validate results and print their span trees
//	worker dlq list|show|redrive|purge   inspect and redrive dead letters
//	worker healthcheck [--url]   probe a running worker (for containers)
//
// Configuration is read from the environment; `worker -h` lists it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spanferry/spanferry/internal/config"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const commands = `usage: worker [COMMAND] [ARGS]

Commands:
  run                   consume workflow results, export their traces, then acknowledge (default)
  replay (--since TIME | --from-seq N) [--until TIME] [--to-seq N] [--subject S]
                        re-export stored results with an ephemeral consumer (backfill); the durable is untouched
  replay --name NAME …  the same, shared by every process given the same name and range (a fleet backfill)
  publish [--subject S] FILE...
                        publish workflow results from JSON files (object, array or JSON lines; - is stdin)
  check [--show-content] FILE...
                        validate workflow results and print the span tree each maps to (with --show-content,
                        the input, output, metadata and errors as exported, after WORKER_REDACT_FILE's rules)
  dlq (list|show|redrive|purge) ...
                        inspect dead letters and send them back once their cause is fixed (worker dlq -h)
  healthcheck [--url U] exit 0 when a running worker answers 200 on U (default http://127.0.0.1:8080/readyz)

`

// realMain runs one command and returns the process exit code.
func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	if cmd == "help" || (len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") && cmd == "run") {
		fmt.Fprint(stdout, commands)
		_ = config.Usage(stdout)
		return 0
	}
	if cmd == "healthcheck" {
		return exitCode(stderr, healthcheckCmd(args, stderr))
	}

	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := commandLogger(cfg, cmd, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch cmd {
	case "run":
		err = runCmd(ctx, cfg, args, stdout, stderr, log)
	case "replay":
		err = replayCmd(ctx, cfg, args, stdout, stderr, log)
	case "check":
		err = checkCmd(cfg, args, stdin, stdout, stderr)
	case "publish":
		err = publishCmd(ctx, cfg, args, stdin, stdout, stderr, log)
	case "dlq":
		err = dlqCmd(ctx, cfg, args, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "worker: unknown command %q\n\n%s", cmd, commands)
		return 2
	}
	return exitCode(stderr, err)
}

func exitCode(stderr io.Writer, err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errInvalidInput):
		return 1 // each invalid result was reported already
	default:
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
}

// healthcheckCmd probes a running worker: distroless images have no shell
// or wget, so the binary is its own container health check.
func healthcheckCmd(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "URL that must answer 200")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get(*url)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("healthcheck: %s answered %s: %s", *url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
