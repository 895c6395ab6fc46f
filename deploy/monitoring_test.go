package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The monitoring files, relative to this directory.
const (
	monitoringDir  = "monitoring"
	rulesPath      = "monitoring/spanferry-alerts.yaml"
	ruleCRPath     = "monitoring/prometheusrule.yaml"
	dashboardPath  = "monitoring/grafana-dashboard.json"
	dashboardKey   = "spanferry.json" // the dashboard's key in the ConfigMap
	dashboardLabel = "grafana_dashboard"
)

// targetLabels are added by Prometheus' scrape (and Kubernetes service
// discovery), not by the worker: a selector may match on them freely.
var targetLabels = setOf("job", "instance", "namespace", "pod", "service", "container", "endpoint")

// requiredAlerts are the conditions an operator must hear about, each with
// a selector its alert must use.
var requiredAlerts = map[string]selector{
	"SpanferryConsumerLagGrowing": {metric: "spanferry_consumer_pending"},
	"SpanferryExportsFailing":     {metric: "spanferry_messages_total", equals: map[string]string{"outcome": "retried"}},
	"SpanferryDeadLetters":        {metric: "spanferry_messages_total", equals: map[string]string{"outcome": "dead_lettered"}},
	"SpanferryTenantBackedOff":    {metric: "spanferry_tenant_backoff"},
	"SpanferryWorkerNotReady":     {metric: "spanferry_ready"},
}

// ruleFile is a Prometheus rules file, and the spec of a PrometheusRule.
type ruleFile struct {
	Groups []ruleGroup `json:"groups"`
}

type ruleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval,omitempty"`
	Rules    []rule `json:"rules"`
}

type rule struct {
	Alert       string            `json:"alert,omitempty"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// PrometheusRule mirrors the Prometheus Operator's monitoring.coreos.com/v1
// PrometheusRule for the fields the manifest uses.
type PrometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ruleFile `json:"spec"`
}

// dashboard mirrors the fields of a Grafana dashboard model the file uses;
// decoding is strict, so a misspelt field fails.
type dashboard struct {
	Title         string   `json:"title"`
	UID           string   `json:"uid"`
	Description   string   `json:"description"`
	Tags          []string `json:"tags"`
	Editable      bool     `json:"editable"`
	SchemaVersion int      `json:"schemaVersion"`
	Version       int      `json:"version"`
	Refresh       string   `json:"refresh"`
	Time          struct{ From, To string }
	Timezone      string          `json:"timezone"`
	GraphTooltip  int             `json:"graphTooltip"`
	Links         []any           `json:"links"`
	Annotations   json.RawMessage `json:"annotations"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string          `json:"name"`
	Label      string          `json:"label"`
	Type       string          `json:"type"`
	Datasource *datasource     `json:"datasource,omitempty"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition,omitempty"`
	IncludeAll bool            `json:"includeAll,omitempty"`
	AllValue   string          `json:"allValue,omitempty"`
	Multi      bool            `json:"multi,omitempty"`
	Current    json.RawMessage `json:"current"`
	Hide       int             `json:"hide"`
	Refresh    int             `json:"refresh"`
	Sort       int             `json:"sort,omitempty"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID          int         `json:"id"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Description string      `json:"description,omitempty"`
	Datasource  *datasource `json:"datasource,omitempty"`
	GridPos     struct{ X, Y, W, H int }
	Targets     []target        `json:"targets,omitempty"`
	FieldConfig json.RawMessage `json:"fieldConfig,omitempty"`
	Options     json.RawMessage `json:"options,omitempty"`
	Collapsed   bool            `json:"collapsed,omitempty"`
	Panels      []panel         `json:"panels,omitempty"`
}

type target struct {
	Datasource   *datasource `json:"datasource,omitempty"`
	Expr         string      `json:"expr"`
	LegendFormat string      `json:"legendFormat"`
	RefID        string      `json:"refId"`
}

// exposition is what a worker's /metrics shows: the label sets of each
// metric's series.
type exposition map[string][]map[string]string

