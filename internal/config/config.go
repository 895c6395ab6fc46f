// Package config holds the worker's configuration: every environment variable
// of CONTRACT §4, read with envconfig, with its default and description.
//
// It lives apart from cmd/worker so that the deployment manifests' tests can
// check their variable names against the same struct the binary reads.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/spanferry/spanferry/internal/redact"
	"github.com/spanferry/spanferry/internal/redactfile"
)

// Exporter names accepted by WORKER_EXPORTER.
const (
	ExporterOTLP   = "otlp"
	ExporterFile   = "file"
	ExporterStdout = "stdout"
)

// Log formats accepted by WORKER_LOG_FORMAT.
const (
	LogFormatAuto = "auto" // text when the log goes to a terminal, else JSON
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Config is the worker's configuration. Field tags name the environment
// variables; envconfig reads them with an empty prefix so the names are
// exactly those of the contract.
//
// Secrets (NATS credentials, OTLP headers) are never logged: use LogValue,
// which leaves them out.
type Config struct {
	NATSURL      string `envconfig:"NATS_URL" desc:"NATS server URL(s), comma separated; empty starts an embedded JetStream server on 127.0.0.1:4222"`
	NATSCreds    string `envconfig:"NATS_CREDS" desc:"path of a NATS .creds file"`
	NATSNKeySeed string `envconfig:"NATS_NKEY_SEED" desc:"path of a file holding an nkey seed (SU...)"`
	NATSToken    string `envconfig:"NATS_TOKEN" desc:"NATS authentication token"`
	NATSUser     string `envconfig:"NATS_USER" desc:"NATS user name"`
	NATSPassword string `envconfig:"NATS_PASSWORD" desc:"NATS password"`
	NATSTLSCA    string `envconfig:"NATS_TLS_CA" desc:"PEM file of the CA that verifies the NATS server"`
	NATSTLSCert  string `envconfig:"NATS_TLS_CERT" desc:"PEM client certificate for mutual TLS"`
	NATSTLSKey   string `envconfig:"NATS_TLS_KEY" desc:"PEM client key for mutual TLS"`

	Stream       string   `envconfig:"WORKER_STREAM" default:"WORKFLOW_RESULTS" desc:"JetStream stream holding workflow results"`
	Subjects     []string `envconfig:"WORKER_SUBJECTS" default:"workflows.results.>" desc:"subjects the stream holds and the consumer filters, comma separated"`
	Durable      string   `envconfig:"WORKER_DURABLE" default:"spanferry" desc:"durable consumer name shared by every replica"`
	CreateStream bool     `envconfig:"WORKER_CREATE_STREAM" default:"true" desc:"create the stream and the dead-letter stream when missing (never modifies existing ones)"`
	DLQSubject   string   `envconfig:"WORKER_DLQ_SUBJECT" default:"workflows.dlq" desc:"dead-letter subject"`
	DLQStream    string   `envconfig:"WORKER_DLQ_STREAM" default:"WORKFLOW_DLQ" desc:"stream created for the dead-letter subject when WORKER_CREATE_STREAM is set"`

	// Clusters (#15).
	StreamReplicas int `envconfig:"WORKER_STREAM_REPLICAS" default:"1" desc:"replicas of the results stream when the worker creates it (3 on a 3-node cluster); the dead-letter stream and the consumers the worker creates take the results stream's count"`

	BatchSize         int           `envconfig:"WORKER_BATCH_SIZE" default:"200" desc:"most results per export request"`
	BatchWait         time.Duration `envconfig:"WORKER_BATCH_WAIT" default:"50ms" desc:"longest wait to fill a batch"`
	AckWait           time.Duration `envconfig:"WORKER_ACK_WAIT" default:"30s" desc:"consumer AckWait; held messages are kept alive with InProgress well before it"`
	ExportConcurrency int           `envconfig:"WORKER_EXPORT_CONCURRENCY" default:"0" desc:"batches mapped and exported at once; 0: GOMAXPROCS, at least 2 and at most 8"`
	MaxAckPending     int           `envconfig:"WORKER_MAX_ACK_PENDING" default:"0" desc:"consumer MaxAckPending when the worker creates the consumer; 0 derives it from batch size and concurrency"`

	MaxSteps        int `envconfig:"WORKER_MAX_STEPS" default:"10000" desc:"most steps in one result"`
	MaxDepth        int `envconfig:"WORKER_MAX_DEPTH" default:"64" desc:"deepest step nesting in one result"`
	MaxMessageBytes int `envconfig:"WORKER_MAX_MESSAGE_BYTES" default:"0" desc:"largest message accepted; 0 uses the server's max payload"`

	HTTPAddr        string        `envconfig:"WORKER_HTTP_ADDR" default:":8080" desc:"address of /metrics, /healthz and /readyz; empty disables it"`
	DataDir         string        `envconfig:"WORKER_DATA_DIR" default:"./data" desc:"where the embedded server and the file exporter keep data"`
	EmbeddedAddr    string        `envconfig:"WORKER_EMBEDDED_NATS_ADDR" default:"127.0.0.1:4222" desc:"listen address of the embedded NATS server (NATS_URL empty); worker publish connects there too"`
	Exporter        string        `envconfig:"WORKER_EXPORTER" desc:"otlp, file (OTLP/JSON lines in WORKER_DATA_DIR/traces.jsonl) or stdout; default otlp when an OTLP endpoint is set, else file"`
	ShutdownTimeout time.Duration `envconfig:"WORKER_SHUTDOWN_TIMEOUT" default:"30s" desc:"graceful shutdown bound"`
	LogLevel        string        `envconfig:"WORKER_LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`

	// Log format (#16): people read a terminal, machines read the rest.
	LogFormat string `envconfig:"WORKER_LOG_FORMAT" default:"auto" desc:"auto (text on a terminal, JSON otherwise), text or json"`
	// Tenants (CONTRACT §8).
	TenantsFile     string        `envconfig:"WORKER_TENANTS_FILE" desc:"YAML file of per-organization export destinations; empty: every result goes to the one exporter; SIGHUP reloads it"`
	ParkStream      string        `envconfig:"WORKER_PARK_STREAM" default:"SPANFERRY_PARK" desc:"with tenants: the stream (created when missing) a failing tenant's results are parked in"`
	TenantParkAfter time.Duration `envconfig:"WORKER_TENANT_PARK_AFTER" default:"1s" desc:"with tenants: a tenant's export request unanswered this long parks its results and backs the tenant off"`
	// Content controls (CONTRACT §9).
	CaptureContent bool   `envconfig:"WORKER_CAPTURE_CONTENT" default:"true" desc:"false: no span carries traceloop.entity.input or traceloop.entity.output"`
	RedactFile     string `envconfig:"WORKER_REDACT_FILE" desc:"YAML file of redaction rules applied to input, output, error messages and string metadata before export"`

	// The OTel variables are honoured by the OTLP exporter and the resource
	// detector themselves; they are listed here so that `worker -h` shows
	// them and the worker can pick its default exporter.
	OTLPEndpoint       string `envconfig:"OTEL_EXPORTER_OTLP_ENDPOINT" desc:"OTLP/HTTP base endpoint (e.g. http://collector:4318)"`
	OTLPTracesEndpoint string `envconfig:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" desc:"OTLP/HTTP traces endpoint (full URL)"`
	OTLPHeaders        string `envconfig:"OTEL_EXPORTER_OTLP_HEADERS" desc:"OTLP request headers, key=value,... (never logged)"`
	OTLPCompression    string `envconfig:"OTEL_EXPORTER_OTLP_COMPRESSION" desc:"gzip or none"`
	OTLPTimeout        string `envconfig:"OTEL_EXPORTER_OTLP_TIMEOUT" desc:"export request timeout in milliseconds"`
	ServiceName        string `envconfig:"OTEL_SERVICE_NAME" desc:"service.name of results without a service field (default workflows)"`
	ResourceAttributes string `envconfig:"OTEL_RESOURCE_ATTRIBUTES" desc:"extra resource attributes, key=value,..."`
	AttrValueLimit     int    `envconfig:"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT" default:"-1" desc:"longest attribute value; longer input/output is truncated and counted (-1: no limit)"`

	// OTLP over TLS (otlptls.go): the worker's own HTTP client puts them
	// in effect, since otlptracehttp ignores them once given a client.
	// The TRACES_ forms take precedence, as the specification says.
	OTLPCertificate             string `envconfig:"OTEL_EXPORTER_OTLP_CERTIFICATE" desc:"PEM file of the CA(s) that verify the OTLP receiver (default: the system's)"`
	OTLPClientCertificate       string `envconfig:"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE" desc:"PEM client certificate (chain) for mutual TLS with the OTLP receiver"`
	OTLPClientKey               string `envconfig:"OTEL_EXPORTER_OTLP_CLIENT_KEY" desc:"PEM private key of the client certificate"`
	OTLPTracesCertificate       string `envconfig:"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE" desc:"as OTEL_EXPORTER_OTLP_CERTIFICATE, for traces; takes precedence"`
	OTLPTracesClientCertificate string `envconfig:"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE" desc:"as OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, for traces; takes precedence"`
	OTLPTracesClientKey         string `envconfig:"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY" desc:"as OTEL_EXPORTER_OTLP_CLIENT_KEY, for traces; takes precedence"`
}

// Load reads the configuration from the environment and validates it.
func Load() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if c.Exporter == "" {
		c.Exporter = ExporterFile
		if c.OTLPEndpoint != "" || c.OTLPTracesEndpoint != "" {
			c.Exporter = ExporterOTLP
		}
	}
	if c.ExportConcurrency == 0 {
		c.ExportConcurrency = DefaultExportConcurrency(runtime.GOMAXPROCS(0))
	}
	return c, c.Validate()
}

