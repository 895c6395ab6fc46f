package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spanferry/spanferry/internal/natstest"
	"github.com/spanferry/spanferry/internal/otlptest"
)

const (
	acmeSecret     = "acme-key-6d1f0c"
	platformSecret = "platform-key-a83b2e"
)

func writeTenants(t *testing.T, path, content string) {
	t.Helper()
	// Written aside and renamed, as a ConfigMap update is, so that the
	// worker never reads half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func tenantsYAML(acmeURL, globexURL string) string {
	return fmt.Sprintf(`tenants:
  acme:
    endpoint: %s
    headers:
      authorization: "Bearer ${env:ACME_API_KEY}"
  globex:
    endpoint: %s
`, acmeURL, globexURL)
}

func publishOrg(t *testing.T, js jetstream.JetStream, id, org string) {
	t.Helper()
	msg := nats.NewMsg("workflows.results.test")
	msg.Data = fmt.Appendf(nil, `{"id":%q,"name":"wf","organization":%q,"started_at":"2026-11-24T10:00:00Z"}`, id, org)
	msg.Header.Set(jetstream.MsgIDHeader, id)
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
}

var servingAddr = regexp.MustCompile(`"msg":"serving /metrics[^}]*"addr":"([^"]+)"`)

// TestTenantsBinary runs the worker binary with a tenants file: results go
// to their tenant's destination with its key; /readyz stays 200 while one
// tenant is backed off; SIGHUP applies a new file, and a bad one is refused
// with the reason while the old one stays in force; no secret is logged.
func TestTenantsBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the worker binary")
	}
	srv := natstest.Start(t)
	base, acme, acme2, globex := otlptest.StartT(t), otlptest.StartT(t), otlptest.StartT(t), otlptest.StartT(t)
	globex.SetBehavior(func(*coltracepb.ExportTraceServiceRequest) otlptest.Response {
		return otlptest.Response{Status: 503}
	})
	createStream(t, srv.JS)
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	writeTenants(t, path, tenantsYAML(acme.TracesURL(), globex.TracesURL()))
	p := startProcess(t,
		"NATS_URL="+srv.ClientURL(),
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+base.TracesURL(),
		"OTEL_EXPORTER_OTLP_HEADERS=authorization="+platformSecret,
		"ACME_API_KEY="+acmeSecret,
		"WORKER_TENANTS_FILE="+path,
		"WORKER_LOG_LEVEL=debug",
	)
	var addr string
	await(t, "the HTTP address", func() bool {
		m := servingAddr.FindStringSubmatch(p.stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	await(t, "ready", func() bool { code, _ := httpGet("http://" + addr + "/readyz"); return code == 200 })

	publishOrg(t, srv.JS, "acme-1", "acme")
	publishOrg(t, srv.JS, "globex-1", "globex")
	publishOrg(t, srv.JS, "other-1", "other")
	await(t, "acme's result at acme", func() bool { return len(roots(acme)) == 1 })
	await(t, "other's result at the worker's destination", func() bool { return len(roots(base)) == 1 })
	if got := acme.Requests()[0].Header.Get("Authorization"); got != "Bearer "+acmeSecret {
		t.Error("acme's request lacks acme's key")
	}
	await(t, "globex backed off", func() bool {
		_, metrics := httpGet("http://" + addr + "/metrics")
		return strings.Contains(metrics, `spanferry_tenant_backoff{tenant="globex"} 1`)
	})
	if code, body := httpGet("http://" + addr + "/readyz"); code != 200 {
		t.Errorf("/readyz = %d %q while only globex is backed off, want 200", code, body)
	}

	// A bad file: refused, the old configuration stays.
	writeTenants(t, path, "tenants:\n  acme:\n    endpoint: "+acme2.TracesURL()+"\n    header: {}\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	await(t, "the failed reload logged", func() bool {
		return strings.Contains(p.stderr.String(), "tenants reload failed; the configuration in force is kept")
	})
	if logs := p.stderr.String(); !strings.Contains(logs, path) || !strings.Contains(logs, `unknown key \"header\"`) {
		t.Errorf("the failed reload's line does not name the file and the key")
	}
	publishOrg(t, srv.JS, "acme-2", "acme")
	await(t, "acme-2 at acme, as before the bad reload", func() bool { return len(roots(acme)) == 2 })

	// A good file: acme moves; globex's parked result follows it to its
	// new destination once it is listed no more (default: the worker's).
	writeTenants(t, path, "tenants:\n  acme:\n    endpoint: "+acme2.TracesURL()+"\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	await(t, "the reload", func() bool { return strings.Contains(p.stderr.String(), `"msg":"tenants reloaded"`) })
	publishOrg(t, srv.JS, "acme-3", "acme")
	await(t, "acme-3 at acme's new endpoint", func() bool { return len(roots(acme2)) == 1 })
	if got := acme2.Requests()[0].Header.Get("Authorization"); got != "" {
		t.Error("the worker's header reached acme's endpoint")
	}
	await(t, "globex's parked result at the worker's destination", func() bool { return roots(base)["globex-1"] == 1 })
	if len(roots(globex)) != 0 {
		t.Error("globex accepted a result while answering 503")
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Errorf("worker exit: %v (want 0)", err)
	}
	for _, s := range []string{acmeSecret, platformSecret} {
		if strings.Contains(p.stderr.String(), s) {
			t.Errorf("the worker logged a secret")
		}
	}
}

// TestTenantsFileStopsStartUp checks that a bad tenants file stops the
// worker at start, naming the file and the cause.
func TestTenantsFileStopsStartUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the worker binary")
	}
	srv := natstest.Start(t)
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	writeTenants(t, path, "tenants:\n  acme:\n    headers:\n      authorization: ${env:ACME_UNSET_KEY}\n")
	p := startProcess(t, "NATS_URL="+srv.ClientURL(), "WORKER_TENANTS_FILE="+path)
	if err := p.wait(t, 30*time.Second); err == nil {
		t.Fatal("the worker started with a tenants file naming an unset variable")
	}
	logs := p.stderr.String()
	for _, want := range []string{path, "tenants.acme.headers.authorization", "ACME_UNSET_KEY is not set"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the start-up error does not say %q:\n%s", want, logs)
		}
	}
}
