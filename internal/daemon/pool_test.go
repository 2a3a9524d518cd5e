package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dockerclient "github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/poll"
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/testkit"
)

// poolHealth returns the named pool's state from a detailed GET /health.
func poolHealth(t *testing.T, c *client.Client, name string) api.WarmPoolHealth {
	t.Helper()
	h, err := c.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d, ok := h.Containers()
	if !ok {
		t.Fatalf("no containers detail in health: %+v", h.Components)
	}
	for _, p := range d.Pools {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no pool %q in health: %+v", name, d)
	return api.WarmPoolHealth{}
}

// waitPoolReady waits until the pool has n ready sandboxes.
func waitPoolReady(t *testing.T, c *client.Client, name string, n int) {
	t.Helper()
	poll.Until(t, poll.Server, fmt.Sprintf("pool %s with %d ready", name, n), func() (bool, error) {
		p := poolHealth(t, c, name)
		return p.Ready == n, fmt.Errorf("%+v", p)
	})
}

// pooledContainers lists the sandbox ids of the containers started for pool
// (label clawbox.pool), claimed or not, in any state.
func pooledContainers(t *testing.T, pool string) map[string]bool {
	t.Helper()
	cli := dockerClient(t)
	res, err := cli.ContainerList(context.Background(), dockerclient.ContainerListOptions{All: true,
		Filters: make(dockerclient.Filters).Add("label", sandbox.LabelPool+"="+pool)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, c := range res.Items {
		out[c.Labels[sandbox.LabelContainerID]] = true
	}
	return out
}

func execText(t *testing.T, c *client.Client, id, script string) string {
	t.Helper()
	res, err := c.Exec(context.Background(), id, api.ExecRequest{Cmd: []string{"sh", "-c", script}})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("exec %q in %s: %+v, %v", script, id, res, err)
	}
	return res.Stdout
}

// TestWarmPoolClaim: a spawn that matches the pool claims a ready, started
// sandbox that had no door token and nothing of any request; it gets the
// claimant's env, command, credentials (injected through its door), labels and
// a fresh token; two claims never share a sandbox and never see each other's
// env; a spawn of another profile is cold; the pool refills.
func TestWarmPoolClaim(t *testing.T) {
	requireDocker(t)
	up := newUpstream(t)
	cfg := containerConfig(t, up)
	pool := "warm-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cfg.Containers.WarmPool = []config.WarmPool{{Name: pool, Image: testImage, Size: 2}}
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()
	waitPoolReady(t, c, pool, 2)

	before := pooledContainers(t, pool)
	if len(before) != 2 {
		t.Fatalf("pooled containers: %v, want 2", before)
	}
	supTokens := map[string]string{}
	for id := range before {
		dir := filepath.Join(cfg.Containers.ProxiesDir, id)
		if _, err := os.Stat(filepath.Join(dir, "token")); !os.IsNotExist(err) {
			t.Errorf("pooled sandbox %s has a door token file (%v)", id, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "supervisor-token"))
		if err != nil {
			t.Fatal(err)
		}
		supTokens[id] = string(b)
		if _, err := c.Container(ctx, id); err == nil {
			t.Errorf("pooled sandbox %s is visible through the API before a claim", id)
		}
	}

	const secret = upstreamSecret
	putUpstreamCredential(t, c, up)
	base := "https://example.com:" + up.port
	main := `echo "foo=$FOO" > /tmp/main.out; /agent -proxy ` + base + `/api/x -header "Authorization:Bearer $UPSTREAM" >> /tmp/main.out 2>&1; echo done >> /tmp/main.out; sleep 300`
	var (
		wg    sync.WaitGroup
		infos [2]*api.ContainerInfo
		errs  [2]error
	)
	for i, who := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := api.ContainerSpawnRequest{Task: "warm " + who, Command: []string{"sh", "-c", main},
				Env: map[string]string{"FOO": who}, Labels: map[string]string{"claimant": who}}
			if who == "a" {
				req.Capabilities = &api.ContainerCapabilities{Credentials: []string{"UPSTREAM"}}
			}
			infos[i], errs[i] = c.Spawn(ctx, req)
		}()
	}
	wg.Wait()
	for i := range infos {
		if errs[i] != nil {
			t.Fatalf("spawn %d: %v", i, errs[i])
		}
		id := infos[i].ContainerID
		t.Cleanup(func() { c.Kill(context.Background(), id) })
		if !infos[i].Warm || !before[id] {
			t.Errorf("spawn %d: warm=%v id %s, want a claim of one of %v", i, infos[i].Warm, id, before)
		}
	}
	a, b := infos[0].ContainerID, infos[1].ContainerID
	if a == b {
		t.Fatalf("two concurrent claims got the same sandbox %s", a)
	}
	for _, id := range []string{a, b} {
		poll.Until(t, poll.Server, "the main command of "+id, func() (bool, error) {
			out := execText(t, c, id, "cat /tmp/main.out 2>/dev/null || true")
			return strings.Contains(out, "done"), fmt.Errorf("main.out %q", out)
		})
	}
	outA := execText(t, c, a, "cat /tmp/main.out; echo exec_foo=$FOO; echo up=${UPSTREAM:+set}")
	outB := execText(t, c, b, "cat /tmp/main.out; echo exec_foo=$FOO; echo up=${UPSTREAM:+set}")
	for _, want := range []string{"foo=a\n", "200 ", "exec_foo=a\n", "up=set\n"} {
		if !strings.Contains(outA, want) {
			t.Errorf("claimant a's sandbox: %q lacks %q", outA, want)
		}
	}
	for _, want := range []string{"foo=b\n", "exec_foo=b\n", "up=\n"} {
		if !strings.Contains(outB, want) {
			t.Errorf("claimant b's sandbox: %q lacks %q (it must never carry a's env)", outB, want)
		}
	}
	if strings.Contains(outA+outB, secret) {
		t.Fatal("the real credential reached a sandbox")
	}
	if seen := up.seen(); !slices.Contains(seen, "Bearer "+secret) {
		t.Errorf("upstream saw %q; want the real value injected for a's request", seen)
	}
	// Fresh tokens: a door token file now, and a new supervisor token.
	for _, id := range []string{a, b} {
		dir := filepath.Join(cfg.Containers.ProxiesDir, id)
		if tok, err := os.ReadFile(filepath.Join(dir, "token")); err != nil || len(tok) != 64 {
			t.Errorf("claimed %s: door token %q, %v", id, tok, err)
		}
		if now, _ := os.ReadFile(filepath.Join(dir, "supervisor-token")); string(now) == supTokens[id] {
			t.Errorf("claimed %s still has its pool-time supervisor token", id)
		}
	}
	// Labels are the claimant's, in the record.
	got, err := c.ListContainers(ctx, api.ContainerFilter{Labels: map[string]string{"claimant": "b"}})
	if err != nil || len(got) != 1 || got[0].ContainerID != b || !got[0].Warm {
		t.Errorf("label filter claimant=b: %+v, %v", got, err)
	}
	// Another profile matches no pool: cold.
	mem := int64(64)
	cold, err := c.Spawn(ctx, api.ContainerSpawnRequest{Command: []string{"sleep", "300"},
		Capabilities: &api.ContainerCapabilities{Resources: &api.ContainerResources{MemoryMB: &mem}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(context.Background(), cold.ContainerID) })
	if cold.Warm || before[cold.ContainerID] {
		t.Errorf("a spawn of another profile: warm=%v id %s", cold.Warm, cold.ContainerID)
	}
	// The pool refills to its size with new sandboxes.
	waitPoolReady(t, c, pool, 2)
	after := pooledContainers(t, pool)
	for id := range after {
		if id == a || id == b {
			continue
		}
		if before[id] {
			t.Errorf("a claimed sandbox %s is back in the pool", id)
		}
	}
	if p := poolHealth(t, c, pool); p.Hits != 2 || p.Refilled < 4 {
		t.Errorf("pool health %+v, want 2 hits and at least 4 fills", p)
	}
	// A claimed sandbox ends like a cold one: killed, then gone from the engine.
	if _, err := c.Kill(ctx, a); err != nil {
		t.Fatal(err)
	}
	if info, err := c.Container(ctx, a); err != nil || info.Status != api.ContainerStatusKilled || !info.Warm {
		t.Errorf("after kill: %+v, %v", info, err)
	}
}

// TestWarmPoolRoomAndRestart: pooled sandboxes count against max_containers; a
// spawn that needs room evicts a ready one; with no room and an empty pool a
// spawn is refused; a pool refills when a sandbox ends; a restarted server
// adopts the claimed sandbox and refills its pool, and shutdown removes every
// pooled container.
func TestWarmPoolRoomAndRestart(t *testing.T) {
	requireDocker(t)
	cfg := dockerConfig(t)
	pool := "room-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cfg.Containers.MaxContainers = 2
	cfg.Containers.WarmPool = []config.WarmPool{{Name: pool, Image: testImage, Size: 2}}
	cfg.Logging.Level = "info"
	var serverLog testkit.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", serverLog.String())
		}
	})
	addrs, stop := runDaemonLog(t, cfg, &serverLog)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()
	waitPoolReady(t, c, pool, 2)

	// A cold profile with no room left: it takes the room of a ready sandbox.
	mem := int64(64)
	other, err := c.Spawn(ctx, api.ContainerSpawnRequest{Command: []string{"sleep", "300"},
		Capabilities: &api.ContainerCapabilities{Resources: &api.ContainerResources{MemoryMB: &mem}}})
	if err != nil {
		t.Fatalf("a spawn needing the room of a pooled sandbox: %v", err)
	}
	t.Cleanup(func() { c.Kill(context.Background(), other.ContainerID) })
	if p := poolHealth(t, c, pool); p.Ready != 1 || other.Warm {
		t.Errorf("after the eviction: pool %+v, spawn warm=%v", p, other.Warm)
	}
	claimed, err := c.Spawn(ctx, api.ContainerSpawnRequest{Command: []string{"sleep", "300"}})
	if err != nil || !claimed.Warm {
		t.Fatalf("claim the last ready sandbox: %+v, %v", claimed, err)
	}
	t.Cleanup(func() { c.Kill(context.Background(), claimed.ContainerID) })
	// Full, and the pool empty: refused, and the miss is counted.
	if _, err := c.Spawn(ctx, api.ContainerSpawnRequest{Command: []string{"sleep", "300"}}); apiCode(err) != api.CodeResourceExhausted {
		t.Errorf("spawn with no room and an empty pool: %v, want %s", err, api.CodeResourceExhausted)
	}
	if p := poolHealth(t, c, pool); p.Ready != 0 || p.Filling != 0 || p.Misses != 1 {
		t.Errorf("full server: pool %+v, want nothing ready or starting and 1 miss", p)
	}
	// Room again: the pool refills (one fits).
	if _, err := c.Kill(ctx, other.ContainerID); err != nil {
		t.Fatal(err)
	}
	waitPoolReady(t, c, pool, 1)

	// Restart: the claimed sandbox is adopted, the pooled ones are removed at
	// shutdown and the pool is filled anew.
	oldPooled := pooledContainers(t, pool)
	delete(oldPooled, claimed.ContainerID)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for id := range oldPooled {
		if _, err := os.Stat(filepath.Join(cfg.Containers.ProxiesDir, id)); !os.IsNotExist(err) {
			t.Errorf("pooled sandbox %s left its socket dir after shutdown (%v)", id, err)
		}
	}
	left := pooledContainers(t, pool)
	if len(left) != 1 || !left[claimed.ContainerID] {
		t.Errorf("containers of the pool after shutdown: %v, want only the claimed %s", left, claimed.ContainerID)
	}
	// The second server ends everything at its stop (the cleanups above ran
	// against the first).
	cfg.Containers.KillOnShutdown = true
	addrs, _ = runDaemonLog(t, cfg, &serverLog)
	c = apiClient(t, cfg, addrs[0])
	waitPoolReady(t, c, pool, 1)
	if out := execText(t, c, claimed.ContainerID, "echo adopted"); out != "adopted\n" {
		t.Errorf("exec in the adopted claimed sandbox: %q", out)
	}
	for id := range pooledContainers(t, pool) {
		if oldPooled[id] {
			t.Errorf("the old pooled sandbox %s came back after restart", id)
		}
	}
}

