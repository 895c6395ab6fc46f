// Package natsconn connects the worker to NATS and runs the embedded
// JetStream server used when no NATS_URL is configured.
//
// Every URL it logs or puts in an error has its userinfo redacted, and no
// password, token, seed or creds content ever reaches a log or an error.
package natsconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/internal/redact"
	"github.com/spanferry/spanferry/internal/tlserr"
)

// Reconnect pacing. A worker must outlive server restarts, so it never stops
// trying; the jitter spreads the replicas' reconnects after a restart.
const (
	reconnectWait      = time.Second
	reconnectJitter    = time.Second
	reconnectJitterTLS = 2 * time.Second
	// A half-open TCP connection is only noticed after MaxPingsOut missed
	// pings; nats.go's 2-minute default would keep /readyz green for minutes
	// after a server vanished.
	pingInterval = 20 * time.Second
)

// Connect connects to the NATS servers of cfg.NATSURL (comma separated) with
// the authentication and TLS settings of cfg, and returns a connection that
// reconnects forever, logging disconnects, reconnects and asynchronous errors
// on log.
//
// The first connection is not retried, so that a wrong URL, wrong credentials
// or a TLS mismatch fail at once with an error naming the cause and the
// variables to check. opts are applied after Connect's own options (a name,
// for instance); an option given there replaces Connect's handler of the same
// kind. ctx bounds the first connection only.
func Connect(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	urls := redact.SplitURLs(cfg.NATSURL)
	if len(urls) == 0 {
		return nil, errors.New("connect to nats: NATS_URL is empty")
	}
	target := redact.URLs(cfg.NATSURL)
	s := newScrubber(append(urlSecrets(urls), cfg.NATSPassword, cfg.NATSToken)...)

	own, auth, err := options(cfg, log, s)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target, s.scrubError(err))
	}
	log.Debug("connecting to nats", "url", target, "auth", auth, "tls", cfg.NATSTLSCA != "" || cfg.NATSTLSCert != "")

	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(strings.Join(urls, ","), append(own, opts...)...)
		done <- result{nc, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		// nats.Connect cannot be interrupted; close whatever it yields.
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("connect to %s: %w", target, context.Cause(ctx))
	}
	if r.err != nil {
		return nil, fmt.Errorf("connect to %s: %s%w", target, cause(r.err, cfg, urls), s.scrubError(r.err))
	}
	log.Info("connected to nats", "url", redact.URL(r.nc.ConnectedUrl()), "server", r.nc.ConnectedServerName(), "auth", auth)
	return r.nc, nil
}

// options builds Connect's own options and names the authentication methods
// in use (for the log, never their values).
func options(cfg config.Config, log *slog.Logger, s scrubber) ([]nats.Option, string, error) {
	opts := []nats.Option{
		nats.RetryOnFailedConnect(false),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectJitter(reconnectJitter, reconnectJitterTLS),
		nats.PingInterval(pingInterval),
	}
	opts = append(opts, handlers(log, s)...)

	var auth []string
	if cfg.NATSCreds != "" {
		if err := readable("NATS_CREDS", cfg.NATSCreds); err != nil {
			return nil, "", err
		}
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
		auth = append(auth, "creds")
	}
	if cfg.NATSNKeySeed != "" {
		if err := readable("NATS_NKEY_SEED", cfg.NATSNKeySeed); err != nil {
			return nil, "", err
		}
		opt, err := nats.NkeyOptionFromSeed(cfg.NATSNKeySeed)
		if err != nil {
			// nats.go's message names the problem (no seed found, not a
			// user seed) without quoting the file.
			return nil, "", fmt.Errorf("NATS_NKEY_SEED %s: %w", cfg.NATSNKeySeed, err)
		}
		opts = append(opts, opt)
		auth = append(auth, "nkey")
	}
	if cfg.NATSToken != "" {
		opts = append(opts, nats.Token(cfg.NATSToken))
		auth = append(auth, "token")
	}
	if cfg.NATSUser != "" || cfg.NATSPassword != "" {
		opts = append(opts, nats.UserInfo(cfg.NATSUser, cfg.NATSPassword))
		auth = append(auth, "user/password")
	}
	if hasURLUserinfo(redact.SplitURLs(cfg.NATSURL)) {
		auth = append(auth, "url userinfo")
	}

	if cfg.NATSTLSCA != "" {
		if err := readable("NATS_TLS_CA", cfg.NATSTLSCA); err != nil {
			return nil, "", err
		}
		opts = append(opts, nats.RootCAs(cfg.NATSTLSCA))
	}
	if cfg.NATSTLSCert != "" || cfg.NATSTLSKey != "" {
		if cfg.NATSTLSCert == "" || cfg.NATSTLSKey == "" {
			return nil, "", errors.New("NATS_TLS_CERT and NATS_TLS_KEY must be set together")
		}
		if err := readable("NATS_TLS_CERT", cfg.NATSTLSCert); err != nil {
			return nil, "", err
		}
		if err := readable("NATS_TLS_KEY", cfg.NATSTLSKey); err != nil {
			return nil, "", err
		}
		opts = append(opts, nats.ClientCert(cfg.NATSTLSCert, cfg.NATSTLSKey))
	}

	if len(auth) == 0 {
		auth = []string{"none"}
	}
	return opts, strings.Join(auth, ","), nil
}

