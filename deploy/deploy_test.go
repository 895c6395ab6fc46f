// Package deploy_test checks the deployment files against each other and
// against the worker: the Kubernetes manifests (rendered with kustomize in
// process, decoded strictly into their API types), docker-compose.yml and the
// Dockerfile. It needs only Go: kubectl, when present, is an extra check.
package deploy_test

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/yaml"
)

// The kustomizations, relative to this directory.
const (
	baseDir      = "base"
	prodDir      = "overlays/prod"
	jetstreamDir = "base/jetstream"
)

// Names the manifests and the worker agree on.
const (
	deploymentName  = "spanferry-worker"
	containerName   = "worker"
	httpPortName    = "http"
	livenessPath    = "/healthz"
	readinessPath   = "/readyz"
	metricsPath     = "/metrics"
	otlpSecret      = "spanferry-otlp"
	natsSecret      = "spanferry-nats"
	natsCredsSecret = "spanferry-nats-creds"
	imageRepo       = "ghcr.io/spanferry/spanferry"
	// Seconds the kubelet must leave the worker beyond
	// WORKER_SHUTDOWN_TIMEOUT to exit after acknowledging.
	shutdownMargin = 5 * time.Second
)

// runtimeEnv are variables the Go runtime reads, not the worker's
// configuration; the Deployment may set them.
var runtimeEnv = map[string]bool{"GOMEMLIMIT": true}

// natsJetStreamMetadata are the metadata keys of KEDA's nats-jetstream
// scaler; KEDA ignores others, so a misspelt key would silently not apply.
var natsJetStreamMetadata = map[string]bool{
	"natsServerMonitoringEndpoint": true, "account": true, "stream": true, "consumer": true,
	"lagThreshold": true, "activationLagThreshold": true, "useHttps": true,
}

// secretEnv are variables whose values are secrets: never in a ConfigMap,
// never inline, only from a Secret.
var secretEnv = []string{"OTEL_EXPORTER_OTLP_HEADERS", "NATS_USER", "NATS_PASSWORD", "NATS_TOKEN"}

// fileEnv are variables that name a file with secret content, which must
// come from a mounted Secret.
var fileEnv = []string{"NATS_CREDS", "NATS_NKEY_SEED", "NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY"}

// object is one rendered resource.
type object struct {
	APIVersion, Kind, Namespace, Name string
	YAML                              []byte
}

func (o object) id() string {
	return fmt.Sprintf("%s %s %s/%s", o.APIVersion, o.Kind, o.Namespace, o.Name)
}

// render builds the kustomization in dir with the kustomize API, the engine
// `kubectl kustomize` embeds.
func render(dir string) ([]object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	var objs []object
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: %s: %w", dir, r.CurId(), err)
		}
		objs = append(objs, object{
			APIVersion: r.GetApiVersion(), Kind: r.GetKind(),
			Namespace: r.GetNamespace(), Name: r.GetName(), YAML: y,
		})
	}
	return objs, nil
}

func mustRender(t testing.TB, dir string) []object {
	t.Helper()
	objs, err := render(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatalf("kustomize %s rendered nothing", dir)
	}
	return objs
}

// decodeStrict decodes y into v, failing on any field v does not have.
func decodeStrict(o object, v any) error {
	if err := yaml.UnmarshalStrict(o.YAML, v); err != nil {
		return fmt.Errorf("%s: strict decode: %w", o.id(), err)
	}
	return nil
}

// workerSet is the worker's kustomization (base or an overlay), decoded.
type workerSet struct {
	Namespace    *corev1.Namespace
	Deployment   *appsv1.Deployment
	ConfigMap    *corev1.ConfigMap
	Service      *corev1.Service
	PDB          *policyv1.PodDisruptionBudget
	ScaledObject *ScaledObject
}

