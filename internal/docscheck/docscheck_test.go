package docscheck

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spanferry/spanferry/consumer"
	"github.com/spanferry/spanferry/internal/config"
)

// root is the repository's top directory, relative to this package.
const root = "../.."

// markdownFiles returns the Markdown files a user reads: README.md and
// docs/*.md always, and every other tracked .md file when git is there.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		files = append(files, filepath.ToSlash(strings.TrimPrefix(d, root+string(filepath.Separator))))
	}
	if out, err := exec.Command("git", "-C", root, "ls-files", "*.md").Output(); err == nil {
		files = append(files, strings.Fields(string(out))...)
	}
	slices.Sort(files)
	files = slices.Compact(files)
	if !slices.Contains(files, "docs/CONTRACT.md") {
		t.Fatalf("docs/CONTRACT.md is missing from %v", files)
	}
	return files
}

var (
	fence     = regexp.MustCompile("(?ms)^ *```.*?^ *```[^\n]*$")
	codeSpan  = regexp.MustCompile("`[^`\n]*`")
	inlineRef = regexp.MustCompile(`\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	refDef    = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$`)
	heading   = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)
	nonSlug   = regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
)

// links returns the link targets of a Markdown text, outside code.
func links(text string) []string {
	text = fence.ReplaceAllString(text, "")
	text = codeSpan.ReplaceAllString(text, "code")
	var out []string
	for _, m := range inlineRef.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	for _, m := range refDef.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// anchors returns the heading anchors GitHub makes for a Markdown text:
// lowercased, punctuation dropped, spaces made hyphens, repeats numbered.
func anchors(text string) map[string]bool {
	text = fence.ReplaceAllString(text, "")
	seen := map[string]int{}
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(text, -1) {
		h := strings.ReplaceAll(m[1], "`", "")
		slug := strings.ReplaceAll(nonSlug.ReplaceAllString(strings.ToLower(h), ""), " ", "-")
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

func TestLinksStayInTheRepository(t *testing.T) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{}
	read := func(rel string) (string, error) {
		if s, ok := texts[rel]; ok {
			return s, nil
		}
		b, err := os.ReadFile(filepath.Join(absRoot, rel))
		texts[rel] = string(b)
		return string(b), err
	}
	checked := 0
	for _, file := range markdownFiles(t) {
		text, err := read(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text, "../shared") {
			t.Errorf("%s mentions ../shared: a user has only the repository", file)
		}
		for _, target := range links(text) {
			u, err := url.Parse(target)
			if err != nil {
				t.Errorf("%s: link %q: %v", file, target, err)
				continue
			}
			if u.Scheme != "" || u.Host != "" {
				continue // a web page, checked by no test
			}
			checked++
			if strings.HasPrefix(u.Path, "/") {
				t.Errorf("%s: link %q is absolute; make it relative to the file", file, target)
				continue
			}
			rel := file // a bare #anchor is in the same file
			if u.Path != "" {
				rel = filepath.ToSlash(filepath.Join(filepath.Dir(file), u.Path))
			}
			if rel == ".." || strings.HasPrefix(rel, "../") {
				t.Errorf("%s: link %q points outside the repository", file, target)
				continue
			}
			info, err := os.Stat(filepath.Join(absRoot, rel))
			if err != nil {
				t.Errorf("%s: link %q: no such file or directory in the repository", file, target)
				continue
			}
			if u.Fragment == "" || info.IsDir() || !strings.HasSuffix(rel, ".md") {
				continue
			}
			linked, err := read(rel)
			if err != nil {
				t.Fatal(err)
			}
			if !anchors(linked)[u.Fragment] {
				t.Errorf("%s: link %q: %s has no heading #%s", file, target, rel, u.Fragment)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links found: is the link parser broken?", checked)
	}
}

// TestSnippetsMatchTheirExamples checks the README's copies of example
// programs: a fenced block whose first line is a comment naming a file
// ("// examples/publisher-go/main.go") must be, after that line, an exact
// excerpt of the file, which its own test compiles and runs.
func TestSnippetsMatchTheirExamples(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile("(?ms)^```\\w*\n// (examples/\\S+)\n(.*?)^```")
	found := 0
	for _, m := range named.FindAllStringSubmatch(string(readme), -1) {
		found++
		src, err := os.ReadFile(filepath.Join(root, m[1]))
		if err != nil {
			t.Errorf("README's snippet of %s: %v", m[1], err)
			continue
		}
		if !strings.Contains(string(src), m[2]) {
			t.Errorf("README's snippet of %s is not a copy of it; copy it again:\n%s", m[1], m[2])
		}
	}
	if found < 2 {
		t.Errorf("found %d snippets naming their example, want the Go and Node.js publishers", found)
	}
}

// TestReferenceNamesEveryVariable checks that docs/CONTRACT.md documents
// every environment variable the worker reads.
func TestReferenceNamesEveryVariable(t *testing.T) {
	ref, err := os.ReadFile(filepath.Join(root, "docs", "CONTRACT.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range config.Names() {
		if !strings.Contains(string(ref), "`"+name+"`") {
			t.Errorf("docs/CONTRACT.md does not document %s", name)
		}
	}
}

// TestReferenceNamesEveryMetric checks that docs/CONTRACT.md documents
// every spanferry_ metric the consumer registers.
func TestReferenceNamesEveryMetric(t *testing.T) {
	ref, err := os.ReadFile(filepath.Join(root, "docs", "CONTRACT.md"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	consumer.NewMetrics(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "spanferry_") {
			continue
		}
		found++
		if !strings.Contains(string(ref), "`"+f.GetName()) {
			t.Errorf("docs/CONTRACT.md does not document the metric %s", f.GetName())
		}
	}
	if found < 5 {
		t.Errorf("found %d spanferry_ metrics, want the consumer's", found)
	}
}
