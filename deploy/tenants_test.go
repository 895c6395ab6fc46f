package deploy_test

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/spanferry/spanferry/internal/tenants"
)

const (
	tenantsDir       = "overlays/tenants"
	tenantsConfigMap = "spanferry-tenants"
	tenantsKey       = "tenants.yaml"
	tenantKeysSecret = "spanferry-tenant-keys"
)

// splitTenants takes the tenants file's ConfigMap out of the rendered
// objects, so that the rest is checked as any worker overlay is.
func splitTenants(objs []object) (rest []object, cm *corev1.ConfigMap, err error) {
	for _, o := range objs {
		if o.Kind == "ConfigMap" && strings.HasPrefix(o.Name, tenantsConfigMap) {
			cm = &corev1.ConfigMap{}
			if err := decodeStrict(o, cm); err != nil {
				return nil, nil, err
			}
			continue
		}
		rest = append(rest, o)
	}
	return rest, cm, nil
}

// checkTenants checks the wiring of WORKER_TENANTS_FILE: the file is a
// mounted ConfigMap's key, it parses strictly, every ${env:NAME} is a
// variable the container gets from a Secret, every ${file:PATH} is inside
// a mounted Secret, and no header value is written in the file itself.
func checkTenants(ws *workerSet, cm *corev1.ConfigMap) problems {
	var p problems
	env, fromRefs := workerEnv(ws)
	file := env["WORKER_TENANTS_FILE"]
	c := workerContainer(ws)
	if file == "" || c == nil {
		p.addf("WORKER_TENANTS_FILE is not set in the worker's ConfigMap")
		return p
	}
	if cm == nil {
		p.addf("no ConfigMap %s holds the tenants file", tenantsConfigMap)
		return p
	}
	pod := ws.Deployment.Spec.Template.Spec
	vol := mountedVolume(pod, c, file)
	switch {
	case vol == nil || vol.ConfigMap == nil:
		p.addf("WORKER_TENANTS_FILE %q is not inside a mounted ConfigMap", file)
	case vol.ConfigMap.Name != cm.Name:
		p.addf("WORKER_TENANTS_FILE %q is in ConfigMap %s, want %s", file, vol.ConfigMap.Name, cm.Name)
	case path.Base(file) != tenantsKey:
		p.addf("WORKER_TENANTS_FILE %q: the ConfigMap's key is %s", file, tenantsKey)
	}
	data, ok := cm.Data[tenantsKey]
	if !ok {
		p.addf("ConfigMap %s has no key %s", cm.Name, tenantsKey)
		return p
	}

	// Resolve placeholders against the pod: a variable from a Secret
	// reference, a file inside a mounted Secret.
	const marker = "\x01secret\x01"
	lookup := func(name string) (string, bool) {
		ref := fromRefs[name]
		if ref == nil || ref.SecretKeyRef == nil {
			p.addf("${env:%s}: the container does not get %s from a Secret", name, name)
			return "", false
		}
		if ref.SecretKeyRef.Optional != nil && *ref.SecretKeyRef.Optional {
			p.addf("${env:%s}: its secret reference is optional: a missing key would stop the worker at start", name)
		}
		return marker, true
	}
	read := func(file string) ([]byte, error) {
		v := mountedVolume(pod, c, file)
		if v == nil || v.Secret == nil {
			p.addf("${file:%s} is not inside a mounted Secret", file)
			return nil, &os.PathError{Op: "open", Path: file, Err: os.ErrNotExist}
		}
		if items := v.Secret.Items; len(items) > 0 && !slices.ContainsFunc(items, func(it corev1.KeyToPath) bool { return path.Base(it.Path) == path.Base(file) }) {
			p.addf("${file:%s} names no item of secret %s", file, v.Secret.SecretName)
		}
		if v.Secret.Optional != nil && *v.Secret.Optional {
			p.addf("${file:%s}: secret %s is optional: a missing file would stop the worker at start", file, v.Secret.SecretName)
		}
		return []byte(marker), nil
	}
	f, err := tenants.Parse([]byte(data), tenants.Env{LookupEnv: lookup, ReadFile: read})
	if err != nil {
		p.addf("the tenants file does not load: %v", err)
		return p
	}
	for _, org := range f.Names() {
		for name, v := range f.Tenants[org].Headers {
			if !strings.Contains(v, marker) {
				p.addf("tenants.%s.headers.%s is written in the ConfigMap: take it from a Secret with ${env:…} or ${file:…}", org, name)
			}
		}
	}
	return p
}