// decodeWorkerSet decodes every object strictly into its type. Any other
// kind, or a kind twice, is an error.
func decodeWorkerSet(objs []object) (*workerSet, error) {
	ws := &workerSet{}
	for _, o := range objs {
		var target any
		switch o.APIVersion + " " + o.Kind {
		case "v1 Namespace":
			target = setOnce(&ws.Namespace)
		case "apps/v1 Deployment":
			target = setOnce(&ws.Deployment)
		case "v1 ConfigMap":
			target = setOnce(&ws.ConfigMap)
		case "v1 Service":
			target = setOnce(&ws.Service)
		case "policy/v1 PodDisruptionBudget":
			target = setOnce(&ws.PDB)
		case "keda.sh/v1alpha1 ScaledObject":
			target = setOnce(&ws.ScaledObject)
		default:
			return nil, fmt.Errorf("%s: unexpected kind in the worker's manifests", o.id())
		}
		if target == nil {
			return nil, fmt.Errorf("%s: a second %s; the checks expect one", o.id(), o.Kind)
		}
		if err := decodeStrict(o, target); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// setOnce allocates *p and returns it, or returns nil when *p is already set.
func setOnce[T any](p **T) any {
	if *p != nil {
		return nil
	}
	*p = new(T)
	return *p
}

// jetstreamSet is the NACK kustomization, decoded.
type jetstreamSet struct {
	Streams   []*Stream
	Consumers []*Consumer
}

func decodeJetStreamSet(objs []object) (*jetstreamSet, error) {
	js := &jetstreamSet{}
	for _, o := range objs {
		switch o.APIVersion + " " + o.Kind {
		case "jetstream.nats.io/v1beta2 Stream":
			s := new(Stream)
			if err := decodeStrict(o, s); err != nil {
				return nil, err
			}
			js.Streams = append(js.Streams, s)
		case "jetstream.nats.io/v1beta2 Consumer":
			c := new(Consumer)
			if err := decodeStrict(o, c); err != nil {
				return nil, err
			}
			js.Consumers = append(js.Consumers, c)
		default:
			return nil, fmt.Errorf("%s: unexpected kind in the JetStream manifests", o.id())
		}
	}
	return js, nil
}

func mustWorkerSet(t testing.TB, dir string) *workerSet {
	t.Helper()
	ws, err := decodeWorkerSet(mustRender(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func mustJetStreamSet(t testing.TB) *jetstreamSet {
	t.Helper()
	js, err := decodeJetStreamSet(mustRender(t, jetstreamDir))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// workerContainer returns the worker's container, or nil.
func workerContainer(ws *workerSet) *corev1.Container {
	if ws.Deployment == nil {
		return nil
	}
	cs := ws.Deployment.Spec.Template.Spec.Containers
	for i := range cs {
		if cs[i].Name == containerName {
			return &cs[i]
		}
	}
	return nil
}

// workerEnv is the environment the worker sees: the configuration defaults,
// then the ConfigMap, then the container's literal env entries (which
// Kubernetes gives precedence over envFrom). Entries with valueFrom are left
// out of the values and listed in fromRefs.
func workerEnv(ws *workerSet) (env map[string]string, fromRefs map[string]*corev1.EnvVarSource) {
	env = configDefaults()
	fromRefs = map[string]*corev1.EnvVarSource{}
	if ws.ConfigMap != nil {
		for k, v := range ws.ConfigMap.Data {
			env[k] = v
		}
	}
	if c := workerContainer(ws); c != nil {
		for _, e := range c.Env {
			if e.ValueFrom != nil {
				fromRefs[e.Name] = e.ValueFrom
				delete(env, e.Name)
				continue
			}
			env[e.Name] = e.Value
		}
	}
	return env, fromRefs
}

// checkWorker checks the worker's manifests (base or an overlay) for wiring.
func checkWorker(ws *workerSet) problems {
	var p problems
	dep, cm, svc, pdb, so := ws.Deployment, ws.ConfigMap, ws.Service, ws.PDB, ws.ScaledObject
	for name, missing := range map[string]bool{
		"Deployment": dep == nil, "ConfigMap": cm == nil, "Service": svc == nil,
		"PodDisruptionBudget": pdb == nil, "ScaledObject": so == nil,
	} {
		if missing {
			p.addf("no %s rendered", name)
		}
	}
	if len(p) > 0 {
		return p
	}
	c := workerContainer(ws)
	if dep.Name != deploymentName {
		p.addf("Deployment is named %q, want %q", dep.Name, deploymentName)
	}
	if c == nil {
		p.addf("Deployment has no container %q", containerName)
		return p
	}
	pod := dep.Spec.Template.Spec
	podLabels := labels.Set(dep.Spec.Template.Labels)
	if sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(podLabels) {
		p.addf("Deployment selector %v does not select its pod labels %v (%v)", dep.Spec.Selector, podLabels, err)
	}

	// The command line (CONTRACT §5): the image's ENTRYPOINT is the worker.
	if len(c.Command) > 0 {
		p.addf("container command %q overrides the image's ENTRYPOINT", c.Command)
	}
	if len(c.Args) == 0 || c.Args[0] != "run" {
		p.addf("container args %q: want the run subcommand", c.Args)
	}
	if !strings.HasPrefix(c.Image, imageRepo+":") && !strings.HasPrefix(c.Image, imageRepo+"@") {
		p.addf("container image %q is not %s with a tag or digest", c.Image, imageRepo)
	}

	// Configuration: one ConfigMap, every name one the worker reads.
	if n := len(c.EnvFrom); n != 1 || c.EnvFrom[0].ConfigMapRef == nil {
		p.addf("container envFrom: want exactly the worker's ConfigMap, got %d sources", n)
	} else if ref := c.EnvFrom[0].ConfigMapRef; ref.Name != cm.Name || (ref.Optional != nil && *ref.Optional) || c.EnvFrom[0].Prefix != "" {
		p.addf("container envFrom refers to ConfigMap %q (optional %v, prefix %q), the rendered ConfigMap is %q",
			ref.Name, ref.Optional, c.EnvFrom[0].Prefix, cm.Name)
	}
	names := knownNames()
	for k := range cm.Data {
		if !names[k] {
			p.addf("ConfigMap key %s is not a variable the worker reads (config.Names)", k)
		}
	}
	for k := range cm.BinaryData {
		p.addf("ConfigMap binaryData %s: the worker reads text variables only", k)
	}
	for _, e := range c.Env {
		if !names[e.Name] && !runtimeEnv[e.Name] {
			p.addf("container env %s is not a variable the worker reads (config.Names)", e.Name)
		}
	}
	env, fromRefs := workerEnv(ws)

	// The HTTP server: one named port, probes on it, the address it listens on.
	port, err := addrPort(env["WORKER_HTTP_ADDR"])
	if err != nil {
		p.addf("WORKER_HTTP_ADDR %q: %v", env["WORKER_HTTP_ADDR"], err)
	}
	var httpPort *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == httpPortName {
			httpPort = &c.Ports[i]
		}
	}
	if httpPort == nil {
		p.addf("container has no port named %q", httpPortName)
	} else if int(httpPort.ContainerPort) != port {
		p.addf("container port %q is %d but WORKER_HTTP_ADDR is %q", httpPortName, httpPort.ContainerPort, env["WORKER_HTTP_ADDR"])
	}
	checkProbe(&p, "livenessProbe", c.LivenessProbe, livenessPath)
	checkProbe(&p, "readinessProbe", c.ReadinessProbe, readinessPath)

	// Graceful shutdown.
	shutdown, err := time.ParseDuration(env["WORKER_SHUTDOWN_TIMEOUT"])
	if err != nil {
		p.addf("WORKER_SHUTDOWN_TIMEOUT %q: %v", env["WORKER_SHUTDOWN_TIMEOUT"], err)
	}
	grace := 30 * time.Second // the Kubernetes default
	if pod.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	}
	if grace < shutdown+shutdownMargin {
		p.addf("terminationGracePeriodSeconds %s leaves less than %s beyond WORKER_SHUTDOWN_TIMEOUT %s: the worker would be killed mid-drain",
			grace, shutdownMargin, shutdown)
	}

	checkSecurity(&p, pod, c)
	checkResources(&p, c)
	checkDataDir(&p, pod, c, env["WORKER_DATA_DIR"])
	checkSecrets(&p, ws, env, fromRefs)

	// Streams are NACK's (see README): the worker must not create them.
	if env["WORKER_CREATE_STREAM"] != "false" {
		p.addf("WORKER_CREATE_STREAM is %q, want false: the streams are declared in %s", env["WORKER_CREATE_STREAM"], jetstreamDir)
	}
	if env["WORKER_EXPORTER"] != "otlp" {
		p.addf("WORKER_EXPORTER is %q, want otlp", env["WORKER_EXPORTER"])
	}
	if u, err := url.Parse(env["OTEL_EXPORTER_OTLP_ENDPOINT"]); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.addf("OTEL_EXPORTER_OTLP_ENDPOINT %q is not an http(s) URL", env["OTEL_EXPORTER_OTLP_ENDPOINT"])
	}
	if env["NATS_URL"] == "" {
		p.addf("NATS_URL is empty: the worker would start an embedded server in each pod")
	}

	checkService(&p, svc, podLabels, httpPort)
	checkKEDA(&p, so, dep, env)
	checkPDB(&p, pdb, podLabels, so)
	return p
}

func checkProbe(p *problems, which string, pr *corev1.Probe, wantPath string) {
	if pr == nil || pr.HTTPGet == nil {
		p.addf("%s: want an httpGet probe on %s", which, wantPath)
		return
	}
	if pr.HTTPGet.Path != wantPath {
		p.addf("%s path is %q, want %q", which, pr.HTTPGet.Path, wantPath)
	}
	if pr.HTTPGet.Port.Type != intstr.String || pr.HTTPGet.Port.StrVal != httpPortName {
		p.addf("%s port is %q, want the named port %q", which, pr.HTTPGet.Port.String(), httpPortName)
	}
}

func checkSecurity(p *problems, pod corev1.PodSpec, c *corev1.Container) {
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		p.addf("automountServiceAccountToken must be false: the worker never talks to the API server")
	}
	psc, csc := pod.SecurityContext, c.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	nonRoot := psc.RunAsNonRoot
	if csc.RunAsNonRoot != nil {
		nonRoot = csc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		p.addf("runAsNonRoot must be true")
	}
	user := psc.RunAsUser
	if csc.RunAsUser != nil {
		user = csc.RunAsUser
	}
	if user == nil || *user != 65532 {
		p.addf("runAsUser must be 65532, the image's nonroot user")
	}
	if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		p.addf("readOnlyRootFilesystem must be true")
	}
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		p.addf("allowPrivilegeEscalation must be false")
	}
	if csc.Privileged != nil && *csc.Privileged {
		p.addf("the container must not be privileged")
	}
	if csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") || len(csc.Capabilities.Add) > 0 {
		p.addf("capabilities must drop ALL and add none")
	}
	seccomp := psc.SeccompProfile
	if csc.SeccompProfile != nil {
		seccomp = csc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p.addf("seccompProfile must be RuntimeDefault")
	}
}

