package daemon

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/dockertest"
)

// TestNoMasterKeyStillScansForPatterns runs a sandbox on a server without a master
// key: a credential-looking value sent out is refused as a leak before it reaches the
// upstream, and the same value printed by the workload is redacted from its logs.
func TestNoMasterKeyStillScansForPatterns(t *testing.T) {
	dockertest.ForEachRuntime(t, testNoMasterKeyStillScansForPatterns)
}

func testNoMasterKeyStillScansForPatterns(t *testing.T, rt dockertest.Runtime) {
	requireDocker(t)
	up := newUpstream(t)
	cfg := containerConfig(t, up)
	cfg.ContainerPolicy.AllowedCredentials = nil
	if err := os.Remove(cfg.Credentials.KeyFile); err != nil {
		t.Fatal(err)
	}
	useRuntime(cfg, rt)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	const secret = "sk-live0123456789abcdefghijklmnop"
	base := "https://example.com:" + up.port
	script := strings.Join([]string{
		`echo "printed=` + secret + `"`,
		`/agent -proxy ` + base + `/api/x -header "Authorization:Bearer ` + secret + `"`,
	}, "; ")
	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "no key", Command: []string{"sh", "-c", script}})
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	final := waitFinal(t, c, info.ContainerID)
	logs, err := c.Logs(ctx, info.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != api.ContainerStatusCompleted {
		t.Fatalf("sandbox %s: %s\nstdout:\n%s\nstderr:\n%s", info.ContainerID, final.Status, logs.Stdout, logs.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(logs.Stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines of output, got:\n%s\nstderr:\n%s", logs.Stdout, logs.Stderr)
	}
	if lines[0] != "printed=[REDACTED]" {
		t.Errorf("printed credential pattern in the logs: %q, want it redacted", lines[0])
	}
	if !strings.Contains(lines[1], "403") || !strings.Contains(lines[1], "leak_detected") {
		t.Errorf("credential pattern sent out: %s, want 403 leak_detected", lines[1])
	}
	if strings.Contains(logs.Stdout+logs.Stderr, secret) {
		t.Error("the credential-looking value is in the logs")
	}
	if seen := up.seen(); len(seen) != 0 {
		t.Errorf("upstream saw %q; want no request", seen)
	}
}

// TestNewGatewayRequiresScanner: the gateway is never built without a leak scanner.
func TestNewGatewayRequiresScanner(t *testing.T) {
	cfg := testConfig(t)
	if _, err := newGateway(cfg, nil, nil, nil, nil); err == nil {
		t.Fatal("newGateway without secrets: no error")
	}
}