// readable checks that the file named by variable can be opened, so that a
// wrong path is reported with the variable's name rather than as a failure
// deep inside the first connection.
func readable(variable, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", variable, err)
	}
	return f.Close()
}

func hasURLUserinfo(urls []string) bool {
	for _, u := range urls {
		if _, _, ok := redact.Userinfo(u); ok {
			return true
		}
	}
	return false
}

// handlers log the connection's life: lost and regained connections at warn
// and info, because an operator watches those; asynchronous errors at warn.
// Every error is scrubbed, since some quote URLs.
func handlers(log *slog.Logger, s scrubber) []nats.Option {
	errAttr := func(err error) slog.Attr {
		return slog.String("error", s.scrub(err.Error()))
	}
	return []nats.Option{
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // ClosedHandler reports it
			}
			attrs := []any{}
			if err != nil {
				attrs = append(attrs, errAttr(err))
			}
			log.Warn("nats disconnected; reconnecting", attrs...)
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Debug("nats reconnect attempt failed", errAttr(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", redact.URL(nc.ConnectedUrl()), "server", nc.ConnectedServerName())
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); err != nil {
				log.Warn("nats connection closed", errAttr(err))
				return
			}
			log.Debug("nats connection closed")
		}),
		nats.LameDuckModeHandler(func(nc *nats.Conn) {
			log.Info("nats server entering lame duck mode; will reconnect elsewhere", "server", nc.ConnectedServerName())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{errAttr(err)}
			if sub != nil {
				attrs = append(attrs, slog.String("subject", sub.Subject))
			}
			log.Warn("nats asynchronous error", attrs...)
		}),
	}
}

// cause explains a failed first connection in the user's terms: what failed
// and which variables to check. It returns "" when it has nothing to add to
// err, else a prefix ending in ": ".
func cause(err error, cfg config.Config, urls []string) string {
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired),
		errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrAccountAuthExpired):
		return "authorization failed (" + authHint(cfg, urls) + "): "
	case errors.Is(err, nats.ErrSecureConnRequired):
		return "the server requires TLS (use a tls:// URL or set NATS_TLS_CA): "
	case errors.Is(err, nats.ErrSecureConnWanted):
		return "TLS is configured but the server does not offer it (check NATS_URL and NATS_TLS_*): "
	case isTLSError(err):
		return "TLS failed (check NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY and the host name in NATS_URL): "
	case errors.Is(err, nats.ErrNoServers):
		return "no server reachable (is it running, and is NATS_URL right?): "
	}
	return ""
}

func isTLSError(err error) bool { return errors.Is(err, nats.ErrTLS) || tlserr.Is(err) }

// authHint names the credentials in use, so that the operator knows which
// ones the server refused.
func authHint(cfg config.Config, urls []string) string {
	var used []string
	if cfg.NATSCreds != "" {
		used = append(used, "NATS_CREDS")
	}
	if cfg.NATSNKeySeed != "" {
		used = append(used, "NATS_NKEY_SEED")
	}
	if cfg.NATSToken != "" {
		used = append(used, "NATS_TOKEN")
	}
	if cfg.NATSUser != "" || cfg.NATSPassword != "" {
		used = append(used, "NATS_USER/NATS_PASSWORD")
	}
	if hasURLUserinfo(urls) {
		used = append(used, "the userinfo of NATS_URL")
	}
	if len(used) == 0 {
		return "the server requires credentials: set NATS_CREDS, NATS_NKEY_SEED, NATS_TOKEN or NATS_USER/NATS_PASSWORD"
	}
	return "check " + strings.Join(used, ", ")
}
