package redact_test

import (
	"testing"

	"github.com/spanferry/spanferry/internal/redact"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://user:pass@host:4222":          "nats://user:***@host:4222",
		"nats://token@host:4222":              "nats://***@host:4222",
		"tls://u:p%40ss@host:4222/path?x=y@z": "tls://u:***@host:4222/path?x=y@z",
		"nats://host:4222":                    "nats://host:4222",
		"user:pw@host:4222":                   "user:***@host:4222",
		"nats://us er:p w@host":               "nats://us er:***@host",
		"nats://u:pa@ss@host":                 "nats://u:***@host",
		"":                                    "",
	} {
		if got := redact.URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
	if got, want := redact.URLs("nats://a:b@h1:4222, nats://h2:4222,,nats://t@h3"), "nats://a:***@h1:4222,nats://h2:4222,nats://***@h3"; got != want {
		t.Errorf("URLs = %q, want %q", got, want)
	}
}
