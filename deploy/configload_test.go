package deploy_test

import (
	"os"
	"testing"

	"github.com/spanferry/spanferry/internal/config"
)

// TestManifestConfigurationLoads loads each kustomization's worker
// environment as the worker does, so that a value the worker refuses at
// start (a URL that cannot be right, a dead-letter subject inside the
// stream's subjects) fails here rather than in a crash-looping pod.
// Variables from Secrets get a placeholder of the right shape.
func TestManifestConfigurationLoads(t *testing.T) {
	placeholders := map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "authorization=placeholder"}
	for _, dir := range []string{baseDir, prodDir} {
		t.Run(dir, func(t *testing.T) {
			env, fromRefs := workerEnv(mustWorkerSet(t, dir))
			for name := range knownNames() {
				t.Setenv(name, "")
				os.Unsetenv(name)
			}
			for name, value := range env {
				t.Setenv(name, value)
			}
			for name := range fromRefs {
				if v, ok := placeholders[name]; ok {
					t.Setenv(name, v)
				}
			}
			if _, err := config.Load(); err != nil {
				t.Errorf("the worker would refuse the configuration of %s: %v", dir, err)
			}
		})
	}
}
