// Package tenants reads WORKER_TENANTS_FILE (CONTRACT §8): the tenants by
// organization, each with its own OTLP destination, headers, compression and
// content capture, and what to do with results of unlisted tenants. Build
// turns a File into the consumer's routing table.
//
// Header values are credentials: no error or log line of this package ever
// contains one (nor an endpoint, which may carry a key in its query).
package tenants

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/spanferry/spanferry/consumer"
)

// Actions of default.action.
const (
	ActionExport     = "export"
	ActionDeadLetter = "dead-letter"
)

// File is a parsed, expanded and validated tenants file.
type File struct {
	// Path is the file it was read from, for messages.
	Path string
	// DefaultAction is ActionExport or ActionDeadLetter.
	DefaultAction string
	// Tenants are keyed by organization.
	Tenants map[string]Tenant
}

// Tenant is one organization's destination. Empty fields inherit the
// worker's own OTEL_EXPORTER_OTLP_* settings, except Headers (see Build).
type Tenant struct {
	// Endpoint is the full traces URL; empty shares the worker's.
	Endpoint string
	// Headers are sent with the tenant's requests. Never log them.
	Headers map[string]string
	// Compression is "gzip", "none" or empty (the worker's).
	Compression string
	// CaptureContent overrides WORKER_CAPTURE_CONTENT when not nil.
	CaptureContent *bool
}

// Names returns the tenants' organizations, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Tenants))
	for n := range f.Tenants {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LogValue shows what is safe to log: the tenants' names and whether each
// has an endpoint of its own. Never endpoints or headers.
func (f *File) LogValue() slog.Value {
	own := 0
	for _, t := range f.Tenants {
		if t.Endpoint != "" {
			own++
		}
	}
	return slog.GroupValue(
		slog.String("file", f.Path),
		slog.Any("tenants", f.Names()),
		slog.Int("own_endpoints", own),
		slog.String("default", f.DefaultAction),
	)
}

// The file's shape. KnownFields makes any other key an error.
type rawFile struct {
	Default *rawDefault           `yaml:"default"`
	Tenants map[string]*rawTenant `yaml:"tenants"`
}

type rawDefault struct {
	Action string `yaml:"action"`
}

type rawTenant struct {
	Endpoint       string            `yaml:"endpoint"`
	Headers        map[string]string `yaml:"headers"`
	Compression    string            `yaml:"compression"`
	CaptureContent *bool             `yaml:"capture_content"`
}

// Env is where placeholders are resolved: ${env:NAME} by LookupEnv and
// ${file:PATH} by ReadFile. The zero Env uses the process's.
type Env struct {
	LookupEnv func(string) (string, bool)
	ReadFile  func(string) ([]byte, error)
}

func (e Env) lookup(name string) (string, bool) {
	if e.LookupEnv == nil {
		return os.LookupEnv(name)
	}
	return e.LookupEnv(name)
}

func (e Env) read(path string) ([]byte, error) {
	if e.ReadFile == nil {
		return os.ReadFile(path)
	}
	return e.ReadFile(path)
}

// Load reads, expands and validates the tenants file at path with the
// process's environment and files.
func Load(path string) (*File, error) {
	return LoadEnv(path, Env{})
}

// LoadEnv is Load with placeholders resolved from env.
func LoadEnv(path string, env Env) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenants file: %w", err)
	}
	f, err := Parse(data, env)
	if err != nil {
		return nil, fmt.Errorf("tenants file %s: %w", path, err)
	}
	f.Path = path
	return f, nil
}