func checkResources(p *problems, c *corev1.Container) {
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[res]
		lim, okLim := c.Resources.Limits[res]
		if !okReq || !okLim {
			p.addf("resources: want a %s request and limit", res)
			continue
		}
		if req.Cmp(lim) > 0 {
			p.addf("resources: %s request %s above its limit %s", res, req.String(), lim.String())
		}
	}
}

// checkDataDir: with a read-only root filesystem, WORKER_DATA_DIR must be a
// writable emptyDir mount.
func checkDataDir(p *problems, pod corev1.PodSpec, c *corev1.Container, dir string) {
	vol := mountedVolume(pod, c, dir)
	if vol == nil || vol.EmptyDir == nil {
		p.addf("WORKER_DATA_DIR %q is not an emptyDir mount of the container", dir)
		return
	}
	for _, m := range c.VolumeMounts {
		if m.MountPath == path.Clean(dir) && m.ReadOnly {
			p.addf("WORKER_DATA_DIR %q is mounted read-only", dir)
		}
	}
}

// mountedVolume returns the volume mounted at dir or at a parent of it.
func mountedVolume(pod corev1.PodSpec, c *corev1.Container, dir string) *corev1.Volume {
	if dir == "" || !path.IsAbs(dir) {
		return nil
	}
	dir = path.Clean(dir)
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		mp := path.Clean(m.MountPath)
		if (dir == mp || strings.HasPrefix(dir, mp+"/")) && (best == nil || len(mp) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	if best == nil {
		return nil
	}
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == best.Name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

// checkSecrets: secrets by reference only, the OTLP headers and NATS
// credentials wired to the secrets the README tells operators to create.
func checkSecrets(p *problems, ws *workerSet, env map[string]string, fromRefs map[string]*corev1.EnvVarSource) {
	c := workerContainer(ws)
	pod := ws.Deployment.Spec.Template.Spec
	for _, name := range secretEnv {
		if _, ok := ws.ConfigMap.Data[name]; ok {
			p.addf("%s is in the ConfigMap: secrets belong in a Secret", name)
		}
		for _, e := range c.Env {
			if e.Name == name && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				p.addf("env %s is not a secretKeyRef: secret values are never inline", name)
			}
		}
	}
	wantRef := map[string][2]string{
		"OTEL_EXPORTER_OTLP_HEADERS": {otlpSecret, "headers"},
		"NATS_USER":                  {natsSecret, "user"},
		"NATS_PASSWORD":              {natsSecret, "password"},
	}
	for name, want := range wantRef {
		src := fromRefs[name]
		if src == nil || src.SecretKeyRef == nil {
			p.addf("env %s: want a secretKeyRef to secret %s key %s", name, want[0], want[1])
			continue
		}
		ref := src.SecretKeyRef
		if ref.Name != want[0] || ref.Key != want[1] {
			p.addf("env %s refers to secret %s key %s, want %s key %s", name, ref.Name, ref.Key, want[0], want[1])
		}
		if ref.Optional == nil || !*ref.Optional {
			p.addf("env %s: the secret reference must be optional, so that the worker starts without it", name)
		}
	}

	// The NATS .creds secret is mounted (optional in the base), and any
	// variable naming a secret file points into a mounted Secret.
	var creds *corev1.Volume
	for i := range pod.Volumes {
		if s := pod.Volumes[i].Secret; s != nil && s.SecretName == natsCredsSecret {
			creds = &pod.Volumes[i]
		}
	}
	if creds == nil {
		p.addf("no volume of secret %s for NATS_CREDS", natsCredsSecret)
	} else if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == creds.Name && m.ReadOnly }) {
		p.addf("volume %s (secret %s) is not mounted read-only in the container", creds.Name, natsCredsSecret)
	}
	for _, name := range fileEnv {
		if _, ok := fromRefs[name]; ok {
			p.addf("env %s is a file path, not a secret value: set it in the ConfigMap", name)
		}
		file := env[name]
		if file == "" {
			continue
		}
		vol := mountedVolume(pod, c, file)
		if vol == nil || vol.Secret == nil {
			p.addf("%s %q is not inside a mounted Secret", name, file)
			continue
		}
		if vol.Secret.Optional != nil && *vol.Secret.Optional {
			p.addf("%s is set but its secret %s is optional: a missing secret would crash-loop the worker on a missing file", name, vol.Secret.SecretName)
		}
		if items := vol.Secret.Items; len(items) > 0 && !slices.ContainsFunc(items, func(it corev1.KeyToPath) bool { return path.Base(file) == path.Base(it.Path) }) {
			p.addf("%s %q names no item of secret %s", name, file, vol.Secret.SecretName)
		}
	}
}

