package daemon

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/poll"
)

// TestContainersRecoverWhenDockerReturns: a server started while Docker does not
// answer serves WASM and answers 503 for containers, then brings container sandboxes
// up by itself once Docker answers.
func TestContainersRecoverWhenDockerReturns(t *testing.T) {
	requireDocker(t)
	sock := filepath.Join(shortTempDir(t), "docker.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	cfg := dockerConfig(t)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	_, err := c.Containers(ctx, "")
	if e, ok := api.AsError(err); !ok || e.Code != api.CodeUnavailable || !strings.Contains(e.Message, "Docker") {
		t.Fatalf("before Docker answers: %v", err)
	}
	if _, err := c.PolicyCheck(ctx, api.PolicyCheckRequest{ContainerID: "clawbox-x", URL: "https://example.com/"}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("policy check of a container before Docker answers: %v", err)
	}

	dockertest.StartRelay(t, sock)
	poll.Until(t, poll.Server, "containers to be available after Docker came back", func() (bool, error) {
		_, err = c.Containers(ctx, "")
		return err == nil, err
	})
	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "after recovery", Command: []string{"echo", "back"}})
	if err != nil {
		t.Fatal(err)
	}
	if final := waitFinal(t, c, info.ContainerID); final.Status != api.ContainerStatusCompleted {
		t.Errorf("spawn after recovery: %s", final.Status)
	}
	h, err := c.Health(ctx)
	if err != nil || h.Components["docker"].Status != api.StatusOK {
		t.Errorf("health after recovery: %+v %v", h, err)
	}
}
