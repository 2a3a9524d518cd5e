package docker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/sandbox/sandboxtest"
)

func ptr[T any](v T) *T { return &v }

func spawnReq(command ...string) api.ContainerSpawnRequest {
	return api.ContainerSpawnRequest{Task: "test task", Command: command}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	e, ok := api.AsError(err)
	if !ok || e.Code != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
}

// TestCreateOptions checks the hardened configuration built for each policy,
// without a daemon (container_direct is only ever inspected, never run).
func TestCreateOptions(t *testing.T) {
	base := sandbox.Spec{
		ID: "clawbox-x", Task: strings.Repeat("é", 100), Image: "docker.io/library/alpine:latest",
		Instance: "inst", User: "1000:1000", MemoryBytes: 256 << 20, CPUShares: 512, NanoCPUs: 5e8,
		PidsLimit: 64, TmpfsMB: 32, Nofile: 1024, Env: []string{"A=1"}, Command: []string{"true"},
	}
	tests := []struct {
		name    string
		policy  sandbox.Policy
		sockDir string
		network container.NetworkMode
		mounts  int
	}{
		{"container", sandbox.PolicyContainer, "/proxies/clawbox-x", "none", 1},
		{"container_direct", sandbox.PolicyContainerDirect, "", "clawbox-x-net", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := base
			spec.Policy, spec.SocketDir = tc.policy, tc.sockDir
			o := createOptions(spec, imageDefaults{})
			hc, cfg := o.HostConfig, o.Config
			if o.Name != "clawbox-x" || cfg.User != "1000:1000" || cfg.Image != spec.Image {
				t.Errorf("name/user/image = %q %q %q", o.Name, cfg.User, cfg.Image)
			}
			if hc.NetworkMode != tc.network {
				t.Errorf("network = %q, want %q", hc.NetworkMode, tc.network)
			}
			if !hc.ReadonlyRootfs || !slices.Equal(hc.CapDrop, []string{"ALL"}) || !slices.Equal(hc.SecurityOpt, []string{"no-new-privileges:true"}) {
				t.Errorf("rootfs/caps/secopt = %v %v %v", hc.ReadonlyRootfs, hc.CapDrop, hc.SecurityOpt)
			}
			if hc.Tmpfs["/tmp"] != "rw,noexec,nosuid,nodev,size=32m,mode=1777,uid=1000,gid=1000" {
				t.Errorf("tmpfs = %q", hc.Tmpfs["/tmp"])
			}
			if hc.Memory != 256<<20 || hc.MemorySwap != hc.Memory || hc.CPUShares != 512 || hc.NanoCPUs != 5e8 || *hc.PidsLimit != 64 {
				t.Errorf("resources = %+v", hc.Resources)
			}
			if len(hc.Ulimits) != 1 || hc.Ulimits[0].Name != "nofile" || hc.Ulimits[0].Hard != 1024 || hc.Ulimits[0].Soft != 1024 {
				t.Errorf("ulimits = %v", hc.Ulimits)
			}
			if hc.Init == nil || !*hc.Init {
				t.Error("init is not on")
			}
			if len(hc.Mounts) != tc.mounts {
				t.Fatalf("mounts = %v", hc.Mounts)
			}
			if tc.mounts == 1 && (hc.Mounts[0] != mount.Mount{Type: mount.TypeBind, Source: tc.sockDir, Target: "/run/clawbox", ReadOnly: true}) {
				t.Errorf("mount = %+v", hc.Mounts[0])
			}
			if l := cfg.Labels; l[sandbox.LabelContainerID] != "clawbox-x" || l[sandbox.LabelInstance] != "inst" || l[sandbox.LabelPolicy] != string(tc.policy) ||
				len(l[sandbox.LabelTask]) > sandbox.MaxTaskLabel || !strings.HasPrefix(spec.Task, l[sandbox.LabelTask]) || l[sandbox.LabelTask] == "" {
				t.Errorf("labels = %v", l)
			}
		})
	}
}

// TestHardenedConfigApplied inspects a running sandbox's container on the daemon.
func TestHardenedConfigApplied(t *testing.T) {
	dockertest.ForEachRuntime(t, testHardenedConfigApplied)
}

