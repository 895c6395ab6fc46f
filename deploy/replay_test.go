package deploy_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

const (
	replayDir       = "replay"
	replayContainer = "replay"
)

// replayNameRE is what `worker replay --name` accepts
// (consumer.FleetReplay).
var replayNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// replaySet is the fleet replay's kustomization, decoded.
type replaySet struct {
	Job       *batchv1.Job
	ConfigMap *corev1.ConfigMap
}

func decodeReplaySet(objs []object) (*replaySet, error) {
	rs := &replaySet{}
	for _, o := range objs {
		var target any
		switch o.APIVersion + " " + o.Kind {
		case "batch/v1 Job":
			target = setOnce(&rs.Job)
		case "v1 ConfigMap":
			target = setOnce(&rs.ConfigMap)
		default:
			return nil, fmt.Errorf("%s: unexpected kind in the replay's manifests", o.id())
		}
		if target == nil {
			return nil, fmt.Errorf("%s: a second %s; the checks expect one", o.id(), o.Kind)
		}
		if err := decodeStrict(o, target); err != nil {
			return nil, err
		}
	}
	if rs.Job == nil || rs.ConfigMap == nil {
		return nil, fmt.Errorf("the replay's manifests want a Job and its ConfigMap")
	}
	return rs, nil
}

// checkReplayJob checks the fleet replay Job: a work-queue Job of several
// pods that all run `worker replay` with the same --name and range, retried
// as a replay should be, on the worker's stream.
func checkReplayJob(rs *replaySet, worker *workerSet) problems {
	var p problems
	spec := rs.Job.Spec
	pod := spec.Template.Spec
	if spec.Parallelism == nil || *spec.Parallelism < 2 {
		p.addf("parallelism must be at least 2: the point is a fleet")
	}
	if spec.Completions != nil {
		p.addf("completions must be unset: every pod exits 0 only when the whole range is settled (a work-queue Job)")
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		p.addf("restartPolicy must be Never: the Job controller replaces a failed pod, and podFailurePolicy needs Never")
	}
	if spec.BackoffLimit == nil || *spec.BackoffLimit < 1 {
		p.addf("backoffLimit must allow retries: a killed pod loses nothing and is worth replacing")
	}
	var failOnConfig, ignoreDisruption bool
	if fp := spec.PodFailurePolicy; fp != nil {
		for _, r := range fp.Rules {
			if e := r.OnExitCodes; r.Action == batchv1.PodFailurePolicyActionFailJob && e != nil &&
				e.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && slices.Contains(e.Values, 2) {
				failOnConfig = true
			}
			for _, c := range r.OnPodConditions {
				if r.Action == batchv1.PodFailurePolicyActionIgnore && c.Type == corev1.DisruptionTarget {
					ignoreDisruption = true
				}
			}
		}
	}
	if !failOnConfig {
		p.addf("podFailurePolicy must fail the Job on exit code 2 (a configuration the worker refuses)")
	}
	if !ignoreDisruption {
		p.addf("podFailurePolicy must ignore DisruptionTarget: an eviction is not the replay's failure")
	}

	var c *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == replayContainer {
			c = &pod.Containers[i]
		}
	}
	if c == nil {
		p.addf("no container named %q", replayContainer)
		return p
	}
	if len(c.Command) > 0 {
		p.addf("command must be unset: the image's entrypoint is the worker")
	}
	if len(c.Args) == 0 || c.Args[0] != "replay" {
		p.addf("args must start with replay, got %v", c.Args)
	}
	if name, ok := flagValue(c.Args, "--name"); !ok || !replayNameRE.MatchString(name) {
		p.addf("args must give --name NAME (letters, digits, - or _): the same name in every pod makes one fleet; got %v", c.Args)
	}
	_, since := flagValue(c.Args, "--since")
	_, fromSeq := flagValue(c.Args, "--from-seq")
	if since == fromSeq {
		p.addf("args must give one of --since and --from-seq, got %v", c.Args)
	}
	if v, _ := flagValue(c.Args, "--progress"); v != "lines" && v != "none" {
		p.addf("args must give --progress lines (or none): a pod has no terminal for a bar")
	}
	if !strings.HasPrefix(c.Image, imageRepo+":") && !strings.HasPrefix(c.Image, imageRepo+"@") {
		p.addf("container image %q is not %s with a tag or digest", c.Image, imageRepo)
	}
	checkSecurity(&p, pod, c)
	checkResources(&p, c)

	env := configDefaults()
	for k, v := range rs.ConfigMap.Data {
		env[k] = v
	}
	known := knownNames()
	for k := range rs.ConfigMap.Data {
		if !known[k] {
			p.addf("ConfigMap sets %s, which the worker does not read", k)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil && slices.Contains(secretEnv, e.Name) {
			p.addf("%s inline: secrets only by reference", e.Name)
		}
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	for _, s := range secretEnv {
		if _, ok := rs.ConfigMap.Data[s]; ok {
			p.addf("%s in the ConfigMap: secrets only by reference", s)
		}
	}
	if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
		return e.ConfigMapRef != nil && e.ConfigMapRef.Name == rs.ConfigMap.Name
	}) {
		p.addf("the container does not read the ConfigMap %s", rs.ConfigMap.Name)
	}
	checkDataDir(&p, pod, c, env["WORKER_DATA_DIR"])

	// The replay reads the stream the workers consume, with their AckWait
	// (a dead pod's messages come back after it).
	wenv, _ := workerEnv(worker)
	for _, k := range []string{"WORKER_STREAM", "WORKER_SUBJECTS", "WORKER_ACK_WAIT", "NATS_URL"} {
		if env[k] != wenv[k] {
			p.addf("%s = %q, the workers' is %q", k, env[k], wenv[k])
		}
	}
	return p
}