// Validate reports the first setting that cannot work, naming its variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: "+format, append([]any{name}, args...)...))
	}
	switch c.Exporter {
	case ExporterOTLP, ExporterFile, ExporterStdout:
	default:
		bad("WORKER_EXPORTER", "%q is not otlp, file or stdout", c.Exporter)
	}
	if c.Stream == "" {
		bad("WORKER_STREAM", "required")
	}
	if len(c.Subjects) == 0 {
		bad("WORKER_SUBJECTS", "required")
	}
	if c.Durable == "" {
		bad("WORKER_DURABLE", "required")
	}
	if c.DLQSubject == "" {
		bad("WORKER_DLQ_SUBJECT", "required")
	}
	if c.BatchSize < 1 {
		bad("WORKER_BATCH_SIZE", "must be at least 1, got %d", c.BatchSize)
	}
	if c.BatchWait <= 0 {
		bad("WORKER_BATCH_WAIT", "must be positive, got %s", c.BatchWait)
	}
	if c.AckWait < time.Second {
		bad("WORKER_ACK_WAIT", "must be at least 1s, got %s", c.AckWait)
	}
	if c.ExportConcurrency < 1 {
		bad("WORKER_EXPORT_CONCURRENCY", "must be at least 1, got %d", c.ExportConcurrency)
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		bad("WORKER_STREAM_REPLICAS", "must be 1 to 5 (JetStream's limit), got %d", c.StreamReplicas)
	}
	if c.MaxAckPending < 0 {
		bad("WORKER_MAX_ACK_PENDING", "must not be negative")
	}
	if c.MaxSteps < 1 {
		bad("WORKER_MAX_STEPS", "must be at least 1")
	}
	if c.MaxDepth < 1 {
		bad("WORKER_MAX_DEPTH", "must be at least 1")
	}
	if c.NATSURL == "" {
		if _, _, err := net.SplitHostPort(c.EmbeddedAddr); err != nil {
			bad("WORKER_EMBEDDED_NATS_ADDR", "%v", err)
		}
	}
	if c.ShutdownTimeout <= 0 {
		bad("WORKER_SHUTDOWN_TIMEOUT", "must be positive")
	}
	if c.TenantsFile != "" && c.ParkStream == "" {
		bad("WORKER_PARK_STREAM", "required with WORKER_TENANTS_FILE")
	}
	if c.TenantParkAfter <= 0 {
		bad("WORKER_TENANT_PARK_AFTER", "must be positive, got %s", c.TenantParkAfter)
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		bad("NATS_TLS_CERT", "NATS_TLS_CERT and NATS_TLS_KEY go together")
	}
	switch c.LogFormat {
	case "", LogFormatAuto, LogFormatText, LogFormatJSON: // empty: auto
	default:
		bad("WORKER_LOG_FORMAT", "%q is not auto, text or json", c.LogFormat)
	}
	// Settings that would otherwise fail on every export, or silently not
	// apply, are refused here (startup.go).
	errs = append(errs, c.validateStartup()...)
	if c.RedactFile != "" {
		// Compiled here so that a bad rule stops every command at start.
		if _, err := redactfile.Load(c.RedactFile); err != nil {
			bad("WORKER_REDACT_FILE", "%v", err)
		}
	}
	return errors.Join(errs...)
}

