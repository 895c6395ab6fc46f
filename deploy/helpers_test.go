package deploy_test

import (
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/spanferry/spanferry/internal/config"
)

// problems collects what a check found wrong, so that one run reports every
// mistake and the mutation tests can assert that a check fires.
type problems []string

func (p *problems) addf(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

// report fails t with every problem.
func (p problems) report(t testing.TB) {
	t.Helper()
	for _, s := range p {
		t.Error(s)
	}
}

// contains reports whether some problem mentions substr.
func (p problems) contains(substr string) bool {
	for _, s := range p {
		if strings.Contains(s, substr) {
			return true
		}
	}
	return false
}

// knownNames is the set of environment variables the worker reads.
func knownNames() map[string]bool {
	m := map[string]bool{}
	for _, n := range config.Names() {
		m[n] = true
	}
	return m
}

// configDefaults returns the default of every variable that has one, read
// from the envconfig tags of config.Config (the struct the worker loads).
func configDefaults() map[string]string {
	m := map[string]string{}
	t := reflect.TypeFor[config.Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, def := f.Tag.Get("envconfig"), f.Tag.Get("default")
		if name != "" && def != "" {
			m[name] = def
		}
	}
	return m
}

// listValue splits a comma-separated list variable as envconfig does.
func listValue(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// addrPort returns the port of a listen address such as ":8080".
func addrPort(addr string) (int, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(port)
}

// subjectCovers reports whether every subject matched by filter is matched by
// pattern, with NATS wildcards ("*" one token, ">" one or more trailing tokens).
func subjectCovers(pattern, filter string) bool {
	p, f := strings.Split(pattern, "."), strings.Split(filter, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(f) > i
		}
		if i >= len(f) || f[i] == ">" {
			return false
		}
		if tok != "*" && tok != f[i] {
			return false
		}
	}
	return len(p) == len(f)
}

// subjectsOverlap reports whether some subject is matched by both a and b.
func subjectsOverlap(a, b string) bool {
	x, y := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		if i == len(x) || i == len(y) {
			return len(x) == len(y)
		}
		if x[i] == ">" || y[i] == ">" {
			return true
		}
		if x[i] != "*" && y[i] != "*" && x[i] != y[i] {
			return false
		}
	}
}

func TestSubjectHelpers(t *testing.T) {
	covers := []struct {
		pattern, filter string
		want            bool
	}{
		{"workflows.results.>", "workflows.results.>", true},
		{"workflows.results.>", "workflows.results.examples", true},
		{"workflows.results.>", "workflows.results.a.b", true},
		{"workflows.results.>", "workflows.results", false},
		{"workflows.results.*", "workflows.results.>", false},
		{"workflows.*.x", "workflows.results.x", true},
		{"workflows.dlq", "workflows.dlq", true},
		{"workflows.dlq", "workflows.dlq.x", false},
		{"workflows.results.examples", "workflows.results.>", false},
	}
	for _, c := range covers {
		if got := subjectCovers(c.pattern, c.filter); got != c.want {
			t.Errorf("subjectCovers(%q, %q) = %v, want %v", c.pattern, c.filter, got, c.want)
		}
	}
	overlaps := []struct {
		a, b string
		want bool
	}{
		{"workflows.results.>", "workflows.dlq", false},
		{"workflows.>", "workflows.dlq", true},
		{"workflows.*", "workflows.dlq", true},
		{"workflows.results.>", "workflows.results", false},
		{"a.b", "a.b", true},
		{"a.*.c", "a.b.>", true},
	}
	for _, c := range overlaps {
		if got := subjectsOverlap(c.a, c.b); got != c.want {
			t.Errorf("subjectsOverlap(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
