package deploy_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	dockerfilePath   = "../Dockerfile"
	dockerignorePath = "../.dockerignore"
	goModPath        = "../go.mod"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, ...
	Args string
}

// parseDockerfile splits a Dockerfile into instructions, dropping comments
// and parser directives.
func parseDockerfile(text string) []instruction {
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(line, "#") {
			continue // a comment inside a continued instruction
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// execForm decodes a JSON-array (exec form) argument list, or returns nil.
func execForm(args string) []string {
	var v []string
	if json.Unmarshal([]byte(args), &v) != nil {
		return nil
	}
	return v
}

// fromImage returns the image of a FROM instruction and its stage name.
func fromImage(args string) (image, stage string) {
	var fields []string
	for _, f := range strings.Fields(args) {
		if !strings.HasPrefix(f, "--") {
			fields = append(fields, f)
		}
	}
	if len(fields) == 0 {
		return "", ""
	}
	if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
		stage = fields[2]
	}
	return fields[0], stage
}

var goDirective = regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`)

// goVersion returns the major and minor of go.mod's go directive.
func goVersion(t testing.TB) (int, int) {
	t.Helper()
	b, err := os.ReadFile(goModPath)
	if err != nil {
		t.Fatal(err)
	}
	m := goDirective.FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no go directive", goModPath)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	return major, minor
}

var golangTag = regexp.MustCompile(`^golang:(\d+)\.(\d+)`)

// checkDockerfile checks the Dockerfile builds ./cmd/worker statically and
// runs it as a non-root user.
func checkDockerfile(text string, goMajor, goMinor int) problems {
	var p problems
	ins := parseDockerfile(text)
	var froms []int
	for i, in := range ins {
		if in.Cmd == "FROM" {
			froms = append(froms, i)
		}
	}
	if len(froms) < 2 {
		p.addf("Dockerfile: %d FROM, want a multi-stage build", len(froms))
		return p
	}

	// Build stage: a Go image new enough for go.mod (the official images
	// set GOTOOLCHAIN=local, so an older one fails), modules cached first.
	buildImage, buildStage := fromImage(ins[froms[0]].Args)
	if m := golangTag.FindStringSubmatch(buildImage); m == nil {
		p.addf("Dockerfile: build stage image %q is not golang:<major>.<minor>", buildImage)
	} else if major, _ := strconv.Atoi(m[1]); major != goMajor {
		p.addf("Dockerfile: build image %s, go.mod wants go %d.%d", buildImage, goMajor, goMinor)
	} else if minor, _ := strconv.Atoi(m[2]); minor < goMinor {
		p.addf("Dockerfile: build image %s is older than go.mod's go %d.%d", buildImage, goMajor, goMinor)
	}
	build := ins[froms[0]:froms[len(froms)-1]]
	download := slices.IndexFunc(build, func(in instruction) bool {
		return in.Cmd == "RUN" && strings.Contains(in.Args, "go mod download")
	})
	copyMod := slices.IndexFunc(build, func(in instruction) bool {
		return in.Cmd == "COPY" && strings.Contains(in.Args, "go.mod") && strings.Contains(in.Args, "go.sum")
	})
	copyAll := slices.IndexFunc(build, func(in instruction) bool {
		return in.Cmd == "COPY" && strings.HasPrefix(in.Args, ". ")
	})
	if copyMod < 0 || download < copyMod || copyAll < download {
		p.addf("Dockerfile: want COPY go.mod go.sum, RUN go mod download, then COPY . (modules cached in their own layer)")
	}
	var binary string
	for _, in := range build {
		if in.Cmd != "RUN" || !strings.Contains(in.Args, "go build") {
			continue
		}
		f := strings.Fields(in.Args)
		if !slices.Contains(f, "CGO_ENABLED=0") || !slices.Contains(f, "./cmd/worker") {
			p.addf("Dockerfile: go build %q is not a CGO_ENABLED=0 build of ./cmd/worker", in.Args)
		}
		if o, ok := flagValue(f, "-o"); ok {
			binary = o
		}
	}
	if binary == "" {
		p.addf("Dockerfile: no `go build -o PATH` of ./cmd/worker")
	}

	// Final stage: distroless, non-root, the binary as the entrypoint.
	final := ins[froms[len(froms)-1]:]
	finalImage, _ := fromImage(final[0].Args)
	user := ""
	if strings.HasSuffix(finalImage, ":nonroot") {
		user = "65532"
	}
	var entrypoint, cmd []string
	var exposed, volumes []string
	env := map[string]string{}
	copied := map[string]string{} // destination -> source, from the build stage
	for _, in := range final[1:] {
		switch in.Cmd {
		case "USER":
			user = in.Args
		case "ENTRYPOINT":
			entrypoint = execForm(in.Args)
		case "CMD":
			cmd = execForm(in.Args)
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.Args)...)
		case "VOLUME":
			if v := execForm(in.Args); v != nil {
				volumes = append(volumes, v...)
			} else {
				volumes = append(volumes, strings.Fields(in.Args)...)
			}
		case "ENV":
			for _, kv := range strings.Fields(in.Args) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					env[k] = strings.Trim(v, `"`)
				}
			}
		case "COPY":
			f := strings.Fields(in.Args)
			if len(f) >= 3 && slices.Contains(f, "--from="+buildStage) {
				copied[f[len(f)-1]] = f[len(f)-2]
			}
		}
	}
	if !strings.HasPrefix(finalImage, "gcr.io/distroless/static") {
		p.addf("Dockerfile: final image %q is not distroless static (a CGO_ENABLED=0 binary needs nothing more)", finalImage)
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		p.addf("Dockerfile: final stage runs as %q: want a non-root user (the :nonroot image or USER 65532)", user)
	}
	if len(entrypoint) != 1 || copied[entrypoint[0]] != binary || binary == "" {
		p.addf("Dockerfile: ENTRYPOINT %q is not the worker binary %q copied from the build stage", entrypoint, binary)
	}
	if !slices.Equal(cmd, []string{"run"}) {
		p.addf("Dockerfile: CMD %q, want [\"run\"]", cmd)
	}
	if port, err := addrPort(configDefaults()["WORKER_HTTP_ADDR"]); err != nil || !slices.Contains(exposed, strconv.Itoa(port)) {
		p.addf("Dockerfile: EXPOSE %q does not include WORKER_HTTP_ADDR's default port", exposed)
	}
	if dir := env["WORKER_DATA_DIR"]; dir == "" || !slices.Contains(volumes, dir) {
		p.addf("Dockerfile: WORKER_DATA_DIR %q is not a VOLUME (%q): the root filesystem may be read-only", dir, volumes)
	}
	return p
}

