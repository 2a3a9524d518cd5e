package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/testkit"
)

// TestHardeningFromInside checks the sandbox's confinement from inside the running
// container (the Docker backend's tests check the same settings in ContainerInspect).
func TestHardeningFromInside(t *testing.T) { dockertest.ForEachRuntime(t, testHardeningFromInside) }

func testHardeningFromInside(t *testing.T, rt dockertest.Runtime) {
	requireDocker(t)
	cfg := dockerConfig(t)
	cfg.Containers.PidsLimit = 40
	useRuntime(cfg, rt)
	// The server's log is printed when the test fails: an engine error behind an
	// internal_error answer is only there.
	var serverLog testkit.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", serverLog.String())
		}
	})
	addrs, _ := runDaemonLog(t, cfg, &serverLog)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	script := strings.Join([]string{
		`echo "uid=$(id -u):$(id -g)"`,
		`if touch /escape 2>/dev/null; then echo rootfs=writable; else echo rootfs=readonly; fi`,
		`grep CapEff /proc/self/status | tr -d '\t' 2>/dev/null || grep CapEff /proc/self/status`,
		`echo "ifaces=$(ls /sys/class/net | tr '\n' ' ')"`,
		`cp /bin/busybox /tmp/bb; if /tmp/bb true 2>/dev/null; then echo tmp=exec; else echo tmp=noexec; fi`,
		`if mount -t tmpfs none /mnt 2>/dev/null; then echo mount=allowed; else echo mount=denied; fi`,
		`/agent -fork 100`,
	}, "; ")
	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "hardening", Command: []string{"sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	final := waitFinal(t, c, info.ContainerID)
	logs, _ := c.Logs(ctx, info.ContainerID)
	out := map[string]string{}
	for _, line := range strings.Split(logs.Stdout, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = strings.TrimSpace(v)
		}
		if k, v, ok := strings.Cut(line, ":"); ok && k == "CapEff" {
			out["CapEff"] = strings.TrimSpace(v)
		}
	}
	if final.Status != api.ContainerStatusCompleted {
		t.Fatalf("%s\nstdout:\n%s\nstderr:\n%s", final.Status, logs.Stdout, logs.Stderr)
	}
	want := map[string]string{
		"uid":    "1000:1000",
		"rootfs": "readonly",
		"CapEff": "0000000000000000",
		"ifaces": "lo",
		"tmp":    "noexec",
		"mount":  "denied",
	}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("%s = %q, want %q (stdout:\n%s)", k, out[k], v, logs.Stdout)
		}
	}
	started, _, _ := strings.Cut(out["forks"], "/")
	n, err := strconv.Atoi(started)
	// Under gVisor the limit bounds the sandbox kernel's host threads, not the
	// workload's processes: the 100 children all start (TestNoisySandboxDoesNotStarveOthers
	// covers exhaustion under runc).
	if err != nil || n < 5 || (!rt.GVisor() && n >= int(cfg.Containers.PidsLimit)) {
		t.Errorf("children started by a 100-fork loop: %q, want fewer than the pids limit %d", out["forks"], cfg.Containers.PidsLimit)
	}

	// Memory: allocating past the limit ends in failed with oom_killed. Under
	// gVisor the runtime's own processes share the limit: 64 MB is its minimum.
	mem := int64(16)
	if rt.GVisor() {
		mem = 64
	}
	oom, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "oom", Command: []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"},
		Capabilities: &api.ContainerCapabilities{Resources: &api.ContainerResources{MemoryMB: &mem}}})
	if err != nil {
		t.Fatal(err)
	}
	of := waitFinal(t, c, oom.ContainerID)
	// Under gVisor the sandbox kernel handles the allocation itself: the workload
	// fails, but the engine does not always report it as the host kernel's OOM kill.
	if of.Status != api.ContainerStatusFailed || (!of.OOMKilled && !rt.GVisor()) {
		t.Errorf("over the memory limit: status %s oom_killed %v", of.Status, of.OOMKilled)
	}
}

// TestTimeoutReapsEverything: a sandbox past its deadline is timed_out, its container
// and socket directory are gone, its door is closed, its logs stay readable, and
// DELETE returns the final record.
func TestTimeoutReapsEverything(t *testing.T) {
	requireDocker(t)
	cfg := dockerConfig(t)
	cfg.Containers.StopGrace = 0
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	timeout := int64(1500)
	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "sleeper", Command: []string{"sh", "-c", "echo started; sleep 300"},
		Capabilities: &api.ContainerCapabilities{Resources: &api.ContainerResources{TimeoutMS: &timeout}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cfg.Containers.ProxiesDir, info.ContainerID)
	if _, err := os.Stat(filepath.Join(dir, "proxy.sock")); err != nil {
		t.Fatalf("door socket while running: %v", err)
	}
	final := waitFinal(t, c, info.ContainerID)
	if final.Status != api.ContainerStatusTimedOut {
		t.Fatalf("status %s, want timed_out", final.Status)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("socket directory left behind: %v", err)
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.ContainerInspect(ctx, info.ContainerID, client.ContainerInspectOptions{}); err == nil {
		t.Error("the timed-out container still exists")
	}
	logs, err := c.Logs(ctx, info.ContainerID)
	if err != nil || logs.Stdout != "started\n" {
		t.Errorf("logs after the timeout: %+v %v", logs, err)
	}
	k, err := c.Kill(ctx, info.ContainerID)
	if err != nil || k.Status != api.ContainerStatusTimedOut {
		t.Errorf("DELETE after the timeout: %+v %v", k, err)
	}
}