func checkService(p *problems, svc *corev1.Service, podLabels labels.Set, httpPort *corev1.ContainerPort) {
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		p.addf("Service %s selector %v does not select the worker's pods %v", svc.Name, svc.Spec.Selector, podLabels)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Name == httpPortName {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		p.addf("Service %s has no port named %q", svc.Name, httpPortName)
	} else if httpPort != nil {
		tp := sp.TargetPort
		if !(tp.Type == intstr.String && tp.StrVal == httpPort.Name) && !(tp.Type == intstr.Int && tp.IntVal == httpPort.ContainerPort) {
			p.addf("Service %s port %q targets %q, not the container's %s port", svc.Name, httpPortName, tp.String(), httpPortName)
		}
	}
	a := svc.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != metricsPath {
		p.addf("Service %s: want annotations prometheus.io/scrape \"true\" and prometheus.io/path %s", svc.Name, metricsPath)
	}
	if httpPort != nil && a["prometheus.io/port"] != strconv.Itoa(int(httpPort.ContainerPort)) {
		p.addf("Service %s annotation prometheus.io/port %q is not the container's port %d", svc.Name, a["prometheus.io/port"], httpPort.ContainerPort)
	}
}

func checkKEDA(p *problems, so *ScaledObject, dep *appsv1.Deployment, env map[string]string) {
	ref := so.Spec.ScaleTargetRef
	if ref.Name != dep.Name || (ref.Kind != "" && ref.Kind != "Deployment") || (ref.APIVersion != "" && ref.APIVersion != "apps/v1") {
		p.addf("ScaledObject targets %s %s %q, not the Deployment %q", ref.APIVersion, ref.Kind, ref.Name, dep.Name)
	}
	minR, maxR := so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount
	if minR == nil || maxR == nil {
		p.addf("ScaledObject: set minReplicaCount and maxReplicaCount explicitly")
		return
	}
	if *minR < 0 || *maxR < 1 || *minR > *maxR {
		p.addf("ScaledObject replicas: min %d, max %d", *minR, *maxR)
	}
	if r := dep.Spec.Replicas; r != nil && (*r < *minR || *r > *maxR) {
		p.addf("Deployment replicas %d outside the ScaledObject's [%d, %d]", *r, *minR, *maxR)
	}
	var found bool
	for _, tr := range so.Spec.Triggers {
		if tr.Type != "nats-jetstream" {
			continue
		}
		found = true
		m := tr.Metadata
		for k := range m {
			if !natsJetStreamMetadata[k] {
				p.addf("ScaledObject nats-jetstream trigger: unknown metadata %q", k)
			}
		}
		if m["stream"] != env["WORKER_STREAM"] || m["consumer"] != env["WORKER_DURABLE"] {
			p.addf("ScaledObject trigger watches stream %q consumer %q, the worker consumes %q / %q",
				m["stream"], m["consumer"], env["WORKER_STREAM"], env["WORKER_DURABLE"])
		}
		if m["account"] == "" {
			p.addf("ScaledObject trigger: no account")
		}
		if ep := m["natsServerMonitoringEndpoint"]; strings.Contains(ep, "://") || !strings.Contains(ep, ":") {
			p.addf("ScaledObject natsServerMonitoringEndpoint %q: want host:port without a scheme", ep)
		}
		if n, err := strconv.Atoi(m["lagThreshold"]); err != nil || n < 1 {
			p.addf("ScaledObject lagThreshold %q is not a positive integer", m["lagThreshold"])
		}
	}
	if !found {
		p.addf("ScaledObject has no nats-jetstream trigger")
	}
	adv := so.Spec.Advanced
	if adv == nil || adv.HorizontalPodAutoscalerConfig == nil || adv.HorizontalPodAutoscalerConfig.Behavior == nil ||
		adv.HorizontalPodAutoscalerConfig.Behavior.ScaleDown == nil ||
		adv.HorizontalPodAutoscalerConfig.Behavior.ScaleDown.StabilizationWindowSeconds == nil ||
		*adv.HorizontalPodAutoscalerConfig.Behavior.ScaleDown.StabilizationWindowSeconds <= 0 {
		p.addf("ScaledObject: want a positive scale-down stabilizationWindowSeconds in advanced.horizontalPodAutoscalerConfig.behavior")
	}
}