// Usage writes every variable with its type, default and description.
func Usage(w io.Writer) error {
	var c Config
	return envconfig.Usagef("", &c, w, envconfig.DefaultTableFormat)
}

// Names returns every environment variable name the worker reads.
func Names() []string {
	var b strings.Builder
	var c Config
	_ = envconfig.Usagef("", &c, &b, `{{range .}}{{usage_key .}}
{{end}}`)
	return strings.Fields(b.String())
}

// LogValue logs the settings that are safe to show. NATS credentials and OTLP
// headers are reported only as set or unset.
func (c Config) LogValue() slog.Value {
	set := func(s string) bool { return s != "" }
	return slog.GroupValue(
		slog.String("nats_url", redact.URLs(c.NATSURL)),
		slog.Bool("nats_auth", set(c.NATSCreds) || set(c.NATSNKeySeed) || set(c.NATSToken) || set(c.NATSUser)),
		slog.Bool("nats_tls", set(c.NATSTLSCA) || set(c.NATSTLSCert)),
		slog.String("stream", c.Stream),
		slog.Any("subjects", c.Subjects),
		slog.String("durable", c.Durable),
		slog.String("dlq_subject", c.DLQSubject),
		slog.Int("batch_size", c.BatchSize),
		slog.String("batch_wait", c.BatchWait.String()),
		slog.String("ack_wait", c.AckWait.String()),
		slog.Int("export_concurrency", c.ExportConcurrency),
		slog.String("exporter", c.Exporter),
		slog.Bool("otlp_headers", set(c.OTLPHeaders)),
		slog.Bool("otlp_tls", set(c.OTLPCertificate) || set(c.OTLPTracesCertificate) || set(c.OTLPClientCertificate) || set(c.OTLPTracesClientCertificate)),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("data_dir", c.DataDir),
		slog.String("tenants_file", c.TenantsFile),
		slog.Bool("capture_content", c.CaptureContent),
		slog.String("redact_file", c.RedactFile),
	)
}
