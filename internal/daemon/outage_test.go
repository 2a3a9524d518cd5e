package daemon

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/poll"
)

// TestDockerOutageWhileServing: Docker stops answering while a sandbox runs. Spawns
// are refused with a clear 503 (never a 500 or a hang), the server keeps serving
// everything else, the running sandbox's record stays, and once Docker answers again
// new sandboxes spawn and the old one is still there to be killed.
func TestDockerOutageWhileServing(t *testing.T) {
	requireDocker(t)
	sock := filepath.Join(shortTempDir(t), "docker.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	r := dockertest.StartRelay(t, sock)
	cfg := testConfig(t)
	cfg.Containers.KillOnShutdown = true // nothing outlives the test, even on failure
	cfg.Containers.AllowedImages = []string{"clawbox-test/"}
	cfg.Containers.DefaultImage = testImage
	cfg.Containers.StopGrace = 0
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	// The Docker side comes up in the background: wait until it answers.
	poll.Until(t, poll.Server, "containers to be available with Docker up", func() (bool, error) {
		_, err := c.Containers(ctx, "")
		return err == nil, err
	})
	before, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "before the outage", Command: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}

	r.Close() // Docker stops answering
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	_, err = c.Spawn(sctx, api.ContainerSpawnRequest{Task: "during the outage", Command: []string{"true"}})
	cancel()
	if e, ok := api.AsError(err); !ok || e.Code != api.CodeUnavailable {
		t.Errorf("spawn while Docker is down: %v, want 503 unavailable", err)
	}
	if h, err := c.Health(ctx); err != nil || h.Components["docker"].Status == api.StatusOK {
		t.Errorf("health while Docker is down: %+v %v", h, err)
	}
	if info, err := c.Container(ctx, before.ContainerID); err != nil || info.Status != api.ContainerStatusRunning {
		t.Errorf("the running sandbox's record while Docker is down: %+v %v", info, err)
	}
	if _, err := c.Tools(ctx); err != nil {
		t.Errorf("tools while Docker is down: %v", err)
	}

	dockertest.StartRelay(t, sock) // Docker is back
	var after *api.ContainerInfo
	poll.Until(t, poll.Server, "a spawn to succeed after Docker came back", func() (bool, error) {
		after, err = c.Spawn(ctx, api.ContainerSpawnRequest{Task: "after the outage", Command: []string{"echo", "back"}})
		if err == nil {
			return true, nil
		}
		if e, ok := api.AsError(err); !ok || e.Code != api.CodeUnavailable {
			t.Fatalf("spawn after Docker came back: %v", err)
		}
		return false, err
	})
	if final := waitFinal(t, c, after.ContainerID); final.Status != api.ContainerStatusCompleted {
		t.Errorf("sandbox spawned after the outage: %s", final.Status)
	}
	k, err := c.Kill(ctx, before.ContainerID)
	if err != nil || k.Status != api.ContainerStatusKilled {
		t.Errorf("kill of the sandbox that lived through the outage: %+v %v", k, err)
	}
}
