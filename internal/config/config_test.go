package config

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Stream != "WORKFLOW_RESULTS" || c.Durable != "spanferry" || c.DLQSubject != "workflows.dlq" ||
		!slices.Equal(c.Subjects, []string{"workflows.results.>"}) || !c.CreateStream ||
		c.ShutdownTimeout != 30*time.Second || c.HTTPAddr != ":8080" || c.DataDir != "./data" {
		t.Fatalf("defaults differ from CONTRACT §4: %+v", c)
	}
	if c.Exporter != ExporterFile {
		t.Fatalf("exporter = %q, want file without an OTLP endpoint", c.Exporter)
	}
}

func TestLoadPicksOTLPWhenEndpointSet(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Exporter != ExporterOTLP {
		t.Fatalf("exporter = %q, want otlp", c.Exporter)
	}
}

func TestLoadNamesTheBadVariable(t *testing.T) {
	for name, value := range map[string]string{
		"WORKER_BATCH_SIZE":    "0",
		"WORKER_EXPORTER":      "kafka",
		"WORKER_BATCH_WAIT":    "soon",
		"WORKER_CREATE_STREAM": "perhaps",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			_, err := Load()
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want one naming %s", err, name)
			}
		})
	}
}

func TestNamesCoverContract(t *testing.T) {
	names := Names()
	for _, want := range []string{"NATS_URL", "NATS_CREDS", "NATS_NKEY_SEED", "NATS_TOKEN", "NATS_USER",
		"NATS_PASSWORD", "NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY", "WORKER_STREAM", "WORKER_SUBJECTS",
		"WORKER_DURABLE", "WORKER_CREATE_STREAM", "WORKER_DLQ_SUBJECT", "WORKER_BATCH_SIZE", "WORKER_BATCH_WAIT",
		"WORKER_ACK_WAIT", "WORKER_HTTP_ADDR", "WORKER_DATA_DIR", "WORKER_EXPORTER", "WORKER_SHUTDOWN_TIMEOUT",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
		"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_SERVICE_NAME",
		"OTEL_RESOURCE_ATTRIBUTES", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s missing from Names()", want)
		}
	}
}

func TestLogValueHidesSecrets(t *testing.T) {
	t.Setenv("NATS_PASSWORD", "hunter2-secret")
	t.Setenv("NATS_TOKEN", "tok-secret")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer header-secret")
	t.Setenv("NATS_URL", "nats://u:url-secret@h1:4222,nats://urltoken-secret@h2:4222")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	for _, secret := range []string{"hunter2", "tok-secret", "header-secret", "url-secret", "urltoken-secret"} {
		if strings.Contains(buf.String(), secret) {
			t.Fatalf("log line leaks %q: %s", secret, buf.String())
		}
	}
	if !strings.Contains(buf.String(), "nats://u:***@h1:4222") {
		t.Errorf("log line should show the redacted URL: %s", buf.String())
	}
}
