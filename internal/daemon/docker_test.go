package daemon

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/poll"
)

// relay forwards connections on a Unix socket to the real Docker socket: a Docker
// that can be made to appear after the server started.
type relay struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startRelay(t *testing.T, path string) *relay {
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", "/var/run/docker.sock")
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, up)
			r.mu.Unlock()
			r.wg.Add(2)
			go func() { defer r.wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer r.wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(r.close)
	return r
}

func (r *relay) close() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

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

	startRelay(t, sock)
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