func testHardenedConfigApplied(t *testing.T, rt dockertest.Runtime) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{runtime: rt})
	ctx := testCtx(t)
	req := spawnReq("sleep", "300")
	req.Capabilities = &api.ContainerCapabilities{Resources: &api.ContainerResources{MemoryMB: ptr[int64](64), CPUs: ptr(0.5)}}
	rec, err := e.m.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.backend.cli.ContainerInspect(ctx, rec.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Container
	hc := c.HostConfig
	if c.Name != "/"+rec.ID || c.Config.User != "1000:1000" || !c.State.Running {
		t.Errorf("name %q user %q running %v", c.Name, c.Config.User, c.State.Running)
	}
	if !hc.ReadonlyRootfs || !slices.Equal(hc.CapDrop, []string{"ALL"}) || !slices.Contains(hc.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("rootfs %v capdrop %v secopt %v", hc.ReadonlyRootfs, hc.CapDrop, hc.SecurityOpt)
	}
	if slices.ContainsFunc(hc.SecurityOpt, func(s string) bool { return strings.HasPrefix(s, "seccomp") }) {
		t.Errorf("seccomp changed: %v", hc.SecurityOpt)
	}
	// The supervisor is PID 1 (in place of the engine's init), running the command.
	if hc.NetworkMode != "none" || hc.Init == nil || *hc.Init {
		t.Errorf("network %q init %v (want off: the supervisor is the init)", hc.NetworkMode, hc.Init)
	}
	if !slices.Equal(c.Config.Entrypoint, sandbox.SupervisorArgs(100<<20, true)) || !slices.Equal(c.Config.Cmd, []string{"sleep", "300"}) {
		t.Errorf("entrypoint %q cmd %q", c.Config.Entrypoint, c.Config.Cmd)
	}
	wantPids := int64(256)
	if rt.GVisor() {
		wantPids = runscPidsLimit
	}
	if hc.Runtime != map[bool]string{false: "runc", true: "runsc"}[rt.GVisor()] {
		t.Errorf("runtime %q, want %s", hc.Runtime, rt.Name)
	}
	if hc.Memory != 64<<20 || hc.MemorySwap != 64<<20 || hc.NanoCPUs != 5e8 || hc.CPUShares != 1024 || hc.PidsLimit == nil || *hc.PidsLimit != wantPids {
		t.Errorf("memory %d swap %d nanocpus %d shares %d pids %v", hc.Memory, hc.MemorySwap, hc.NanoCPUs, hc.CPUShares, hc.PidsLimit)
	}
	if hc.Tmpfs["/tmp"] != "rw,noexec,nosuid,nodev,size=256m,mode=1777,uid=1000,gid=1000" {
		t.Errorf("tmpfs %q", hc.Tmpfs["/tmp"])
	}
	if len(hc.Ulimits) != 1 || hc.Ulimits[0].Name != "nofile" || hc.Ulimits[0].Hard != 1024 {
		t.Errorf("ulimits %v", hc.Ulimits)
	}
	sockDir := filepath.Join(e.proxiesDir, rec.ID)
	var found bool
	for _, mp := range c.Mounts {
		if mp.Destination == "/run/clawbox" {
			found = true
			if mp.RW || mp.Source != sockDir {
				t.Errorf("socket mount %+v", mp)
			}
		}
	}
	if !found {
		t.Errorf("no /run/clawbox mount in %+v", c.Mounts)
	}
	var supMount bool
	for _, mp := range c.Mounts {
		if mp.Destination == sandbox.ContainerSupervisorPath {
			supMount = true
			if mp.RW || !strings.HasPrefix(filepath.Base(mp.Source), "clawbox-supervisor-") {
				t.Errorf("supervisor mount %+v", mp)
			}
			if st, err := os.Stat(mp.Source); err != nil || st.Mode().Perm() != 0o555 {
				t.Errorf("supervisor binary %s: %v %v", mp.Source, err, st)
			}
		}
	}
	if !supMount {
		t.Errorf("no supervisor mount in %+v", c.Mounts)
	}
	l := c.Config.Labels
	if l[sandbox.LabelContainerID] != rec.ID || l[sandbox.LabelInstance] != e.instance || l[sandbox.LabelPolicy] != "container" || l[sandbox.LabelTask] != "test task" {
		t.Errorf("labels %v", l)
	}
	env := strings.Join(c.Config.Env, "\n")
	for _, want := range []string{"CLAWBOX_PROXY_SOCKET=/run/clawbox/proxy.sock", "CLAWBOX_CONTAINER_ID=" + rec.ID, "CLAWBOX_PROXY_TOKEN_FILE=/run/clawbox/token", "CLAWBOX_PROXY_TOKEN="} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %q", want)
		}
	}
	// Socket dir and token file modes, and the base dir.
	for path, want := range map[string]os.FileMode{e.proxiesDir: 0o700, sockDir: 0o755, filepath.Join(sockDir, "token"): 0o444, filepath.Join(sockDir, "proxy.sock"): 0o666} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", path, st.Mode().Perm(), want)
		}
	}
	if _, err := e.m.Kill(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
}