// checkSelectors reports each selector whose metric the worker does not
// expose, or whose label values no series of it has.
func checkSelectors(p *problems, where string, sels []selector, exposed exposition) {
	for _, s := range sels {
		series, ok := exposed[s.metric]
		if !ok {
			p.addf("%s: metric %s is not on the worker's /metrics", where, s.metric)
			continue
		}
		for label, value := range s.equals {
			if targetLabels[label] {
				continue
			}
			if !slices.ContainsFunc(series, func(ls map[string]string) bool { return ls[label] == value }) {
				p.addf("%s: no series of %s has %s=%q on the worker's /metrics", where, s.metric, label, value)
			}
		}
	}
}

// alertTemplate parses an annotation as Prometheus does: text/template
// with $labels and $value defined and Prometheus' template functions.
func alertTemplate(text string) error {
	stub := func(...any) string { return "" }
	funcs := template.FuncMap{}
	for _, f := range []string{"humanize", "humanize1024", "humanizeDuration", "humanizePercentage",
		"humanizeTimestamp", "title", "toUpper", "toLower", "reReplaceAll", "match", "first", "label",
		"value", "query", "stripPort", "stripDomain", "externalURL", "pathPrefix", "safeHtml",
		"strvalue", "args", "tableLink", "graphLink", "sortByLabel", "parseDuration", "toTime", "toDuration"} {
		funcs[f] = stub
	}
	defs := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}"
	_, err := template.New("annotation").Funcs(funcs).Option("missingkey=zero").Parse(defs + text)
	return err
}

// promDuration is Prometheus' duration syntax: units from ms to y.
var promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

// checkRules checks a rules file: every expression PromQL over the
// worker's metrics, durations, severities and annotations valid, names
// unique, and each required alert present and watching its metric.
func checkRules(rf ruleFile, exposed exposition) problems {
	var p problems
	if len(rf.Groups) == 0 {
		p.addf("rules: no groups")
	}
	groups, alerts := map[string]bool{}, map[string][]selector{}
	for _, g := range rf.Groups {
		if g.Name == "" || groups[g.Name] {
			p.addf("rules: group name %q empty or repeated", g.Name)
		}
		groups[g.Name] = true
		for _, r := range g.Rules {
			where := "rules: " + r.Alert + r.Record
			if (r.Alert == "") == (r.Record == "") {
				p.addf("%s: a rule is an alert or a record, not both or neither", where)
			}
			if r.Alert != "" {
				if _, dup := alerts[r.Alert]; dup {
					p.addf("%s: alert name repeated", where)
				}
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					p.addf("%s: severity %q, want warning or critical", where, s)
				}
				for _, a := range []string{"summary", "description"} {
					if r.Annotations[a] == "" {
						p.addf("%s: no %s annotation", where, a)
					}
				}
			}
			if r.For != "" && !promDuration.MatchString(r.For) {
				p.addf("%s: for %q is not a Prometheus duration", where, r.For)
			}
			for name, text := range r.Annotations {
				if err := alertTemplate(text); err != nil {
					p.addf("%s: annotation %s: %v", where, name, err)
				}
			}
			sels, err := checkPromQL(r.Expr)
			if err != nil {
				p.addf("%s: expr %q: %v", where, strings.TrimSpace(r.Expr), err)
				continue
			}
			checkSelectors(&p, where, sels, exposed)
			if r.Alert != "" {
				alerts[r.Alert] = sels
			}
		}
	}
	for name, want := range requiredAlerts {
		sels, ok := alerts[name]
		if !ok {
			p.addf("rules: alert %s missing", name)
			continue
		}
		if !slices.ContainsFunc(sels, func(s selector) bool {
			return s.metric == want.metric && reflect.DeepEqual(withoutTargetLabels(s.equals), want.equals)
		}) {
			p.addf("rules: alert %s does not watch %s%v", name, want.metric, want.equals)
		}
	}
	return p
}

