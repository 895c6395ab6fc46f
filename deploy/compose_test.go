package deploy_test

import (
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	composePath = "../docker-compose.yml"
	examplesDir = "../examples"
)

// composeFile mirrors the parts of the Compose specification that
// docker-compose.yml uses. Decoding is strict: a key not listed here (a typo
// such as depends_no, or a new setting) fails until it is added.
type composeFile struct {
	Name     string                    `json:"name,omitempty"`
	Services map[string]composeService `json:"services"`
	Volumes  map[string]composeVolume  `json:"volumes,omitempty"`
}

type composeService struct {
	Image       string                       `json:"image,omitempty"`
	Build       any                          `json:"build,omitempty"`
	Command     []string                     `json:"command,omitempty"`
	Environment map[string]string            `json:"environment,omitempty"`
	Ports       []string                     `json:"ports,omitempty"`
	Volumes     []string                     `json:"volumes,omitempty"`
	DependsOn   map[string]composeDependency `json:"depends_on,omitempty"`
	Healthcheck *composeHealthcheck          `json:"healthcheck,omitempty"`
	Restart     string                       `json:"restart,omitempty"`
}

type composeDependency struct {
	Condition string `json:"condition"`
	Restart   *bool  `json:"restart,omitempty"`
	Required  *bool  `json:"required,omitempty"`
}

type composeHealthcheck struct {
	Test        []string `json:"test"`
	Interval    string   `json:"interval,omitempty"`
	Timeout     string   `json:"timeout,omitempty"`
	Retries     int      `json:"retries,omitempty"`
	StartPeriod string   `json:"start_period,omitempty"`
}

type composeVolume struct {
	Driver   string `json:"driver,omitempty"`
	External bool   `json:"external,omitempty"`
}

func loadCompose(t testing.TB) *composeFile {
	t.Helper()
	b, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("%s: strict decode: %v", composePath, err)
	}
	return &c
}

// containerPorts returns the container side of "host:container[/proto]" entries.
func containerPorts(ports []string) []string {
	var out []string
	for _, p := range ports {
		p, _, _ = strings.Cut(p, "/")
		out = append(out, p[strings.LastIndex(p, ":")+1:])
	}
	return out
}