func TestSpawnCompletesWithLogs(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{})
	ctx := testCtx(t)
	rec, err := e.m.Spawn(ctx, spawnReq("sh", "-c", "echo out; echo err >&2; echo more"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != sandbox.StatusRunning || !strings.HasPrefix(rec.ID, "clawbox-") {
		t.Fatalf("spawned %+v", rec)
	}
	final, err := e.m.Wait(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != sandbox.StatusCompleted || final.ExitCode == nil || *final.ExitCode != 0 {
		t.Fatalf("final %s exit %v", final.Status, final.ExitCode)
	}
	if string(final.Logs.Stdout) != "out\nmore\n" || string(final.Logs.Stderr) != "err\n" || final.Logs.Truncated {
		t.Errorf("logs %q %q %v", final.Logs.Stdout, final.Logs.Stderr, final.Logs.Truncated)
	}
	if final.FinishedAt.IsZero() || !final.ExpiresAt.After(final.FinishedAt) {
		t.Errorf("times %v %v", final.FinishedAt, final.ExpiresAt)
	}
	assertGone(t, e, final)
	if got := e.audit.events(rec.ID); !slices.Equal(got, []string{"spawned", "completed"}) {
		t.Errorf("audit events %v", got)
	}
	if v := metricValue(t, e, "clawbox_containers_total", "spawned"); v != 1 {
		t.Errorf("spawned counter %v", v)
	}
	var out, errb strings.Builder
	if err := e.m.FollowLogs(ctx, rec.ID, &out, &errb); err != nil || out.String() != "out\nmore\n" || errb.String() != "err\n" {
		t.Errorf("follow logs of a finished sandbox: %v %q %q", err, out.String(), errb.String())
	}
}

// metricValue finds one series (by its status label) of a metric family in the env's
// registry.
func metricValue(t *testing.T, e *env, name, status string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "status" && l.GetValue() == status {
					if m.Counter != nil {
						return m.Counter.GetValue()
					}
					return m.Gauge.GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{status=%q}", name, status)
	return 0
}

// assertGone checks that a finished sandbox left nothing behind: no container, no
// socket dir, no door, a revoked token.
func assertGone(t *testing.T, e *env, rec *sandbox.Record) {
	t.Helper()
	if _, err := e.backend.Inspect(context.Background(), rec.ContainerID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("container still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.proxiesDir, rec.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket dir still there: %v", err)
	}
	if n := e.doors.Open(); n != 0 {
		t.Errorf("%d doors still open", n)
	}
}

func TestSpawnFailsWithExitCode(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{})
	ctx := testCtx(t)
	rec, err := e.m.Spawn(ctx, spawnReq("sh", "-c", "echo bye >&2; exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	final, err := e.m.Wait(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != sandbox.StatusFailed || final.ExitCode == nil || *final.ExitCode != 3 || final.OOMKilled {
		t.Fatalf("final %s exit %v oom %v", final.Status, final.ExitCode, final.OOMKilled)
	}
	if string(final.Logs.Stderr) != "bye\n" {
		t.Errorf("stderr %q", final.Logs.Stderr)
	}
	kr := final.KillResponse()
	if kr.Status != "failed" || kr.ExitCode == nil || *kr.ExitCode != 3 || kr.Output == nil || *kr.Output != "bye\n" {
		t.Errorf("kill response %+v", kr)
	}
	assertGone(t, e, final)
}

func TestLogsAreCapped(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{})
	ctx := testCtx(t)
	req := spawnReq("sh", "-c", "yes | head -c 5000; echo short >&2")
	req.Capabilities = &api.ContainerCapabilities{Resources: &api.ContainerResources{MaxOutputBytes: ptr[int64](1000)}}
	rec, err := e.m.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	final, err := e.m.Wait(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(final.Logs.Stdout) != 1000 || !final.Logs.Truncated || string(final.Logs.Stderr) != "short\n" {
		t.Errorf("stdout %d bytes, truncated %v, stderr %q", len(final.Logs.Stdout), final.Logs.Truncated, final.Logs.Stderr)
	}
}

func TestDeadlineTimesOut(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{fakeClock: true})
	ctx := testCtx(t)
	req := spawnReq("sleep", "300")
	req.Capabilities = &api.ContainerCapabilities{Resources: &api.ContainerResources{TimeoutMS: ptr[int64](60_000)}}
	rec, err := e.m.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(time.Minute); !rec.Deadline.Equal(want) {
		t.Errorf("deadline %v, want %v", rec.Deadline, want)
	}
	// The reaper's timer and the monitor's deadline.
	if err := e.clock.WaitTimers(ctx, 2); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(59 * time.Second)
	if got, _ := e.m.Get(ctx, rec.ID); got.Status != sandbox.StatusRunning {
		t.Fatalf("status before the deadline: %s", got.Status)
	}
	e.clock.Advance(time.Second)
	final, err := e.m.Wait(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != sandbox.StatusTimedOut {
		t.Fatalf("status %s", final.Status)
	}
	assertGone(t, e, final)
	if got := e.audit.events(rec.ID); !slices.Equal(got, []string{"spawned", "timed_out"}) {
		t.Errorf("audit events %v", got)
	}
}

func TestKill(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{})
	ctx := testCtx(t)
	rec, err := e.m.Spawn(ctx, spawnReq("sh", "-c", "echo started; exec sleep 300"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(e.proxiesDir, rec.ID, "token"))
	if err != nil {
		t.Fatal(err)
	}
	// Follow the running sandbox's logs until its first line.
	fctx, stopFollow := context.WithCancel(ctx)
	first := &firstWrite{cancel: stopFollow}
	if err := e.m.FollowLogs(fctx, rec.ID, first, first); err != nil {
		t.Fatal(err)
	}
	if first.String() != "started\n" {
		t.Fatalf("followed %q", first.String())
	}
	if !e.m.Authenticate(rec.ID, string(token)) || e.m.Authenticate(rec.ID, strings.Repeat("0", 64)) {
		t.Fatal("token check before kill")
	}
	// Several concurrent kills: one teardown, the same final record for all.
	var wg sync.WaitGroup
	results := make([]*sandbox.Record, 3)
	for i := range results {
		wg.Go(func() {
			r, err := e.m.Kill(ctx, rec.ID)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		})
	}
	wg.Wait()
	for _, r := range results {
		if r == nil || r.Status != sandbox.StatusKilled || !r.FinishedAt.Equal(results[0].FinishedAt) {
			t.Fatalf("kill result %+v", r)
		}
	}
	if e.m.Authenticate(rec.ID, string(token)) {
		t.Error("token still valid after kill")
	}
	if string(results[0].Logs.Stdout) != "started\n" {
		t.Errorf("stdout %q", results[0].Logs.Stdout)
	}
	assertGone(t, e, results[0])
	again, err := e.m.Kill(ctx, rec.ID)
	if err != nil || again.Status != sandbox.StatusKilled || !again.FinishedAt.Equal(results[0].FinishedAt) {
		t.Errorf("second kill: %v %+v", err, again)
	}
	if got := e.audit.events(rec.ID); !slices.Equal(got, []string{"spawned", "killed"}) {
		t.Errorf("audit events %v", got)
	}
	_, err = e.m.Kill(ctx, "clawbox-unknown")
	wantCode(t, err, api.CodeNotFound)
	_, err = e.m.Get(ctx, "clawbox-unknown")
	wantCode(t, err, api.CodeNotFound)
}

func TestCapacityUnderParallelSpawns(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{maxContainers: 2})
	ctx := testCtx(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	ids := make([]string, n)
	for i := range n {
		wg.Go(func() {
			rec, err := e.m.Spawn(ctx, spawnReq("sleep", "300"))
			errs[i] = err
			if err == nil {
				ids[i] = rec.ID
			}
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantCode(t, err, api.CodeResourceExhausted)
	}
	if ok != 2 {
		t.Fatalf("%d spawns succeeded, want 2", ok)
	}
	if running, _ := e.m.List(ctx, "running"); len(running) != 2 {
		t.Errorf("%d running", len(running))
	}
	// A finished sandbox frees its slot.
	for _, id := range ids {
		if id != "" {
			if _, err := e.m.Kill(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	rec, err := e.m.Spawn(ctx, spawnReq("true"))
	if err != nil {
		t.Fatalf("spawn after kills: %v", err)
	}
	if _, err := e.m.Wait(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	all, _ := e.m.List(ctx, "")
	if len(all) != 3 {
		t.Errorf("%d records, want 3", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].CreatedAt.After(all[i-1].CreatedAt) {
			t.Errorf("list not newest first")
		}
	}
}

// TestSpawnFailureLeavesNothing injects a failure at each late step of a spawn.
func TestSpawnFailureLeavesNothing(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	tests := []struct {
		name     string
		failDoor bool
		image    string
		code     string
	}{
		{name: "door fails to open", failDoor: true},
		{name: "image missing", image: "clawbox-test/missing:" + randHex(4), code: api.CodeImageNotFound},
		{name: "image not allowed", image: "alpine", code: api.CodeImageNotAllowed},
		{name: "policy not allowed", code: api.CodePolicyDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, newWorld(t), envOptions{})
			ctx := testCtx(t)
			if tc.failDoor {
				e.doors.Fail = errors.New("injected door failure")
			}
			req := spawnReq("sleep", "300")
			req.Image = tc.image
			if tc.code == api.CodePolicyDenied {
				req.Policy = api.SandboxPolicyContainerDirect
			}
			_, err := e.m.Spawn(ctx, req)
			if err == nil {
				t.Fatal("spawn succeeded")
			}
			if tc.code != "" {
				wantCode(t, err, tc.code)
			}
			if recs, _ := e.m.List(ctx, ""); len(recs) != 0 {
				t.Errorf("records left: %d", len(recs))
			}
			if entries, _ := os.ReadDir(e.proxiesDir); len(entries) != 0 {
				t.Errorf("socket dirs left: %v", entries)
			}
			if cs, _ := e.backend.List(ctx, e.instance); len(cs) != 0 {
				t.Errorf("containers left: %v", cs)
			}
			if n := e.doors.Open(); n != 0 {
				t.Errorf("doors left: %d", n)
			}
		})
	}
}

// TestWorkloadReachesItsDoor runs the test agent inside a sandbox: it reads its
// token and calls GET /health over /run/clawbox/proxy.sock.
func TestWorkloadReachesItsDoor(t *testing.T) {
	dockertest.ForEachRuntime(t, testWorkloadReachesItsDoor)
}

func testWorkloadReachesItsDoor(t *testing.T, rt dockertest.Runtime) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{runtime: rt})
	ctx := testCtx(t)
	for _, tc := range []struct {
		name string
		args []string
		want func(id string) string
	}{
		{"own token", []string{"/agent"}, func(id string) string { return "200 " + id + "\n" }},
		{"wrong token", []string{"/agent", "-bad-token"}, func(string) string { return "401 " }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := e.m.Spawn(ctx, spawnReq(tc.args...))
			if err != nil {
				t.Fatal(err)
			}
			final, err := e.m.Wait(ctx, rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			if final.Status != sandbox.StatusCompleted || !strings.HasPrefix(string(final.Logs.Stdout), tc.want(rec.ID)) {
				t.Errorf("status %s stdout %q stderr %q", final.Status, final.Logs.Stdout, final.Logs.Stderr)
			}
		})
	}
}

// TestRestartAdoptsAndReconciles stops a manager, leaving its sandboxes running,
// then starts a new one over the same store and instance id.
func TestRestartAdoptsAndReconciles(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	w := newWorld(t)
	e1 := newEnv(t, w, envOptions{})
	ctx := testCtx(t)
	adopted, err := e1.m.Spawn(ctx, spawnReq("sleep", "300"))
	if err != nil {
		t.Fatal(err)
	}
	vanished, err := e1.m.Spawn(ctx, spawnReq("sleep", "300"))
	if err != nil {
		t.Fatal(err)
	}
	e1.close(t)
	token, err := os.ReadFile(filepath.Join(w.proxiesDir, adopted.ID, "token"))
	if err != nil {
		t.Fatal(err)
	}
	// Behind clawbox's back: a container vanishes, an orphan appears, and another
	// instance runs a container on the same daemon.
	b, err := New(Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Remove(ctx, vanished.ContainerID); err != nil {
		t.Fatal(err)
	}
	spec := sandbox.Spec{Task: "orphan", Image: testImage, Policy: sandbox.PolicyContainer, Command: []string{"sleep", "300"},
		User: "1000:1000", MemoryBytes: 32 << 20, CPUShares: 2, PidsLimit: 16, TmpfsMB: 1, Nofile: 64}
	orphanSpec := spec
	orphanSpec.ID, orphanSpec.Instance = "clawbox-orphan-"+randHex(4), w.instance
	orphan, err := b.Start(ctx, orphanSpec)
	if err != nil {
		t.Fatal(err)
	}
	other := newWorld(t)
	otherSpec := spec
	otherSpec.ID, otherSpec.Instance = "clawbox-other-"+randHex(4), other.instance
	foreign, err := b.Start(ctx, otherSpec)
	if err != nil {
		t.Fatal(err)
	}

	e2 := newEnv(t, w, envOptions{})
	got, err := e2.m.Get(ctx, adopted.ID)
	if err != nil || got.Status != sandbox.StatusRunning {
		t.Fatalf("adopted: %v %+v", err, got)
	}
	if !got.Deadline.Equal(adopted.Deadline) {
		t.Errorf("deadline changed: %v → %v", adopted.Deadline, got.Deadline)
	}
	status, body, err := sandboxtest.Get(ctx, filepath.Join(w.proxiesDir, adopted.ID, "proxy.sock"), string(token))
	if err != nil || status != 200 || body != adopted.ID {
		t.Errorf("door after adoption: %v %d %q", err, status, body)
	}
	lost, err := e2.m.Get(ctx, vanished.ID)
	if err != nil || lost.Status != sandbox.StatusLost {
		t.Errorf("vanished: %v %+v", err, lost)
	}
	if _, err := os.Stat(filepath.Join(w.proxiesDir, vanished.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lost sandbox's socket dir: %v", err)
	}
	if _, err := b.Inspect(ctx, orphan); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("orphan still there: %v", err)
	}
	if c, err := b.Inspect(ctx, foreign); err != nil || !c.Running {
		t.Errorf("another instance's container was touched: %v %+v", err, c)
	}
	if ev := e2.audit.events(adopted.ID); !slices.Equal(ev, []string{"adopted"}) {
		t.Errorf("adopted events %v", ev)
	}
	if ev := e2.audit.events(vanished.ID); !slices.Equal(ev, []string{"lost"}) {
		t.Errorf("lost events %v", ev)
	}
	final, err := e2.m.Kill(ctx, adopted.ID)
	if err != nil || final.Status != sandbox.StatusKilled {
		t.Fatalf("kill adopted: %v %+v", err, final)
	}
	status, _, _ = sandboxtest.Get(ctx, filepath.Join(w.proxiesDir, adopted.ID, "proxy.sock"), string(token))
	if status == 200 {
		t.Error("door still answers after kill")
	}
}

func TestKillOnShutdown(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{killOnShutdown: true})
	ctx := testCtx(t)
	rec, err := e.m.Spawn(ctx, spawnReq("sleep", "300"))
	if err != nil {
		t.Fatal(err)
	}
	e.close(t)
	if _, err := e.backend.Inspect(ctx, rec.ContainerID); err == nil {
		t.Error("container survived shutdown")
	}
	_, err = e.m.Spawn(ctx, spawnReq("true"))
	wantCode(t, err, api.CodeUnavailable)
}

func TestReaperRemovesExpiredRecords(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{fakeClock: true, retention: time.Hour})
	ctx := testCtx(t)
	rec, err := e.m.Spawn(ctx, spawnReq("true"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Wait(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Reap(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Get(ctx, rec.ID); err != nil {
		t.Fatalf("record reaped before it expired: %v", err)
	}
	e.clock.Advance(time.Hour)
	if err := e.m.Reap(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = e.m.Get(ctx, rec.ID)
	wantCode(t, err, api.CodeNotFound)
	if ev := e.audit.events(rec.ID); !slices.Equal(ev, []string{"spawned", "completed", "reaped"}) {
		t.Errorf("events %v", ev)
	}

	// A sandbox in creating (a spawn in flight elsewhere) is never reaped, even
	// though its container has no running record yet; one without any record is.
	inFlight := &sandbox.Record{ID: "clawbox-inflight-" + randHex(4), Task: "t", Image: testImage, Policy: sandbox.PolicyContainer,
		Status: sandbox.StatusCreating, CreatedAt: e.clock.Now()}
	if err := e.db.CreateSandbox(ctx, inFlight, 10); err != nil {
		t.Fatal(err)
	}
	spec := sandbox.Spec{Task: "t", Image: testImage, Policy: sandbox.PolicyContainer, Command: []string{"sleep", "300"}, Instance: e.instance,
		User: "1000:1000", MemoryBytes: 32 << 20, CPUShares: 2, PidsLimit: 16, TmpfsMB: 1, Nofile: 64}
	spec.ID = inFlight.ID
	kept, err := e.backend.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.ID = "clawbox-orphan-" + randHex(4)
	orphan, err := e.backend.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.Reap(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := e.backend.Inspect(ctx, kept); err != nil || !c.Running {
		t.Errorf("creating sandbox's container was reaped: %v", err)
	}
	if _, err := e.backend.Inspect(ctx, orphan); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("orphan survived the reaper: %v", err)
	}
}

// firstWrite keeps the first write and cancels.
type firstWrite struct {
	mu     sync.Mutex
	b      strings.Builder
	cancel context.CancelFunc
}

func (f *firstWrite) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.b.Len() == 0 {
		f.b.Write(p)
		f.cancel()
	}
	return len(p), nil
}

func (f *firstWrite) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.b.String()
}

// TestSupervisorEntrypoint checks that the supervisor is the entrypoint and the
// main command is what Docker itself would have run.
func TestSupervisorEntrypoint(t *testing.T) {
	img := imageDefaults{Entrypoint: []string{"/ep", "-x"}, Cmd: []string{"serve"}}
	for _, tc := range []struct {
		name    string
		command []string
		img     imageDefaults
		want    []string
	}{
		{"spawn command after the image entrypoint", []string{"run", "it"}, img, []string{"/ep", "-x", "run", "it"}},
		{"image entrypoint and cmd", nil, img, []string{"/ep", "-x", "serve"}},
		{"image cmd only", nil, imageDefaults{Cmd: []string{"/bin/sh"}}, []string{"/bin/sh"}},
		{"nothing: the supervisor idles", nil, imageDefaults{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := sandbox.Spec{ID: "clawbox-x", Command: tc.command, Supervisor: "/state/supervisor/clawbox-supervisor-ab", Entrypoint: sandbox.SupervisorArgs(7, true)}
			o := createOptions(spec, tc.img)
			if o.HostConfig.Init == nil || *o.HostConfig.Init {
				t.Error("the engine's init is on beside the supervisor")
			}
			if !slices.Equal(o.Config.Entrypoint, sandbox.SupervisorArgs(7, true)) || !slices.Equal(o.Config.Cmd, tc.want) {
				t.Errorf("entrypoint %q cmd %q, want cmd %q", o.Config.Entrypoint, o.Config.Cmd, tc.want)
			}
			want := mount.Mount{Type: mount.TypeBind, Source: spec.Supervisor, Target: sandbox.ContainerSupervisorPath, ReadOnly: true}
			if !slices.Contains(o.HostConfig.Mounts, want) {
				t.Errorf("mounts %+v lack %+v", o.HostConfig.Mounts, want)
			}
		})
	}
}