func readText(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDockerfile(t *testing.T) {
	major, minor := goVersion(t)
	checkDockerfile(readText(t, dockerfilePath), major, minor).report(t)
}

// TestDockerfileChecksCatchMistakes proves each Dockerfile check can fail.
func TestDockerfileChecksCatchMistakes(t *testing.T) {
	text := readText(t, dockerfilePath)
	major, minor := goVersion(t)
	if p := checkDockerfile(text, major, minor); len(p) > 0 {
		t.Skipf("the Dockerfile itself has problems (TestDockerfile reports them): %q", p)
	}
	mutations := []struct {
		name     string
		old, new string
		want     string
	}{
		{"cgo on", "CGO_ENABLED=0", "CGO_ENABLED=1", "CGO_ENABLED=0"},
		{"another package", "/out/worker ./cmd/worker", "/out/worker ./cmd/other", "./cmd/worker"},
		{"single stage", "FROM gcr.io/distroless/static-debian12:nonroot", "", "multi-stage"},
		{"old Go", "golang:1.26", "golang:1.20", "older than go.mod"},
		{"root user", "USER 65532:65532", "USER 0", "non-root"},
		{"shell image", "gcr.io/distroless/static-debian12:nonroot", "debian:bookworm", "distroless"},
		{"another entrypoint", `ENTRYPOINT ["/worker"]`, `ENTRYPOINT ["/bin/worker"]`, "ENTRYPOINT"},
		{"no run", `CMD ["run"]`, `CMD ["replay"]`, "CMD"},
		{"another port", "EXPOSE 8080", "EXPOSE 9090", "EXPOSE"},
		{"no volume", `VOLUME ["/data"]`, "", "VOLUME"},
		{"modules not cached", "RUN go mod download", "", "go mod download"},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			if !strings.Contains(text, m.old) {
				t.Fatalf("the Dockerfile no longer contains %q: update this mutation", m.old)
			}
			p := checkDockerfile(strings.Replace(text, m.old, m.new, 1), major, minor)
			if !p.contains(m.want) {
				t.Errorf("not reported (want a problem mentioning %q); got %q", m.want, p)
			}
		})
	}
}

// dockerignored reports whether .dockerignore patterns exclude name (a
// slash-separated path in the build context), following Docker's rules
// closely enough for these patterns: last match wins, "!" re-includes, a
// pattern that matches a directory excludes what is under it.
func dockerignored(patterns []string, name string) bool {
	excluded := false
	for _, pat := range patterns {
		neg := strings.HasPrefix(pat, "!")
		pat = path.Clean(strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/"))
		for dir := name; dir != "."; dir = path.Dir(dir) {
			if ok, _ := path.Match(pat, dir); ok || (strings.HasPrefix(pat, "**/") && strings.HasSuffix(dir, pat[3:])) {
				excluded = !neg
				break
			}
		}
	}
	return excluded
}

func TestDockerignore(t *testing.T) {
	var patterns []string
	for line := range strings.Lines(readText(t, dockerignorePath)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	for _, need := range []string{"go.mod", "go.sum", "cmd/worker/main.go", "internal/config/config.go"} {
		if dockerignored(patterns, need) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", need)
		}
	}
	for _, keepOut := range []string{".git/HEAD", "deploy/deploy_test.go"} {
		if !dockerignored(patterns, keepOut) {
			t.Errorf(".dockerignore lets %s into the build context", keepOut)
		}
	}
	if !dockerignored([]string{"cmd"}, "cmd/worker/main.go") || dockerignored([]string{"cmd", "!cmd/worker"}, "cmd/worker/main.go") {
		t.Error("dockerignored does not follow Docker's rules")
	}
}