func withoutTargetLabels(m map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if !targetLabels[k] {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// grafanaVar is a Grafana variable reference: $name, ${name} or ${name:fmt}.
var grafanaVar = regexp.MustCompile(`\$\{?(\w+)(:\w+)?\}?`)

// grafanaBuiltins are the interval variables Grafana fills in, with what
// stands for them when an expression is parsed.
var grafanaBuiltins = map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}

// labelValues is a Grafana variable query: label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// checkDashboard checks a Grafana dashboard: strict JSON, unique panel
// ids, a layout inside 24 columns, every query on the dashboard's data
// source variable, and every expression PromQL over the worker's metrics
// once Grafana's variables are filled in.
func checkDashboard(data []byte, exposed exposition) problems {
	var p problems
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		p.addf("dashboard: %v", err)
		return p
	}
	if d.Title == "" || d.UID == "" {
		p.addf("dashboard: title and uid are required")
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if !vars["datasource"] {
		p.addf("dashboard: no datasource variable: queries would be bound to one installation's data source")
	}
	expand := func(where, expr string) (string, bool) {
		ok := true
		out := grafanaVar.ReplaceAllStringFunc(expr, func(ref string) string {
			name := grafanaVar.FindStringSubmatch(ref)[1]
			if v, builtin := grafanaBuiltins[name]; builtin {
				return v
			}
			if !vars[name] {
				p.addf("%s: variable $%s is not defined", where, name)
				ok = false
			}
			return ".*"
		})
		return out, ok
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		where := "dashboard: variable " + v.Name
		checkDatasource(&p, where, v.Datasource)
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil || q.Query == "" {
			p.addf("%s: query is not {\"query\": ...}", where)
			continue
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			p.addf("%s: query %q is not label_values(selector, label)", where, q.Query)
			continue
		}
		sel, ok := expand(where, m[1])
		if !ok {
			continue
		}
		sels, err := checkPromQL(sel)
		if err != nil {
			p.addf("%s: %v", where, err)
			continue
		}
		checkSelectors(&p, where, sels, exposed)
	}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, pn := range panels {
			where := fmt.Sprintf("dashboard: panel %d %q", pn.ID, pn.Title)
			if ids[pn.ID] {
				p.addf("%s: id repeated", where)
			}
			ids[pn.ID] = true
			if g := pn.GridPos; g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
				p.addf("%s: gridPos %+v outside the 24 columns", where, g)
			}
			switch pn.Type {
			case "row":
				walk(pn.Panels)
				continue
			case "timeseries", "stat", "gauge", "table", "bargauge":
			default:
				p.addf("%s: panel type %q", where, pn.Type)
			}
			if pn.Title == "" || len(pn.Targets) == 0 {
				p.addf("%s: a panel needs a title and queries", where)
			}
			refs := map[string]bool{}
			for _, t := range pn.Targets {
				if refs[t.RefID] || t.RefID == "" {
					p.addf("%s: refId %q empty or repeated", where, t.RefID)
				}
				refs[t.RefID] = true
				checkDatasource(&p, where, pn.Datasource)
				checkDatasource(&p, where, t.Datasource)
				expr, ok := expand(where, t.Expr)
				if !ok {
					continue
				}
				sels, err := checkPromQL(expr)
				if err != nil {
					p.addf("%s: expr %q: %v", where, t.Expr, err)
					continue
				}
				checkSelectors(&p, where, sels, exposed)
			}
		}
	}
	walk(d.Panels)
	return p
}

// checkDatasource wants queries on the dashboard's data source variable,
// not on one installation's data source.
func checkDatasource(p *problems, where string, ds *datasource) {
	if ds != nil && (ds.Type != "prometheus" || ds.UID != "${datasource}") {
		p.addf("%s: data source %+v, want the prometheus ${datasource} variable", where, *ds)
	}
}

func loadRules(t testing.TB) ruleFile {
	t.Helper()
	var rf ruleFile
	if err := yaml.UnmarshalStrict([]byte(readText(t, rulesPath)), &rf); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	return rf
}