func checkPDB(p *problems, pdb *policyv1.PodDisruptionBudget, podLabels labels.Set, so *ScaledObject) {
	if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(podLabels) {
		p.addf("PodDisruptionBudget selector %v does not select the worker's pods %v (%v)", pdb.Spec.Selector, podLabels, err)
	}
	switch {
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MaxUnavailable != nil:
		p.addf("PodDisruptionBudget sets both minAvailable and maxUnavailable")
	case pdb.Spec.MaxUnavailable != nil:
		if v := pdb.Spec.MaxUnavailable; v.Type != intstr.Int || v.IntVal < 1 {
			p.addf("PodDisruptionBudget maxUnavailable %s: want a whole number of at least 1", v.String())
		}
	case pdb.Spec.MinAvailable != nil:
		v := pdb.Spec.MinAvailable
		var minR int32 // KEDA's default
		if so.Spec.MinReplicaCount != nil {
			minR = *so.Spec.MinReplicaCount
		}
		if v.Type != intstr.Int || v.IntVal >= minR {
			p.addf("PodDisruptionBudget minAvailable %s would block node drains at the ScaledObject's minReplicaCount %d", v.String(), minR)
		}
	default:
		p.addf("PodDisruptionBudget sets neither minAvailable nor maxUnavailable")
	}
}

// checkJetStream checks the NACK streams and consumer against the worker's
// configuration and its autoscaling.
func checkJetStream(js *jetstreamSet, ws *workerSet) problems {
	var p problems
	env, _ := workerEnv(ws)
	find := func(name string) *Stream {
		for _, s := range js.Streams {
			if s.Spec.Name == name {
				return s
			}
		}
		return nil
	}
	subjects := listValue(env["WORKER_SUBJECTS"])
	dlqSubject := env["WORKER_DLQ_SUBJECT"]

	main := find(env["WORKER_STREAM"])
	if main == nil {
		p.addf("no Stream named WORKER_STREAM %q", env["WORKER_STREAM"])
	} else {
		checkStream(&p, main)
		for _, s := range subjects {
			if !slices.ContainsFunc(main.Spec.Subjects, func(pat string) bool { return subjectCovers(pat, s) }) {
				p.addf("Stream %s subjects %q do not hold WORKER_SUBJECTS %q", main.Spec.Name, main.Spec.Subjects, s)
			}
		}
		for _, pat := range main.Spec.Subjects {
			if subjectsOverlap(pat, dlqSubject) {
				p.addf("Stream %s subject %q captures the dead-letter subject %q", main.Spec.Name, pat, dlqSubject)
			}
		}
	}
	dlq := find(env["WORKER_DLQ_STREAM"])
	if dlq == nil {
		p.addf("no Stream named WORKER_DLQ_STREAM %q", env["WORKER_DLQ_STREAM"])
	} else {
		checkStream(&p, dlq)
		if !slices.ContainsFunc(dlq.Spec.Subjects, func(pat string) bool { return subjectCovers(pat, dlqSubject) }) {
			p.addf("Stream %s subjects %q do not hold WORKER_DLQ_SUBJECT %q", dlq.Spec.Name, dlq.Spec.Subjects, dlqSubject)
		}
	}
	if len(js.Streams) != 2 {
		p.addf("%d Streams, want the results and the dead-letter stream", len(js.Streams))
	}

	if len(js.Consumers) != 1 {
		p.addf("%d Consumers, want the worker's durable", len(js.Consumers))
		return p
	}
	c := js.Consumers[0].Spec
	if c.DurableName != env["WORKER_DURABLE"] || c.StreamName != env["WORKER_STREAM"] {
		p.addf("Consumer is %s on stream %s, the worker uses WORKER_DURABLE %q on WORKER_STREAM %q",
			c.DurableName, c.StreamName, env["WORKER_DURABLE"], env["WORKER_STREAM"])
	}
	if c.DeliverSubject != "" {
		p.addf("Consumer has deliverSubject %q: the worker needs a pull consumer", c.DeliverSubject)
	}
	if c.AckPolicy != "explicit" {
		p.addf("Consumer ackPolicy %q, want explicit", c.AckPolicy)
	}
	if c.DeliverPolicy != "all" {
		p.addf("Consumer deliverPolicy %q, want all", c.DeliverPolicy)
	}
	filters := c.FilterSubjects
	if c.FilterSubject != "" {
		filters = append([]string{c.FilterSubject}, filters...)
	}
	if !slices.Equal(slices.Sorted(slices.Values(filters)), slices.Sorted(slices.Values(subjects))) {
		p.addf("Consumer filters %q, the worker's WORKER_SUBJECTS are %q", filters, subjects)
	}
	ackWait, err1 := time.ParseDuration(c.AckWait)
	want, err2 := time.ParseDuration(env["WORKER_ACK_WAIT"])
	if err1 != nil || err2 != nil || ackWait != want {
		p.addf("Consumer ackWait %q differs from WORKER_ACK_WAIT %q: the worker's InProgress schedule assumes its own", c.AckWait, env["WORKER_ACK_WAIT"])
	}
	if c.MaxDeliver != -1 {
		p.addf("Consumer maxDeliver %d, want -1: a receiver outage must not exhaust deliveries", c.MaxDeliver)
	}
	batch, err := strconv.Atoi(env["WORKER_BATCH_SIZE"])
	if so := ws.ScaledObject; err != nil || so == nil || so.Spec.MaxReplicaCount == nil {
		p.addf("cannot size maxAckPending: WORKER_BATCH_SIZE %q, ScaledObject %v", env["WORKER_BATCH_SIZE"], so != nil)
	} else if need := int(*so.Spec.MaxReplicaCount) * batch; c.MaxAckPending < need {
		p.addf("Consumer maxAckPending %d below maxReplicaCount %d × WORKER_BATCH_SIZE %d = %d: replicas would starve",
			c.MaxAckPending, *so.Spec.MaxReplicaCount, batch, need)
	}
	return p
}

