package containers

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/clawbox/clawbox/internal/dockertest"
)

var dockerErr error // why Docker tests skip

func TestMain(m *testing.M) {
	dockerErr = dockertest.Ping()
	// No goroutine of a Side (its retry loop, the manager's monitors and reaper,
	// the backend's connections) may outlive its Close.
	goleak.VerifyTestMain(m)
	os.Exit(0) // unreachable: VerifyTestMain exits
}

// requireDocker skips when no Docker daemon answers.
func requireDocker(t *testing.T) {
	t.Helper()
	if dockerErr != nil {
		t.Skipf("Docker daemon not reachable (%v): start dockerd or set DOCKER_HOST to run this test", dockerErr)
	}
}