// TestWarmPoolConfigRefused: a pool the policy would refuse stops the server
// with the key named.
func TestWarmPoolConfigRefused(t *testing.T) {
	cfg := testConfig(t)
	cfg.Containers.WarmPool = []config.WarmPool{{Image: "evil.example/miner:latest", Size: 1}}
	err := Run(context.Background(), cfg, Options{Stderr: &strings.Builder{}})
	if err == nil || !strings.Contains(err.Error(), "containers.warm_pool[0].image") {
		t.Fatalf("Run with a refused pool image: %v", err)
	}
	cfg.Containers.WarmPool = []config.WarmPool{{Image: "alpine:latest", MemoryMB: 1 << 20, Size: 1}}
	err = Run(context.Background(), cfg, Options{Stderr: &strings.Builder{}})
	if err == nil || !strings.Contains(err.Error(), "containers.warm_pool[0].memory_mb") {
		t.Fatalf("Run with a pool above max_memory_mb: %v", err)
	}
}

// TestWarmPoolFillFailureBacksOff: a pool whose fills fail (its image is not
// present) backs off and says why in health; a spawn that matches it starts
// cold (and fails as a cold spawn of that image does) and counts as a miss.
func TestWarmPoolFillFailureBacksOff(t *testing.T) {
	requireDocker(t)
	cfg := dockerConfig(t)
	pool := "missing-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	image := "clawbox-test/missing-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":latest"
	cfg.Containers.WarmPool = []config.WarmPool{{Name: pool, Image: image, Size: 1}}
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	var p api.WarmPoolHealth
	poll.Until(t, poll.Server, "two failed fills", func() (bool, error) {
		p = poolHealth(t, c, pool)
		return p.Failures >= 2, fmt.Errorf("%+v", p)
	})
	if !strings.Contains(p.LastError, "not present locally") || p.RetryAt == nil || p.Ready != 0 {
		t.Errorf("failing pool: %+v, want the reason, a retry time and nothing ready", p)
	}
	_, err := c.Spawn(context.Background(), api.ContainerSpawnRequest{Image: image, Command: []string{"true"}})
	if apiCode(err) != api.CodeImageNotFound {
		t.Errorf("spawn matching the failing pool: %v, want the cold spawn's %s", err, api.CodeImageNotFound)
	}
	if p := poolHealth(t, c, pool); p.Misses != 1 || p.Hits != 0 {
		t.Errorf("after the spawn: %+v, want 1 miss", p)
	}
}

