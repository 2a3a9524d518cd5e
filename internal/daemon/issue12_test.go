package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
)

// TestContainerLogsRedactedAtRest: a sandbox prints a stored credential's value;
// the value is redacted in the logs the API returns and is nowhere in the raw
// state.db (or its WAL) once the sandbox has ended and the server has stopped.
func TestContainerLogsRedactedAtRest(t *testing.T) {
	requireDocker(t)
	cfg := testConfig(t)
	cfg.Containers.AllowedImages = []string{"clawbox-test/"}
	cfg.Containers.DefaultImage = testImage
	addrs, stop := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	const secret = "atrest-Zq8Xw3Vb7Nm2Lk5Jh9Gf4Ds6"
	if _, err := c.PutCredential(ctx, "ATREST", api.PutCredentialRequest{Value: secret, Host: "example.com"}); err != nil {
		t.Fatal(err)
	}
	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Command: []string{"sh", "-c", "echo value=" + secret + "; echo err=" + secret + " >&2"}})
	if err != nil {
		t.Fatal(err)
	}
	fin := waitFinal(t, c, info.ContainerID)
	if fin.Status != api.ContainerStatusCompleted {
		t.Fatalf("sandbox ended %s", fin.Status)
	}
	logs, err := c.Logs(ctx, info.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.Stdout+logs.Stderr, secret) || !strings.Contains(logs.Stdout, "value=[REDACTED]") {
		t.Errorf("logs = %+v", logs)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(cfg.Store.Path + "*")
	if len(files) == 0 {
		t.Fatalf("no state.db at %s", cfg.Store.Path)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the credential's value in plain text", filepath.Base(f))
		}
	}
}

// TestContainerLogsWhileRunning: a sandbox that prints a line and then sleeps shows
// that line through GET /containers/{id}/logs while it still runs.
func TestContainerLogsWhileRunning(t *testing.T) {
	requireDocker(t)
	cfg := testConfig(t)
	cfg.Containers.AllowedImages = []string{"clawbox-test/"}
	cfg.Containers.DefaultImage = testImage
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Command: []string{"sh", "-c", "echo started; echo warn >&2; exec sleep 600"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(context.Background(), info.ContainerID) })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		logs, err := c.Logs(ctx, info.ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		if logs.Stdout == "started\n" && logs.Stderr == "warn\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of the running sandbox = %+v", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got, err := c.Container(ctx, info.ContainerID)
	if err != nil || got.Status != api.ContainerStatusRunning {
		t.Errorf("sandbox is %+v %v, want still running", got, err)
	}
}
