package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spanferry/spanferry/internal/tlstest"
)

func TestLoadRefusesSettingsThatCannotWork(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string // the variable the error must name
	}{
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "not-a-url"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://%zz"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https:///v1/traces"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "grpc://collector:4317"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": missing}, "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": garbage}, "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": missing}, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"},
		{map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": missing}, "OTEL_EXPORTER_OTLP_CLIENT_KEY"},
		{map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": missing, "OTEL_EXPORTER_OTLP_CLIENT_KEY": garbage}, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"},
		{map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": garbage, "OTEL_EXPORTER_OTLP_CLIENT_KEY": missing}, "OTEL_EXPORTER_OTLP_CLIENT_KEY"},
		{map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": garbage, "OTEL_EXPORTER_OTLP_CLIENT_KEY": garbage}, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_KEY"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": garbage}, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_CERTIFICATE": garbage}, "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{map[string]string{"WORKER_HTTP_ADDR": "8080"}, "WORKER_HTTP_ADDR"},
		{map[string]string{"WORKER_LOG_LEVEL": "verbose"}, "WORKER_LOG_LEVEL"},
		{map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "OTEL_EXPORTER_OTLP_COMPRESSION"},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "authorization"}, "OTEL_EXPORTER_OTLP_HEADERS"},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "x-ok=1,bad key=v"}, "OTEL_EXPORTER_OTLP_HEADERS"},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%zz"}, "OTEL_EXPORTER_OTLP_HEADERS"},
		{map[string]string{"WORKER_STREAM": "workflow.results"}, "WORKER_STREAM"},
		{map[string]string{"WORKER_DLQ_STREAM": "DLQ *"}, "WORKER_DLQ_STREAM"},
		{map[string]string{"WORKER_PARK_STREAM": "PARK.X"}, "WORKER_PARK_STREAM"},
		{map[string]string{"WORKER_DURABLE": "a/b"}, "WORKER_DURABLE"},
		{map[string]string{"WORKER_SUBJECTS": "workflows..results"}, "WORKER_SUBJECTS"},
		{map[string]string{"WORKER_SUBJECTS": "workflows.>.results"}, "WORKER_SUBJECTS"},
		{map[string]string{"WORKER_SUBJECTS": "workflows.res*"}, "WORKER_SUBJECTS"},
		{map[string]string{"WORKER_SUBJECTS": "workflows. results"}, "WORKER_SUBJECTS"},
		{map[string]string{"WORKER_DLQ_SUBJECT": "workflows.dlq.*"}, "WORKER_DLQ_SUBJECT"},
		{map[string]string{"WORKER_DLQ_SUBJECT": "workflows.results.dlq"}, "WORKER_DLQ_SUBJECT"},
		{map[string]string{"WORKER_SUBJECTS": "workflows.*", "WORKER_DLQ_SUBJECT": "workflows.dlq"}, "WORKER_DLQ_SUBJECT"},
		{map[string]string{"WORKER_MAX_MESSAGE_BYTES": "-1"}, "WORKER_MAX_MESSAGE_BYTES"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{map[string]string{"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "-2"}, "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"},
	} {
		var name []string
		for k, v := range tc.env {
			t.Setenv(k, v)
			name = append(name, k+"="+v)
		}
		_, err := Load()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", strings.Join(name, " "), err, tc.want)
		}
		for k := range tc.env {
			os.Unsetenv(k)
		}
	}
}

func TestLoadRefusesTLSSettingsForAnHTTPEndpoint(t *testing.T) {
	// A CA file that parses: the refusal is about the scheme, not the file.
	ca := tlstest.NewCA(t, "test CA").CertFile(t)
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", ca)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")
	if _, err := Load(); err != nil {
		t.Fatalf("https endpoint with a CA: %v", err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces")
	_, err := Load()
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || !strings.Contains(err.Error(), "https://") {
		t.Fatalf("http traces endpoint with a CA: err = %v, want one naming OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", err)
	}
}

func TestLoadAcceptsGoodEndpointsAndHeaders(t *testing.T) {
	for _, env := range []map[string]string{
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": " https://collector.example.com/otlp "},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "HTTP://[::1]:4318"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://api.vendor.example/v1/traces"},
		{"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20x, x-tenant = a ,api-key=k=v"},
		{"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip", "WORKER_HTTP_ADDR": "", "WORKER_LOG_LEVEL": "DEBUG"},
		{"WORKER_SUBJECTS": "a.*.c,a.b.>,x", "WORKER_DLQ_SUBJECT": "a.dlq", "WORKER_STREAM": "R-1_x"},
		{"WORKER_SUBJECTS": "workflows.results.*", "WORKER_DLQ_SUBJECT": "workflows.results.a.b"},
	} {
		for k, v := range env {
			t.Setenv(k, v)
		}
		if _, err := Load(); err != nil {
			t.Errorf("%v: %v", env, err)
		}
		for k := range env {
			os.Unsetenv(k)
		}
	}
}

func TestLoadErrorsQuoteNoSecret(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://user:url-secret@collector")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318/v1/traces?api_key=query-secret")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization:Bearer header-secret")
	_, err := Load()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	for _, secret := range []string{"url-secret", "header-secret", "query-secret"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks %q: %v", secret, err)
		}
	}
}

func TestSubjectMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, subject string
		want             bool
	}{
		{"a.>", "a.b", true}, {"a.>", "a", false}, {"a.>", "a.b.c", true},
		{"a.*", "a.b", true}, {"a.*", "a.b.c", false}, {"a.b", "a.b", true},
		{"a.b", "a.c", false}, {"a.b", "a.b.c", false}, {">", "x", true}, {"*.b", "a.b", true},
	} {
		if got := subjectMatches(tc.pattern, tc.subject); got != tc.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tc.pattern, tc.subject, got, tc.want)
		}
	}
}