// TestWarmPoolBurst: more concurrent spawns than ready sandboxes all succeed,
// each with its own sandbox; the ones that found the pool empty started cold;
// health counts every claim and every miss.
func TestWarmPoolBurst(t *testing.T) {
	requireDocker(t)
	cfg := dockerConfig(t)
	pool := "burst-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cfg.Containers.WarmPool = []config.WarmPool{{Name: pool, Image: testImage, Size: 2}}
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	waitPoolReady(t, c, pool, 2)
	const n = 6
	infos := make([]*api.ContainerInfo, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			infos[i], errs[i] = c.Spawn(context.Background(), api.ContainerSpawnRequest{Command: []string{"sleep", "300"}})
		}()
	}
	wg.Wait()
	ids := map[string]bool{}
	warm := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("spawn %d: %v", i, errs[i])
			continue
		}
		id := infos[i].ContainerID
		t.Cleanup(func() { c.Kill(context.Background(), id) })
		if ids[id] {
			t.Errorf("two spawns got sandbox %s", id)
		}
		ids[id] = true
		if infos[i].Warm {
			warm++
		}
		if out := execText(t, c, id, "echo ok"); out != "ok\n" {
			t.Errorf("exec in %s (warm %v): %q", id, infos[i].Warm, out)
		}
	}
	if p := poolHealth(t, c, pool); int(p.Hits) != warm || int(p.Hits+p.Misses) != n || warm < 1 {
		t.Errorf("pool %+v after %d spawns of which %d warm", p, n, warm)
	}
}