// flagValue returns the argument after flag in args.
func flagValue(args []string, flag string) (string, bool) {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

// checkCompose checks docker-compose.yml against the worker and the examples.
func checkCompose(c *composeFile, examples string) problems {
	var p problems
	for _, name := range []string{"nats", "jaeger", "worker", "publish-examples"} {
		if _, ok := c.Services[name]; !ok {
			p.addf("compose: no service %s", name)
		}
	}
	if len(p) > 0 {
		return p
	}
	names := knownNames()

	// Every dependency exists; service_healthy needs a healthcheck.
	for name, s := range c.Services {
		for dep, d := range s.DependsOn {
			target, ok := c.Services[dep]
			switch {
			case !ok:
				p.addf("compose: %s depends on unknown service %s", name, dep)
			case d.Condition == "service_healthy" && (target.Healthcheck == nil || len(target.Healthcheck.Test) == 0):
				p.addf("compose: %s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
	}

	// NATS with JetStream, its store on a named volume, a healthcheck.
	nats := c.Services["nats"]
	if !strings.HasPrefix(nats.Image, "nats:2.") {
		p.addf("compose: nats image %q, want a pinned nats:2.x", nats.Image)
	}
	if !slices.Contains(nats.Command, "-js") && !slices.Contains(nats.Command, "--jetstream") {
		p.addf("compose: nats command %q does not enable JetStream (-js)", nats.Command)
	}
	store, ok := flagValue(nats.Command, "-sd")
	if !ok {
		store, ok = flagValue(nats.Command, "--store_dir")
	}
	if !ok || !slices.ContainsFunc(nats.Volumes, func(v string) bool {
		src, dst, _ := strings.Cut(v, ":")
		_, named := c.Volumes[src]
		dst, _, _ = strings.Cut(dst, ":")
		return named && dst == store
	}) {
		p.addf("compose: the JetStream store (-sd %q) is not on a named volume: %q", store, nats.Volumes)
	}
	if nats.Healthcheck == nil || !strings.Contains(strings.Join(nats.Healthcheck.Test, " "), "/healthz") {
		p.addf("compose: nats has no /healthz healthcheck")
	}
	if !slices.Contains(containerPorts(nats.Ports), "4222") {
		p.addf("compose: nats does not publish 4222")
	}

	// Jaeger: UI and OTLP/HTTP.
	jaeger := c.Services["jaeger"]
	if img, tag, _ := strings.Cut(jaeger.Image, ":"); img != "jaegertracing/all-in-one" || !strings.HasPrefix(tag, "1.") {
		p.addf("compose: jaeger image %q, want jaegertracing/all-in-one pinned to a 1.x tag", jaeger.Image)
	}
	for _, port := range []string{"16686", "4318"} {
		if !slices.Contains(containerPorts(jaeger.Ports), port) {
			p.addf("compose: jaeger does not publish %s", port)
		}
	}

	// The worker.
	w := c.Services["worker"]
	if w.Build == nil {
		p.addf("compose: worker is not built from the repository (build: .)")
	}
	env := configDefaults()
	for k, v := range w.Environment {
		if !names[k] {
			p.addf("compose: worker environment %s is not a variable the worker reads (config.Names)", k)
		}
		env[k] = v
	}
	checkServiceURL(&p, c, "worker NATS_URL", env["NATS_URL"], "nats", "nats", "4222")
	checkServiceURL(&p, c, "worker OTEL_EXPORTER_OTLP_ENDPOINT", env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http", "jaeger", "4318")
	if env["WORKER_EXPORTER"] != "otlp" {
		p.addf("compose: worker WORKER_EXPORTER %q, want otlp", env["WORKER_EXPORTER"])
	}
	if len(w.Command) > 0 && w.Command[0] != "run" {
		p.addf("compose: worker command %q, want run", w.Command)
	}
	if d, ok := w.DependsOn["nats"]; !ok || d.Condition != "service_healthy" {
		p.addf("compose: worker must depend on nats with condition service_healthy")
	}
	if d, ok := w.DependsOn["jaeger"]; !ok || (d.Condition != "service_started" && d.Condition != "service_healthy") {
		p.addf("compose: worker must depend on jaeger")
	}
	port, err := addrPort(env["WORKER_HTTP_ADDR"])
	if err != nil {
		p.addf("compose: worker WORKER_HTTP_ADDR %q: %v", env["WORKER_HTTP_ADDR"], err)
	}
	if !slices.Contains(containerPorts(w.Ports), strconv.Itoa(port)) {
		p.addf("compose: worker does not publish its HTTP port %d", port)
	}
	if hc := w.Healthcheck; hc == nil || len(hc.Test) < 3 || hc.Test[0] != "CMD" || hc.Test[1] != "/worker" || hc.Test[2] != "healthcheck" {
		p.addf("compose: worker healthcheck must be [CMD, /worker, healthcheck, ...] (the image has no shell)")
	} else if u, ok := flagValue(hc.Test, "--url"); ok {
		pu, err := url.Parse(u)
		if err != nil || pu.Port() != strconv.Itoa(port) || pu.Path != readinessPath {
			p.addf("compose: worker healthcheck URL %q is not %s on WORKER_HTTP_ADDR's port %d", u, readinessPath, port)
		}
	}

	// The one-shot publisher of the examples.
	pub := c.Services["publish-examples"]
	if pub.Image == "" || pub.Image != w.Image {
		p.addf("compose: publish-examples image %q is not the worker's image %q", pub.Image, w.Image)
	}
	if pub.Restart != "no" {
		p.addf("compose: publish-examples restart %q, want \"no\" (one shot)", pub.Restart)
	}
	if d, ok := pub.DependsOn["worker"]; !ok || d.Condition != "service_healthy" {
		p.addf("compose: publish-examples must wait for the worker to be healthy (it creates the stream)")
	}
	for k := range pub.Environment {
		if !names[k] {
			p.addf("compose: publish-examples environment %s is not a variable the worker reads", k)
		}
	}
	if pub.Environment["NATS_URL"] != env["NATS_URL"] {
		p.addf("compose: publish-examples NATS_URL %q differs from the worker's %q", pub.Environment["NATS_URL"], env["NATS_URL"])
	}
	var mount string
	for _, v := range pub.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && path.Clean(parts[0]) == "examples" {
			mount = parts[1]
			if len(parts) < 3 || parts[2] != "ro" {
				p.addf("compose: publish-examples mounts ./examples writable (%q); want :ro", v)
			}
		}
	}
	if mount == "" {
		p.addf("compose: publish-examples does not mount ./examples")
	}
	if len(pub.Command) == 0 || pub.Command[0] != "publish" {
		p.addf("compose: publish-examples command %q does not start with publish", pub.Command)
		return p
	}
	if subject, ok := flagValue(pub.Command, "--subject"); ok {
		if !slices.ContainsFunc(listValue(env["WORKER_SUBJECTS"]), func(pat string) bool { return subjectCovers(pat, subject) }) {
			p.addf("compose: publish-examples publishes on %q, outside the worker's WORKER_SUBJECTS %q", subject, env["WORKER_SUBJECTS"])
		}
	}
	var files int
	for _, arg := range pub.Command[1:] {
		if mount == "" || !strings.HasPrefix(arg, mount+"/") {
			continue
		}
		files++
		rel := strings.TrimPrefix(arg, mount+"/")
		if _, err := os.Stat(filepath.Join(examples, filepath.FromSlash(rel))); err != nil {
			p.addf("compose: publish-examples publishes %s, which is not in examples/: %v", arg, err)
		}
	}
	if files == 0 {
		p.addf("compose: publish-examples names no file under %q", mount)
	}
	return p
}

// checkServiceURL checks that raw is a scheme://service:port URL of a compose
// service.
func checkServiceURL(p *problems, c *composeFile, what, raw, scheme, service, port string) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != scheme || u.Hostname() != service || u.Port() != port {
		p.addf("compose: %s is %q, want %s://%s", what, raw, scheme, net.JoinHostPort(service, port))
		return
	}
	if _, ok := c.Services[service]; !ok {
		p.addf("compose: %s names service %s, which does not exist", what, service)
	}
}

func TestCompose(t *testing.T) {
	checkCompose(loadCompose(t), examplesDir).report(t)
}

// TestComposeChecksCatchMistakes proves each compose check can fail.
func TestComposeChecksCatchMistakes(t *testing.T) {
	if p := checkCompose(loadCompose(t), examplesDir); len(p) > 0 {
		t.Skipf("docker-compose.yml itself has problems (TestCompose reports them): %q", p)
	}
	svc := func(c *composeFile, name string, f func(s *composeService)) {
		s := c.Services[name]
		f(&s)
		c.Services[name] = s
	}
	mutations := []struct {
		name   string
		mutate func(c *composeFile)
		want   string
	}{
		{"no jaeger", func(c *composeFile) { delete(c.Services, "jaeger") }, "no service jaeger"},
		{"no JetStream", func(c *composeFile) {
			svc(c, "nats", func(s *composeService) { s.Command = []string{"-sd", "/data", "-m", "8222"} })
		}, "JetStream"},
		{"store not on a volume", func(c *composeFile) { svc(c, "nats", func(s *composeService) { s.Volumes = nil }) }, "named volume"},
		{"nats unhealthy", func(c *composeFile) { svc(c, "nats", func(s *composeService) { s.Healthcheck = nil }) }, "healthcheck"},
		{"jaeger latest", func(c *composeFile) {
			svc(c, "jaeger", func(s *composeService) { s.Image = "jaegertracing/all-in-one:latest" })
		}, "jaeger image"},
		{"jaeger without OTLP", func(c *composeFile) { svc(c, "jaeger", func(s *composeService) { s.Ports = []string{"16686:16686"} }) }, "4318"},
		{"unknown variable", func(c *composeFile) {
			svc(c, "worker", func(s *composeService) { s.Environment["OTEL_ENDPOINT"] = "http://jaeger:4318" })
		}, "OTEL_ENDPOINT"},
		{"OTLP to the wrong host", func(c *composeFile) {
			svc(c, "worker", func(s *composeService) { s.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://localhost:4318" })
		}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"OTLP gRPC port", func(c *composeFile) {
			svc(c, "worker", func(s *composeService) { s.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://jaeger:4317" })
		}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"NATS elsewhere", func(c *composeFile) {
			svc(c, "worker", func(s *composeService) { s.Environment["NATS_URL"] = "nats://127.0.0.1:4222" })
		}, "NATS_URL"},
		{"worker does not wait for nats", func(c *composeFile) {
			svc(c, "worker", func(s *composeService) { s.DependsOn["nats"] = composeDependency{Condition: "service_started"} })
		}, "service_healthy"},
		{"worker unhealthy", func(c *composeFile) { svc(c, "worker", func(s *composeService) { s.Healthcheck = nil }) }, "healthcheck"},
		{"healthcheck with a shell", func(c *composeFile) {
			svc(c, "worker", func(s *composeService) {
				s.Healthcheck = &composeHealthcheck{Test: []string{"CMD-SHELL", "wget -q http://127.0.0.1:8080/readyz"}}
			})
		}, "no shell"},
		{"healthcheck on another port", func(c *composeFile) {
			svc(c, "worker", func(s *composeService) { s.Environment["WORKER_HTTP_ADDR"] = ":9090" })
		}, "healthcheck URL"},
		{"publisher of another image", func(c *composeFile) {
			svc(c, "publish-examples", func(s *composeService) { s.Image = "spanferry:other" })
		}, "worker's image"},
		{"publisher restarts", func(c *composeFile) {
			svc(c, "publish-examples", func(s *composeService) { s.Restart = "on-failure" })
		}, "one shot"},
		{"publisher runs", func(c *composeFile) {
			svc(c, "publish-examples", func(s *composeService) { s.Command[0] = "run" })
		}, "start with publish"},
		{"missing example", func(c *composeFile) {
			svc(c, "publish-examples", func(s *composeService) { s.Command = append(s.Command, "/examples/nope.json") })
		}, "nope.json"},
		{"subject outside the stream", func(c *composeFile) {
			svc(c, "publish-examples", func(s *composeService) { s.Command[2] = "workflows.examples" })
		}, "outside the worker's WORKER_SUBJECTS"},
		{"examples not mounted", func(c *composeFile) { svc(c, "publish-examples", func(s *composeService) { s.Volumes = nil }) }, "does not mount"},
		{"publisher too early", func(c *composeFile) {
			svc(c, "publish-examples", func(s *composeService) { s.DependsOn = nil })
		}, "healthy"},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			c := loadCompose(t)
			m.mutate(c)
			if p := checkCompose(c, examplesDir); !p.contains(m.want) {
				t.Errorf("not reported (want a problem mentioning %q); got %q", m.want, p)
			}
		})
	}
}