func checkStream(p *problems, s *Stream) {
	if s.Spec.Storage != "file" {
		p.addf("Stream %s storage %q, want file", s.Spec.Name, s.Spec.Storage)
	}
	if s.Spec.Retention != "" && s.Spec.Retention != "limits" {
		p.addf("Stream %s retention %q, want limits (replay needs the results kept)", s.Spec.Name, s.Spec.Retention)
	}
	if d, err := time.ParseDuration(s.Spec.MaxAge); err != nil || d <= 0 {
		p.addf("Stream %s maxAge %q is not a positive duration", s.Spec.Name, s.Spec.MaxAge)
	}
	if d, err := time.ParseDuration(s.Spec.DuplicateWindow); err != nil || d <= 0 {
		p.addf("Stream %s duplicateWindow %q is not a positive duration", s.Spec.Name, s.Spec.DuplicateWindow)
	}
	if s.Spec.Replicas < 1 || s.Spec.Replicas > 5 {
		p.addf("Stream %s replicas %d, want 1 to 5", s.Spec.Name, s.Spec.Replicas)
	}
}

func TestKustomizations(t *testing.T) {
	for _, dir := range []string{baseDir, prodDir, jetstreamDir} {
		t.Run(dir, func(t *testing.T) {
			objs := mustRender(t, dir)
			switch dir {
			case jetstreamDir:
				js, err := decodeJetStreamSet(objs)
				if err != nil {
					t.Fatal(err)
				}
				for _, worker := range []string{baseDir, prodDir} {
					t.Run("against "+worker, func(t *testing.T) {
						checkJetStream(js, mustWorkerSet(t, worker)).report(t)
					})
				}
			default:
				ws, err := decodeWorkerSet(objs)
				if err != nil {
					t.Fatal(err)
				}
				checkWorker(ws).report(t)
			}
			t.Run("kubectl", func(t *testing.T) {
				checkKubectl(t, dir, objs)
			})
		})
	}
}