// TestMonitoring checks the alerts and the dashboard against a running
// worker's /metrics, and the PrometheusRule and the ConfigMap of the
// monitoring kustomization against the plain files.
func TestMonitoring(t *testing.T) {
	exposed := scrapeWorker(t)
	rf := loadRules(t)
	checkRules(rf, exposed).report(t)
	dash := []byte(readText(t, dashboardPath))
	checkDashboard(dash, exposed).report(t)

	objs := mustRender(t, monitoringDir)
	var cr *PrometheusRule
	var cm *corev1.ConfigMap
	for _, o := range objs {
		var err error
		switch o.Kind {
		case "PrometheusRule":
			err = decodeStrict(o, setOnce(&cr))
		case "ConfigMap":
			err = decodeStrict(o, setOnce(&cm))
		default:
			err = fmt.Errorf("unexpected %s", o.id())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if cr == nil || cm == nil {
		t.Fatalf("%s renders %d objects, want a PrometheusRule and a ConfigMap", monitoringDir, len(objs))
	}
	if cr.APIVersion != "monitoring.coreos.com/v1" {
		t.Errorf("PrometheusRule apiVersion %s, want monitoring.coreos.com/v1", cr.APIVersion)
	}
	if !reflect.DeepEqual(cr.Spec, rf) {
		t.Errorf("%s and %s differ: keep the PrometheusRule's groups identical to the rules file", ruleCRPath, rulesPath)
	}
	if cm.Data[dashboardKey] != string(dash) {
		t.Errorf("ConfigMap %s does not hold %s as %s", cm.Name, dashboardPath, dashboardKey)
	}
	if cm.Labels[dashboardLabel] != "1" {
		t.Errorf("ConfigMap %s lacks the label %s: \"1\" that Grafana's sidecar looks for", cm.Name, dashboardLabel)
	}
	t.Run("kubectl", func(t *testing.T) { checkKubectl(t, monitoringDir, objs) })
}

// TestMonitoringChecksCatchMistakes: each check fires on the mistake it is
// for, so that a green TestMonitoring means something.
func TestMonitoringChecksCatchMistakes(t *testing.T) {
	exposed := scrapeWorker(t)
	good := loadRules(t)
	if p := checkRules(good, exposed); len(p) != 0 {
		t.Fatalf("the rules fail against the fixture: %v", p)
	}
	mutate := func(f func(r *rule)) ruleFile {
		var rf ruleFile
		b, _ := json.Marshal(good)
		_ = json.Unmarshal(b, &rf)
		f(&rf.Groups[0].Rules[0])
		return rf
	}
	for _, tc := range []struct {
		name string
		rf   ruleFile
		want string
	}{
		{"syntax", mutate(func(r *rule) { r.Expr = "sum(spanferry_ready" }), "expr"},
		{"unknown metric", mutate(func(r *rule) { r.Expr = "spanferry_consumer_lag > 1" }), "spanferry_consumer_lag is not on"},
		{"unknown label value", mutate(func(r *rule) { r.Expr = `rate(spanferry_messages_total{outcome="exported"}[5m]) > 0` }), `outcome="exported"`},
		{"implicit window", mutate(func(r *rule) { r.Expr = "rate(spanferry_messages_total) > 0" }), "needs a range vector"},
		{"range vector alone", mutate(func(r *rule) { r.Expr = "spanferry_consumer_pending[5m]" }), "outside a range function"},
		{"MetricsQL function", mutate(func(r *rule) { r.Expr = "range_median(spanferry_consumer_pending) > 1" }), "not a PromQL function"},
		{"MetricsQL operator", mutate(func(r *rule) { r.Expr = "spanferry_ready if spanferry_consumer_pending" }), "not a PromQL operator"},
		{"WITH", mutate(func(r *rule) { r.Expr = "WITH (x = spanferry_ready) x" }), "WITH"},
		{"duration", mutate(func(r *rule) { r.For = "15 minutes" }), "not a Prometheus duration"},
		{"severity", mutate(func(r *rule) { r.Labels["severity"] = "page" }), "severity"},
		{"template", mutate(func(r *rule) { r.Annotations["summary"] = "{{ $labels.job " }), "annotation summary"},
		{"required alert", mutate(func(r *rule) { r.Alert = "Renamed" }), "SpanferryConsumerLagGrowing missing"},
	} {
		if p := checkRules(tc.rf, exposed); !p.contains(tc.want) {
			t.Errorf("%s: problems %v, want one mentioning %q", tc.name, p, tc.want)
		}
	}

	dash := readText(t, dashboardPath)
	if p := checkDashboard([]byte(dash), exposed); len(p) != 0 {
		t.Fatalf("the dashboard fails against the fixture: %v", p)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"strict JSON", `"refresh"`, `"refersh"`, "unknown field"},
		{"undefined variable", `namespace=~\"$namespace\", job`, `namespace=~\"$ns\", job`, "$ns is not defined"},
		{"unknown metric", `spanferry_spans_exported_total`, `spanferry_spans_total`, "spanferry_spans_total is not on"},
		{"data source", `"uid": "${datasource}"`, `"uid": "P1809F7CD0C75ACF3"`, "data source"},
		{"layout", `"w": 24`, `"w": 25`, "24 columns"},
		{"PromQL", `[$__rate_interval]))`, `))`, "needs a range vector"},
	} {
		if !strings.Contains(dash, tc.old) {
			t.Fatalf("%s: the dashboard has no %s to mutate", tc.name, tc.old)
		}
		if p := checkDashboard([]byte(strings.Replace(dash, tc.old, tc.new, 1)), exposed); !p.contains(tc.want) {
			t.Errorf("%s: problems %v, want one mentioning %q", tc.name, p, tc.want)
		}
	}
}

// scraped is what scrapeWorker saw, kept for the tests that follow.
var scraped struct {
	once    sync.Once
	exposed exposition
	err     error
}

// scrapeWorker builds the worker, runs it on its embedded JetStream server
// with random ports and a temporary data directory, waits until it is
// ready, and returns what its /metrics exposes. The first call does it; the
// others return what it saw.
func scrapeWorker(t *testing.T) exposition {
	t.Helper()
	scraped.once.Do(func() { scraped.exposed, scraped.err = runAndScrape() })
	if scraped.err != nil {
		t.Fatal(scraped.err)
	}
	return scraped.exposed
}

func runAndScrape() (_ exposition, err error) {
	dir, err := os.MkdirTemp("", "spanferry-deploy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "worker")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Built in the root module, with its go.sum: the worker as it ships.
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/worker")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build the worker: %v\n%s", err, out)
	}
	// One tenant, so that the per-tenant series exist too; nothing is
	// published, so its destination is never asked.
	tenants := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(tenants, []byte("tenants:\n  acme:\n    endpoint: http://127.0.0.1:9/v1/traces\n"), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = append(workerlessEnv(),
		"WORKER_EMBEDDED_NATS_ADDR=127.0.0.1:0", "WORKER_HTTP_ADDR=127.0.0.1:0",
		"WORKER_DATA_DIR="+filepath.Join(dir, "data"), "WORKER_LOG_FORMAT=json",
		"WORKER_TENANTS_FILE="+tenants)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var logs strings.Builder
	addr := make(chan string, 1)
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && strings.HasPrefix(line.Msg, "serving /metrics") && line.Addr != "" {
				addr <- line.Addr
			}
		}
		close(addr)
	}()
	defer func() {
		// Stop it as Kubernetes does; its stderr closes when it exits, and
		// only then may Wait close the pipe.
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-logsDone:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-logsDone
		}
		_ = cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w\nworker logs:\n%s", err, logs.String())
		}
	}()

	var base string
	select {
	case a, ok := <-addr:
		if !ok {
			return nil, errors.New("the worker exited before serving /metrics")
		}
		base = "http://" + a
	case <-time.After(2 * time.Minute):
		return nil, errors.New("the worker did not serve /metrics within 2 minutes")
	}
	deadline := time.Now().Add(time.Minute)
	for {
		status, _, err := get(base + "/readyz")
		if err == nil && status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the worker is not ready after a minute: %d %v", status, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	status, body, err := get(base + "/metrics")
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d %v", status, err)
	}
	return parseExposition(body)
}

// workerlessEnv is the test's environment without the variables the worker
// reads, so that the developer's own settings cannot leak into the run.
func workerlessEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "NATS_") || strings.HasPrefix(name, "WORKER_") || strings.HasPrefix(name, "OTEL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func get(url string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// seriesLine is one sample of the Prometheus text format: a name, optional
// labels, a value.
var (
	seriesLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+`)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// parseExposition reads the Prometheus text format into the label sets of
// each series (histogram _bucket, _sum and _count series by their own names,
// as PromQL sees them).
func parseExposition(text string) (exposition, error) {
	out := exposition{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := seriesLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("/metrics: unreadable line %q", line)
		}
		labels := map[string]string{}
		for _, lp := range labelPair.FindAllStringSubmatch(m[3], -1) {
			labels[lp[1]] = lp[2]
		}
		out[m[1]] = append(out[m[1]], labels)
	}
	if len(out) == 0 {
		return nil, errors.New("/metrics: no series")
	}
	return out, nil
}
