package config

import (
	"strings"
	"testing"
)

func TestLogFormat(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.LogFormat != LogFormatAuto {
		t.Errorf("default WORKER_LOG_FORMAT = %q, want auto", c.LogFormat)
	}
	for _, v := range []string{"text", "json", "auto"} {
		t.Setenv("WORKER_LOG_FORMAT", v)
		if c, err := Load(); err != nil || c.LogFormat != v {
			t.Errorf("WORKER_LOG_FORMAT=%s: %q, %v", v, c.LogFormat, err)
		}
	}
	t.Setenv("WORKER_LOG_FORMAT", "logfmt")
	_, err = Load()
	if err == nil || !strings.Contains(err.Error(), `WORKER_LOG_FORMAT: "logfmt" is not auto, text or json`) {
		t.Errorf("WORKER_LOG_FORMAT=logfmt: err = %v, want one naming the variable and the choices", err)
	}
}