func mustReplaySet(t *testing.T) *replaySet {
	t.Helper()
	rs, err := decodeReplaySet(mustRender(t, replayDir))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestReplayJob(t *testing.T) {
	objs := mustRender(t, replayDir)
	rs, err := decodeReplaySet(objs)
	if err != nil {
		t.Fatal(err)
	}
	checkReplayJob(rs, mustWorkerSet(t, baseDir)).report(t)
	t.Run("kubectl", func(t *testing.T) { checkKubectl(t, replayDir, objs) })
}

// TestReplayJobChecksCatchMistakes: each mistake a replay Job can make is
// reported.
func TestReplayJobChecksCatchMistakes(t *testing.T) {
	worker := mustWorkerSet(t, baseDir)
	one, three := int32(1), int32(3)
	for _, tc := range []struct {
		want   string
		mutate func(*replaySet)
	}{
		{"parallelism", func(rs *replaySet) { rs.Job.Spec.Parallelism = &one }},
		{"completions must be unset", func(rs *replaySet) { rs.Job.Spec.Completions = &three }},
		{"restartPolicy must be Never", func(rs *replaySet) { rs.Job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure }},
		{"exit code 2", func(rs *replaySet) { rs.Job.Spec.PodFailurePolicy = nil }},
		{"--name NAME", func(rs *replaySet) { replayArgs(rs)[2] = "bad name" }},
		{"one of --since and --from-seq", func(rs *replaySet) {
			c := &rs.Job.Spec.Template.Spec.Containers[0]
			c.Args = append(c.Args, "--from-seq", "1")
		}},
		{"--progress lines", func(rs *replaySet) { replayArgs(rs)[len(replayArgs(rs))-1] = "bar" }},
		{"WORKER_STREAM", func(rs *replaySet) { rs.ConfigMap.Data["WORKER_STREAM"] = "OTHER" }},
		{"does not read", func(rs *replaySet) { rs.ConfigMap.Data["WORKER_TYPO"] = "x" }},
		{"secrets only by reference", func(rs *replaySet) { rs.ConfigMap.Data["NATS_PASSWORD"] = "x" }},
	} {
		rs := mustReplaySet(t)
		tc.mutate(rs)
		if p := checkReplayJob(rs, worker); !p.contains(tc.want) {
			t.Errorf("mistake %q not reported; problems: %v", tc.want, p)
		}
	}
}

func replayArgs(rs *replaySet) []string { return rs.Job.Spec.Template.Spec.Containers[0].Args }