// Parse parses a tenants file's content (YAML, or JSON). Every error names
// the key or the line at fault; all are reported at once.
func Parse(data []byte, env Env) (*File, error) {
	var raw rawFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty (want default: and tenants:)")
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}

	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	f := &File{DefaultAction: ActionExport, Tenants: make(map[string]Tenant, len(raw.Tenants))}
	if raw.Default != nil {
		switch raw.Default.Action {
		case ActionExport, ActionDeadLetter:
			f.DefaultAction = raw.Default.Action
		case "":
		default:
			bad("default.action", "%q is not export or dead-letter", raw.Default.Action)
		}
	}
	for org, rt := range raw.Tenants {
		key := "tenants." + org
		switch {
		case org == "":
			bad("tenants", "an organization name is empty")
			continue
		case org == consumer.DefaultTenant:
			bad(key, "the name %q is reserved for the results of unlisted tenants", consumer.DefaultTenant)
			continue
		case rt == nil:
			rt = &rawTenant{}
		}
		t := Tenant{CaptureContent: rt.CaptureContent}
		var err error
		if t.Endpoint, err = expand(rt.Endpoint, env); err != nil {
			bad(key+".endpoint", "%v", err)
		} else if t.Endpoint != "" && !validURL(t.Endpoint) {
			bad(key+".endpoint", "not an absolute http or https URL")
		} else if t.Endpoint != "" && !exportableURL(t.Endpoint) {
			// otlptracehttp.WithEndpointURL keeps the scheme, host and
			// path only: a key placed there would silently go missing.
			bad(key+".endpoint", "has user info, a query or a fragment, which the OTLP exporter drops (value not shown): put credentials in headers")
		}
		if t.Compression, err = expand(rt.Compression, env); err != nil {
			bad(key+".compression", "%v", err)
		} else if t.Compression != "" && t.Compression != "gzip" && t.Compression != "none" {
			bad(key+".compression", "%q is not gzip or none", t.Compression)
		}
		if len(rt.Headers) > 0 {
			t.Headers = make(map[string]string, len(rt.Headers))
		}
		for name, v := range rt.Headers {
			hkey := key + ".headers." + name
			if !validHeaderName(name) {
				bad(hkey, "not a valid HTTP header name")
				continue
			}
			if v, err = expand(v, env); err != nil {
				bad(hkey, "%v", err)
				continue
			}
			if strings.ContainsAny(v, "\r\n\x00") {
				bad(hkey, "the value holds a line break or NUL (value not shown)")
				continue
			}
			t.Headers[name] = v
		}
		f.Tenants[org] = t
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// expand replaces ${env:NAME} and ${file:PATH} in s; "$${" is a literal
// "${". Errors name a well-formed placeholder, never the value it stands
// for, and never quote a ${…} that is not one: it may be part of a
// literal value (a key).
func expand(s string, env Env) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' { // $${ is an escaped ${
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New("a ${ placeholder is not closed by }")
		}
		ph := s[i : i+end+1]
		kind, arg, _ := strings.Cut(ph[2:len(ph)-1], ":")
		switch kind {
		case "env":
			if !envName.MatchString(arg) {
				return "", errors.New("a ${env:…} placeholder does not hold an environment variable name (value not shown; write $${ for a literal ${)")
			}
			v, ok := env.lookup(arg)
			if !ok {
				return "", fmt.Errorf("%s: environment variable %s is not set", ph, arg)
			}
			b.WriteString(v)
		case "file":
			if arg == "" {
				return "", fmt.Errorf("%s: no file path", ph)
			}
			data, err := env.read(arg)
			if err != nil {
				return "", fmt.Errorf("%s: %w", ph, pathError(err))
			}
			v := strings.TrimSuffix(string(data), "\n")
			b.WriteString(strings.TrimSuffix(v, "\r"))
		default:
			return "", errors.New("a ${…} is not a placeholder (value not shown; want ${env:NAME} or ${file:PATH}, or $${ for a literal ${)")
		}
		s = s[i+end+1:]
	}
}

// pathError keeps an os error to its operation, path and cause: a read
// error never quotes content, but a custom reader's error might.
func pathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe
	}
	return errors.New("cannot read the file")
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// exportableURL reports whether an endpoint is sent as written: it has no
// user info, query or fragment.
func exportableURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.User == nil && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" && !strings.Contains(s, "#")
}

func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// yamlError rewrites the decoder's error without the values it quotes
// (yaml.v3 quotes a scalar it cannot convert, which may be a key pasted
// under the wrong name) and with "unknown key" for KnownFields' message.
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return errors.New(quoted.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "(value not shown)"))
	}
	errs := make([]error, 0, len(te.Errors))
	for _, e := range te.Errors {
		if m := unknownField.FindStringSubmatch(e); m != nil {
			errs = append(errs, fmt.Errorf("%s: unknown key %q", m[1], m[2]))
			continue
		}
		errs = append(errs, errors.New(quoted.ReplaceAllString(e, "(value not shown)")))
	}
	return errors.Join(errs...)
}

var (
	quoted       = regexp.MustCompile("`[^`]*`")
	unknownField = regexp.MustCompile(`^(line \d+): field (.+) not found in type`)
)

func sortErrors(errs []error) {
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
}