// checkKubectl renders dir with kubectl's embedded kustomize, when kubectl is
// installed, and compares the objects with the in-process render.
func checkKubectl(t *testing.T, dir string, objs []object) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not on PATH; the in-process kustomize render covers the manifests")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, kubectl, "kustomize", dir).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr)
	}
	nodes, err := kio.FromBytes(out)
	if err != nil {
		t.Fatalf("kubectl kustomize %s: parse output: %v", dir, err)
	}
	var got, want []string
	for _, n := range nodes {
		got = append(got, object{APIVersion: n.GetApiVersion(), Kind: n.GetKind(), Namespace: n.GetNamespace(), Name: n.GetName()}.id())
	}
	for _, o := range objs {
		want = append(want, o.id())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("kubectl kustomize %s renders\n  %s\nthe kustomize API renders\n  %s", dir, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestUnexpectedKindFails: an object the checks do not know is an error, not
// something skipped.
func TestUnexpectedKindFails(t *testing.T) {
	extra := object{APIVersion: "v1", Kind: "Secret", Name: "oops", YAML: []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: oops\n")}
	if _, err := decodeWorkerSet(append(mustRender(t, baseDir), extra)); err == nil {
		t.Error("a Secret among the worker's manifests was accepted")
	}
	if _, err := decodeJetStreamSet(append(mustRender(t, jetstreamDir), extra)); err == nil {
		t.Error("a Secret among the JetStream manifests was accepted")
	}
	// And an unknown field in a known kind.
	objs := mustRender(t, baseDir)
	for i, o := range objs {
		if o.Kind == "ScaledObject" {
			objs[i].YAML = []byte(strings.Replace(string(o.YAML), "minReplicaCount:", "minReplicas:", 1))
		}
	}
	if _, err := decodeWorkerSet(objs); err == nil {
		t.Error("a ScaledObject with a misspelt field was accepted")
	}
}

// TestWorkerChecksCatchMistakes proves each wiring check can fail: every
// mutation of the rendered base must be reported.
func TestWorkerChecksCatchMistakes(t *testing.T) {
	objs := mustRender(t, baseDir)
	if p := checkWorker(mustDecodeWorker(t, objs)); len(p) > 0 {
		t.Fatalf("the base itself has problems: %q", p)
	}
	ptr := func(b bool) *bool { return &b }
	i32 := func(v int32) *int32 { return &v }
	env := func(ws *workerSet, name string) *corev1.EnvVar {
		c := workerContainer(ws)
		for i := range c.Env {
			if c.Env[i].Name == name {
				return &c.Env[i]
			}
		}
		t.Fatalf("no env %s in the base", name)
		return nil
	}
	mutations := []struct {
		name   string
		mutate func(ws *workerSet)
		want   string
	}{
		{"readiness path renamed", func(ws *workerSet) { workerContainer(ws).ReadinessProbe.HTTPGet.Path = "/ready" }, "readinessProbe path"},
		{"liveness path renamed", func(ws *workerSet) { workerContainer(ws).LivenessProbe.HTTPGet.Path = "/health" }, "livenessProbe path"},
		{"probe on a number", func(ws *workerSet) { workerContainer(ws).ReadinessProbe.HTTPGet.Port = intstr.FromInt32(8080) }, "readinessProbe port"},
		{"container port moved", func(ws *workerSet) { workerContainer(ws).Ports[0].ContainerPort = 9090 }, "WORKER_HTTP_ADDR"},
		{"port renamed", func(ws *workerSet) { workerContainer(ws).Ports[0].Name = "web" }, "no port named"},
		{"listen address moved", func(ws *workerSet) { ws.ConfigMap.Data["WORKER_HTTP_ADDR"] = ":9090" }, "WORKER_HTTP_ADDR"},
		{"grace period too short", func(ws *workerSet) { ws.Deployment.Spec.Template.Spec.TerminationGracePeriodSeconds = ptrInt64(30) }, "terminationGracePeriodSeconds"},
		{"shutdown timeout too long", func(ws *workerSet) { ws.ConfigMap.Data["WORKER_SHUTDOWN_TIMEOUT"] = "1m" }, "terminationGracePeriodSeconds"},
		{"root allowed", func(ws *workerSet) {
			ws.Deployment.Spec.Template.Spec.SecurityContext.RunAsNonRoot = ptr(false)
			workerContainer(ws).SecurityContext.RunAsNonRoot = nil
		}, "runAsNonRoot"},
		{"writable root", func(ws *workerSet) { workerContainer(ws).SecurityContext.ReadOnlyRootFilesystem = ptr(false) }, "readOnlyRootFilesystem"},
		{"token mounted", func(ws *workerSet) { ws.Deployment.Spec.Template.Spec.AutomountServiceAccountToken = ptr(true) }, "automountServiceAccountToken"},
		{"escalation allowed", func(ws *workerSet) { workerContainer(ws).SecurityContext.AllowPrivilegeEscalation = nil }, "allowPrivilegeEscalation"},
		{"capabilities kept", func(ws *workerSet) { workerContainer(ws).SecurityContext.Capabilities = nil }, "capabilities"},
		{"no seccomp", func(ws *workerSet) { ws.Deployment.Spec.Template.Spec.SecurityContext.SeccompProfile = nil }, "seccompProfile"},
		{"no limits", func(ws *workerSet) { workerContainer(ws).Resources.Limits = nil }, "resources"},
		{"data dir not mounted", func(ws *workerSet) { ws.ConfigMap.Data["WORKER_DATA_DIR"] = "/var/lib/spanferry" }, "WORKER_DATA_DIR"},
		{"unknown ConfigMap key", func(ws *workerSet) { ws.ConfigMap.Data["WORKER_STREEM"] = "X" }, "WORKER_STREEM"},
		{"unknown env entry", func(ws *workerSet) {
			c := workerContainer(ws)
			c.Env = append(c.Env, corev1.EnvVar{Name: "NATS_SERVERS", Value: "nats://x"})
		}, "NATS_SERVERS"},
		{"OTLP headers inline", func(ws *workerSet) {
			*env(ws, "OTEL_EXPORTER_OTLP_HEADERS") = corev1.EnvVar{Name: "OTEL_EXPORTER_OTLP_HEADERS", Value: "authorization=Bearer x"}
		}, "OTEL_EXPORTER_OTLP_HEADERS"},
		{"OTLP headers in the ConfigMap", func(ws *workerSet) { ws.ConfigMap.Data["OTEL_EXPORTER_OTLP_HEADERS"] = "a=b" }, "OTEL_EXPORTER_OTLP_HEADERS is in the ConfigMap"},
		{"password inline", func(ws *workerSet) {
			*env(ws, "NATS_PASSWORD") = corev1.EnvVar{Name: "NATS_PASSWORD", Value: "hunter2"}
		}, "NATS_PASSWORD"},
		{"password from the wrong secret", func(ws *workerSet) { env(ws, "NATS_PASSWORD").ValueFrom.SecretKeyRef.Name = "nats" }, "NATS_PASSWORD refers to secret"},
		{"user secret required", func(ws *workerSet) { env(ws, "NATS_USER").ValueFrom.SecretKeyRef.Optional = nil }, "must be optional"},
		{"creds path outside the secret", func(ws *workerSet) { ws.ConfigMap.Data["NATS_CREDS"] = "/data/nats.creds" }, "NATS_CREDS"},
		{"creds set with an optional secret", func(ws *workerSet) { ws.ConfigMap.Data["NATS_CREDS"] = "/etc/spanferry/nats/nats.creds" }, "crash-loop"},
		{"creds volume gone", func(ws *workerSet) {
			spec := &ws.Deployment.Spec.Template.Spec
			spec.Volumes = slices.DeleteFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Secret != nil })
		}, natsCredsSecret},
		{"worker creates streams", func(ws *workerSet) { delete(ws.ConfigMap.Data, "WORKER_CREATE_STREAM") }, "WORKER_CREATE_STREAM"},
		{"file exporter", func(ws *workerSet) { ws.ConfigMap.Data["WORKER_EXPORTER"] = "file" }, "WORKER_EXPORTER"},
		{"no NATS", func(ws *workerSet) { delete(ws.ConfigMap.Data, "NATS_URL") }, "NATS_URL"},
		{"ConfigMap not referenced", func(ws *workerSet) { ws.ConfigMap.Name = "other" }, "envFrom"},
		{"command overrides entrypoint", func(ws *workerSet) { workerContainer(ws).Command = []string{"/bin/sh"} }, "ENTRYPOINT"},
		{"no run subcommand", func(ws *workerSet) { workerContainer(ws).Args = []string{"replay"} }, "run subcommand"},
		{"Service selects nothing", func(ws *workerSet) { ws.Service.Spec.Selector = map[string]string{"app": "other"} }, "Service"},
		{"Service without http", func(ws *workerSet) { ws.Service.Spec.Ports[0].Name = "metrics" }, "no port named"},
		{"Service targets another port", func(ws *workerSet) { ws.Service.Spec.Ports[0].TargetPort = intstr.FromInt32(9090) }, "targets"},
		{"scrape port wrong", func(ws *workerSet) { ws.Service.Annotations["prometheus.io/port"] = "9090" }, "prometheus.io/port"},
		{"KEDA targets another Deployment", func(ws *workerSet) { ws.ScaledObject.Spec.ScaleTargetRef.Name = "worker" }, "ScaledObject targets"},
		{"KEDA watches another consumer", func(ws *workerSet) { ws.ScaledObject.Spec.Triggers[0].Metadata["consumer"] = "other" }, "ScaledObject trigger watches"},
		{"KEDA follows a renamed durable", func(ws *workerSet) { ws.ConfigMap.Data["WORKER_DURABLE"] = "renamed" }, "ScaledObject trigger watches"},
		{"KEDA min above max", func(ws *workerSet) { ws.ScaledObject.Spec.MinReplicaCount = i32(11) }, "ScaledObject replicas"},
		{"replicas outside KEDA's range", func(ws *workerSet) { ws.Deployment.Spec.Replicas = i32(11) }, "outside"},
		{"endpoint with scheme", func(ws *workerSet) {
			ws.ScaledObject.Spec.Triggers[0].Metadata["natsServerMonitoringEndpoint"] = "http://nats:8222"
		}, "natsServerMonitoringEndpoint"},
		{"misspelt trigger metadata", func(ws *workerSet) { ws.ScaledObject.Spec.Triggers[0].Metadata["lagTreshold"] = "5" }, "unknown metadata"},
		{"no scale-down window", func(ws *workerSet) { ws.ScaledObject.Spec.Advanced = nil }, "stabilizationWindowSeconds"},
		{"PDB selects nothing", func(ws *workerSet) { ws.PDB.Spec.Selector.MatchLabels = map[string]string{"app": "other"} }, "PodDisruptionBudget selector"},
		{"PDB blocks drains", func(ws *workerSet) {
			one := intstr.FromInt32(1)
			ws.PDB.Spec.MaxUnavailable, ws.PDB.Spec.MinAvailable = nil, &one
		}, "block node drains"},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			ws := mustDecodeWorker(t, objs)
			m.mutate(ws)
			if p := checkWorker(ws); !p.contains(m.want) {
				t.Errorf("not reported (want a problem mentioning %q); got %q", m.want, p)
			}
		})
	}
}