func TestTenantsOverlay(t *testing.T) {
	rest, cm, err := splitTenants(mustRender(t, tenantsDir))
	if err != nil {
		t.Fatal(err)
	}
	ws, err := decodeWorkerSet(rest)
	if err != nil {
		t.Fatal(err)
	}
	// The variables the tenants file names are read by the worker too.
	read := tenantVariables(t, cm.Data[tenantsKey])
	slices.DeleteFunc(checkWorker(ws), func(s string) bool {
		for name := range read {
			if s == fmt.Sprintf("container env %s is not a variable the worker reads (config.Names)", name) {
				return true
			}
		}
		return false
	}).report(t)
	checkTenants(ws, cm).report(t)
	if p := checkTenants(ws, cm); len(p) == 0 && !strings.Contains(cm.Data[tenantsKey], tenantKeysSecret) {
		// The file's comment tells operators which Secret to create.
		t.Errorf("the tenants file does not name the Secret %s", tenantKeysSecret)
	}
}

// tenantVariables are the environment variables data's ${env:NAME} name.
func tenantVariables(t *testing.T, data string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	env := tenants.Env{
		LookupEnv: func(name string) (string, bool) { names[name] = true; return "x", true },
		ReadFile:  func(string) ([]byte, error) { return []byte("x"), nil },
	}
	if _, err := tenants.Parse([]byte(data), env); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestTenantsChecksCatchMistakes breaks the overlay in the ways an
// operator could and checks that each is reported.
func TestTenantsChecksCatchMistakes(t *testing.T) {
	fresh := func(t *testing.T) (*workerSet, *corev1.ConfigMap) {
		rest, cm, err := splitTenants(mustRender(t, tenantsDir))
		if err != nil {
			t.Fatal(err)
		}
		return mustDecodeWorker(t, rest), cm
	}
	for name, c := range map[string]struct {
		breakIt func(ws *workerSet, cm *corev1.ConfigMap)
		want    string
	}{
		"inline key": {func(_ *workerSet, cm *corev1.ConfigMap) {
			cm.Data[tenantsKey] = strings.Replace(cm.Data[tenantsKey], "${env:ACME_API_KEY}", "abc123", 1)
		}, "tenants.acme.headers.authorization is written in the ConfigMap"},
		"variable not from a secret": {func(ws *workerSet, _ *corev1.ConfigMap) {
			c := workerContainer(ws)
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "ACME_API_KEY" })
		}, "${env:ACME_API_KEY}: the container does not get ACME_API_KEY from a Secret"},
		"file not mounted": {func(ws *workerSet, _ *corev1.ConfigMap) {
			c := workerContainer(ws)
			c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "tenant-keys" })
		}, "is not inside a mounted Secret"},
		"tenants file not mounted": {func(ws *workerSet, _ *corev1.ConfigMap) {
			c := workerContainer(ws)
			c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "tenants" })
		}, "is not inside a mounted ConfigMap"},
		"unknown key": {func(_ *workerSet, cm *corev1.ConfigMap) {
			cm.Data[tenantsKey] += "    endpont: https://x/v1/traces\n"
		}, `unknown key "endpont"`},
	} {
		t.Run(name, func(t *testing.T) {
			ws, cm := fresh(t)
			c.breakIt(ws, cm)
			if p := checkTenants(ws, cm); !p.contains(c.want) {
				t.Errorf("problems %q, want one saying %q", p, c.want)
			}
		})
	}
}

// TestTenantsExample checks that examples/tenants.yaml loads, with every
// placeholder resolved.
func TestTenantsExample(t *testing.T) {
	data, err := os.ReadFile(path.Join(examplesDir, "tenants.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := tenants.Env{
		LookupEnv: func(string) (string, bool) { return "x", true },
		ReadFile:  func(string) ([]byte, error) { return []byte("x"), nil },
	}
	f, err := tenants.Parse(data, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tenants) == 0 {
		t.Error("the example lists no tenant")
	}
	if _, err := tenants.Parse(data, tenants.Env{LookupEnv: func(string) (string, bool) { return "", false }, ReadFile: env.ReadFile}); err == nil {
		t.Error("the example loads without its variables: it should show ${env:…}")
	} else if errors.Is(err, os.ErrNotExist) {
		t.Error(fmt.Errorf("unexpected: %w", err))
	}
}
