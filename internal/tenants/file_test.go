package tenants_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spanferry/spanferry/internal/tenants"
)

const secret = "s3cr3t-value-never-logged"

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadExpandsPlaceholders(t *testing.T) {
	keyFile := writeFile(t, "key", secret+"-file\n")
	t.Setenv("ACME_API_KEY", secret)
	path := writeFile(t, "tenants.yaml", `
default:
  action: dead-letter
tenants:
  acme:
    endpoint: https://otlp.acme.example/v1/traces
    headers:
      authorization: "Bearer ${env:ACME_API_KEY}"
      x-literal: "$${env:NOT_EXPANDED}"
    compression: gzip
    capture_content: false
  globex:
    headers:
      x-api-key: "${file:`+keyFile+`}"
  initech: {}
`)
	f, err := tenants.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.DefaultAction != tenants.ActionDeadLetter || f.Path != path {
		t.Errorf("default %q path %q", f.DefaultAction, f.Path)
	}
	acme := f.Tenants["acme"]
	if acme.Headers["authorization"] != "Bearer "+secret || acme.Headers["x-literal"] != "${env:NOT_EXPANDED}" {
		t.Errorf("acme headers not expanded as expected: %d headers", len(acme.Headers))
	}
	if acme.Endpoint != "https://otlp.acme.example/v1/traces" || acme.Compression != "gzip" || acme.CaptureContent == nil || *acme.CaptureContent {
		t.Errorf("acme = %+v", acme)
	}
	if got := f.Tenants["globex"].Headers["x-api-key"]; got != secret+"-file" {
		t.Error("globex's key: want the file's content without its trailing newline")
	}
	if _, ok := f.Tenants["initech"]; !ok || len(f.Names()) != 3 {
		t.Errorf("tenants %v", f.Names())
	}
	if strings.Contains(fmtLog(f), secret) {
		t.Error("LogValue shows a header value")
	}
}

func TestJSONIsAccepted(t *testing.T) {
	f, err := tenants.Parse([]byte(`{"tenants": {"acme": {"endpoint": "http://127.0.0.1:4318/v1/traces"}}}`), tenants.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if f.DefaultAction != tenants.ActionExport || f.Tenants["acme"].Endpoint == "" {
		t.Errorf("%+v", f)
	}
}

// TestErrorsNameTheFileAndTheKey covers what stops start-up: every error
// names the file and the key, and none shows a secret.
func TestErrorsNameTheFileAndTheKey(t *testing.T) {
	t.Setenv("SECRET_KEY", secret)
	t.Setenv("BROKEN", secret+"\r\nx-injected: 1")
	for name, c := range map[string]struct{ yaml, want string }{
		"unknown key":         {"tenants:\n  acme:\n    endpont: http://x/v1/traces\n", `line 3: unknown key "endpont"`},
		"unknown top key":     {"tenant:\n  acme: {}\n", `line 1: unknown key "tenant"`},
		"missing variable":    {"tenants:\n  acme:\n    headers:\n      authorization: ${env:NOPE_UNSET}\n", "tenants.acme.headers.authorization: ${env:NOPE_UNSET}: environment variable NOPE_UNSET is not set"},
		"missing file":        {"tenants:\n  acme:\n    headers:\n      k: ${file:/nonexistent/key}\n", "tenants.acme.headers.k: ${file:/nonexistent/key}: open /nonexistent/key"},
		"bad placeholder":     {"tenants:\n  acme:\n    headers:\n      k: ${vault:x}\n", "tenants.acme.headers.k: a ${…} is not a placeholder (value not shown"},
		"literal ${ in value": {"tenants:\n  acme:\n    headers:\n      k: \"tok${" + secret + "}\"\n", "tenants.acme.headers.k: a ${…} is not a placeholder"},
		"bad env name":        {"tenants:\n  acme:\n    headers:\n      k: \"${env:" + secret + "}\"\n", "tenants.acme.headers.k: a ${env:…} placeholder does not hold an environment variable name"},
		"url with user info":  {"tenants:\n  acme:\n    endpoint: \"https://u:" + secret + "@x/v1/traces\"\n", "tenants.acme.endpoint: has user info, a query or a fragment"},
		"url with query":      {"tenants:\n  acme:\n    endpoint: \"https://x/v1/traces?api_key=" + secret + "\"\n", "tenants.acme.endpoint: has user info, a query or a fragment"},
		"url with fragment":   {"tenants:\n  acme:\n    endpoint: \"https://x/v1/traces#" + secret + "\"\n", "tenants.acme.endpoint: has user info"},
		"query from env":      {"tenants:\n  acme:\n    endpoint: \"https://x/v1/traces?k=${env:SECRET_KEY}\"\n", "tenants.acme.endpoint: has user info"},
		"unclosed":            {"tenants:\n  acme:\n    headers:\n      k: ${env:X\n", "tenants.acme.headers.k: a ${ placeholder is not closed"},
		"bad url":             {"tenants:\n  acme:\n    endpoint: \"ftp://x?key=" + secret + "\"\n", "tenants.acme.endpoint: not an absolute http or https URL"},
		"relative url":        {"tenants:\n  acme:\n    endpoint: /v1/traces\n", "tenants.acme.endpoint: not an absolute"},
		"bad url from env":    {"tenants:\n  acme:\n    endpoint: ${env:SECRET_KEY}\n", "tenants.acme.endpoint: not an absolute"},
		"bad compression":     {"tenants:\n  acme:\n    compression: zstd\n", `tenants.acme.compression: "zstd" is not gzip or none`},
		"bad action":          {"default:\n  action: drop\n", `default.action: "drop" is not export or dead-letter`},
		"reserved name":       {"tenants:\n  default: {}\n", `tenants.default: the name "default" is reserved`},
		"bad header name":     {"tenants:\n  acme:\n    headers:\n      \"bad name\": x\n", "tenants.acme.headers.bad name: not a valid HTTP header name"},
		"header injection":    {"tenants:\n  acme:\n    headers:\n      k: ${env:BROKEN}\n", "tenants.acme.headers.k: the value holds a line break"},
		"wrong type":          {"tenants:\n  acme:\n    capture_content: \"Bearer " + secret + "\"\n", "line 3: cannot unmarshal !!str (value not shown) into bool"},
		"malformed":           {"tenants: [\n", "did not find expected"},
		"empty":               {"", "the file is empty"},
		"duplicate key":       {"tenants:\n  acme: {}\n  acme: {}\n", `mapping key "acme" already defined`},
		"two documents":       {"tenants: {}\n---\ntenants: {}\n", "more than one YAML document"},
		"headers not a map":   {"tenants:\n  acme:\n    headers: \"" + secret + "\"\n", "line 3: cannot unmarshal !!str (value not shown) into map"},
		"empty organization":  {"tenants:\n  \"\": {}\n", "tenants: an organization name is empty"},
		"several at once (1)": {"tenants:\n  a:\n    compression: x\n  b:\n    compression: y\n", `tenants.a.compression: "x"`},
		"several at once (2)": {"tenants:\n  a:\n    compression: x\n  b:\n    compression: y\n", `tenants.b.compression: "y"`},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, "tenants.yaml", c.yaml)
			_, err := tenants.Load(path)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, "tenants file "+path+": ") || !strings.Contains(msg, c.want) {
				t.Errorf("error %q\nwant the file and %q", msg, c.want)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error %q shows a secret", msg)
			}
		})
	}
	if _, err := tenants.Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func fmtLog(v any) string {
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "v", v)
	return b.String()
}