// TestJetStreamChecksCatchMistakes proves each NACK check can fail.
func TestJetStreamChecksCatchMistakes(t *testing.T) {
	objs := mustRender(t, jetstreamDir)
	ws := mustWorkerSet(t, prodDir)
	decode := func(t *testing.T) *jetstreamSet {
		js, err := decodeJetStreamSet(objs)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	if p := checkJetStream(decode(t), ws); len(p) > 0 {
		t.Fatalf("the JetStream manifests themselves have problems: %q", p)
	}
	stream := func(js *jetstreamSet, name string) *StreamSpec {
		for _, s := range js.Streams {
			if s.Spec.Name == name {
				return &s.Spec
			}
		}
		t.Fatalf("no stream %s", name)
		return nil
	}
	mutations := []struct {
		name   string
		mutate func(js *jetstreamSet)
		want   string
	}{
		{"durable renamed", func(js *jetstreamSet) { js.Consumers[0].Spec.DurableName = "other" }, "Consumer is other"},
		{"consumer on another stream", func(js *jetstreamSet) { js.Consumers[0].Spec.StreamName = "OTHER" }, "Consumer is"},
		{"push consumer", func(js *jetstreamSet) { js.Consumers[0].Spec.DeliverSubject = "deliver.x" }, "pull consumer"},
		{"ack none", func(js *jetstreamSet) { js.Consumers[0].Spec.AckPolicy = "none" }, "ackPolicy"},
		{"deliver new", func(js *jetstreamSet) { js.Consumers[0].Spec.DeliverPolicy = "new" }, "deliverPolicy"},
		{"narrower filter", func(js *jetstreamSet) { js.Consumers[0].Spec.FilterSubject = "workflows.results.a" }, "filters"},
		{"ack wait differs", func(js *jetstreamSet) { js.Consumers[0].Spec.AckWait = "10s" }, "ackWait"},
		{"bounded deliveries", func(js *jetstreamSet) { js.Consumers[0].Spec.MaxDeliver = 5 }, "maxDeliver"},
		{"too few ack pending", func(js *jetstreamSet) { js.Consumers[0].Spec.MaxAckPending = 1000 }, "maxAckPending"},
		{"stream renamed", func(js *jetstreamSet) { stream(js, "WORKFLOW_RESULTS").Name = "RESULTS" }, "WORKER_STREAM"},
		{"stream misses subjects", func(js *jetstreamSet) { stream(js, "WORKFLOW_RESULTS").Subjects = []string{"workflows.result.>"} }, "do not hold WORKER_SUBJECTS"},
		{"stream swallows dead letters", func(js *jetstreamSet) { stream(js, "WORKFLOW_RESULTS").Subjects = []string{"workflows.>"} }, "captures the dead-letter subject"},
		{"memory storage", func(js *jetstreamSet) { stream(js, "WORKFLOW_RESULTS").Storage = "memory" }, "storage"},
		{"work queue", func(js *jetstreamSet) { stream(js, "WORKFLOW_RESULTS").Retention = "workqueue" }, "retention"},
		{"no dedup window", func(js *jetstreamSet) { stream(js, "WORKFLOW_RESULTS").DuplicateWindow = "" }, "duplicateWindow"},
		{"dlq on another subject", func(js *jetstreamSet) { stream(js, "WORKFLOW_DLQ").Subjects = []string{"workflows.dead"} }, "WORKER_DLQ_SUBJECT"},
		{"dlq missing", func(js *jetstreamSet) { js.Streams = js.Streams[:1] }, "WORKER_DLQ_STREAM"},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			js := decode(t)
			m.mutate(js)
			if p := checkJetStream(js, ws); !p.contains(m.want) {
				t.Errorf("not reported (want a problem mentioning %q); got %q", m.want, p)
			}
		})
	}
}

func mustDecodeWorker(t testing.TB, objs []object) *workerSet {
	t.Helper()
	ws, err := decodeWorkerSet(objs)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func ptrInt64(v int64) *int64 { return &v }
