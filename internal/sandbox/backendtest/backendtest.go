// Package backendtest is the test suite every sandbox.Backend must pass, run by
// each backend's own tests (internal/sandbox/docker, internal/sandbox/kubernetes)
// against its real engine: a sandbox.Manager over the backend, spawning the test
// image of internal/dockertest (busybox and the test agent), checked from the
// outside (status, exit code, logs, what the backend lists) and from the inside
// (the hardening a workload sees, its door, exec and files through the
// supervisor, no network but loopback), then across a restart (adoption, a
// vanished container, an orphan) and behind clawbox's back (lost).
package backendtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/sandbox/sandboxtest"
	"github.com/clawbox/clawbox/internal/store"
	"github.com/clawbox/clawbox/internal/testkit"
)

// Harness is one backend under test.
type Harness struct {
	// New returns a new backend over the same engine (a second call is what a
	// restarted server would make). The suite closes it.
	New func(t *testing.T) Backend
	// Image is the test image (internal/dockertest.BuildImage) as the backend
	// knows it; it is allowed by the allowlist entry "clawbox-test/".
	Image string
	// Dir is where the suite makes its worlds (state, socket dirs): a directory
	// the backend's containers can have mounted.
	Dir string
	// Destroy removes a sandbox's container behind clawbox's back, the way an
	// operator would (docker rm -f, kubectl delete pod).
	Destroy func(t *testing.T, containerID string)
	// RemoveInstance removes whatever the engine still holds of a test instance
	// (registered with t.Cleanup, so it also runs when a test failed).
	RemoveInstance func(t *testing.T, instance string)
	// Timeout bounds each test. Default 3 minutes.
	Timeout time.Duration
}

// Backend is a sandbox.Backend with its Close.
type Backend interface {
	sandbox.Backend
	Close() error
}

// Run runs the suite against h.
func Run(t *testing.T, h Harness) {
	if h.Timeout <= 0 {
		h.Timeout = 3 * time.Minute
	}
	for _, tc := range []struct {
		name string
		test func(*testing.T, Harness)
	}{
		{"Lifecycle", testLifecycle},
		{"HardeningFromInside", testHardening},
		{"Door", testDoor},
		{"ExecAndFiles", testExecAndFiles},
		{"Bridge", testBridge},
		{"NoNetworkButLoopback", testNoNetwork},
		{"Kill", testKill},
		{"Lost", testLost},
		{"AdoptionAndOrphans", testAdoption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, h)
		})
	}
}

// world is what survives a restart: the store file, the instance id and the
// proxies dir.
type world struct {
	dbPath, instance, proxiesDir string
}

func newWorld(t *testing.T, h Harness) world {
	dir, err := os.MkdirTemp(h.Dir, "cbx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	w := world{dbPath: filepath.Join(dir, "state.db"), instance: "clawbox-test-" + randHex(6), proxiesDir: filepath.Join(dir, "proxies")}
	t.Cleanup(func() { h.RemoveInstance(t, w.instance) })
	return w
}

type env struct {
	world
	m       *sandbox.Manager
	svc     *sandbox.Service
	db      *store.DB
	backend Backend
	doors   *sandboxtest.Doors
	closed  bool
}

func newEnv(t *testing.T, h Harness, w world) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, w.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	b := h.New(t)
	e := &env{world: w, db: db, backend: b, doors: &sandboxtest.Doors{}}
	e.m, err = sandbox.New(sandbox.Options{
		Config: sandbox.Config{
			InstanceID:    w.instance,
			ProxiesDir:    w.proxiesDir,
			AllowedImages: []string{"clawbox-test/"},
			DefaultImage:  h.Image,
			StopGrace:     2 * time.Second,
		},
		Backend: b, Store: db, Doors: e.doors, Logger: testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = sandbox.NewService(func() (*sandbox.Manager, error) { return e.m, nil }, nil)
	if err := e.m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.close(t) })
	return e
}

// close shuts the manager down, leaving running sandboxes (as a restart would),
// and releases the backend and the store. Idempotent.
func (e *env) close(t *testing.T) {
	if e.closed {
		return
	}
	e.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.m.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	e.backend.Close()
	e.db.Close()
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func testCtx(t *testing.T, h Harness) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	t.Cleanup(cancel)
	return ctx
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func spawn(t *testing.T, ctx context.Context, e *env, cmd ...string) *sandbox.Record {
	t.Helper()
	rec, err := e.m.Spawn(ctx, api.ContainerSpawnRequest{Task: "backend suite", Command: cmd})
	if err != nil {
		t.Fatalf("spawn %q: %v", cmd, err)
	}
	return rec
}

// output is a finished sandbox's stdout and stderr together (a backend may
// deliver both on one stream).
func output(r *sandbox.Record) string {
	return string(r.Logs.Stdout) + string(r.Logs.Stderr)
}

// waitGone polls until the backend lists nothing of the instance.
func waitGone(t *testing.T, ctx context.Context, b sandbox.Backend, instance string) {
	t.Helper()
	for {
		cs, err := b.List(ctx, instance)
		if err == nil && len(cs) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the backend still lists %+v (err %v)", cs, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func testLifecycle(t *testing.T, h Harness) {
	e := newEnv(t, h, newWorld(t, h))
	ctx := testCtx(t, h)
	ok := spawn(t, ctx, e, "sh", "-c", "echo to-stdout; echo to-stderr >&2")
	bad := spawn(t, ctx, e, "sh", "-c", "echo failing; exit 3")
	fin, err := e.m.Wait(ctx, ok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fin.Status != sandbox.StatusCompleted || fin.ExitCode == nil || *fin.ExitCode != 0 {
		t.Errorf("status %s exit %v", fin.Status, fin.ExitCode)
	}
	if out := output(fin); !strings.Contains(out, "to-stdout") || !strings.Contains(out, "to-stderr") {
		t.Errorf("logs %q", out)
	}
	if !strings.Contains(string(fin.Logs.Stdout), "to-stdout") {
		t.Errorf("stdout %q lacks the workload's stdout", fin.Logs.Stdout)
	}
	fin, err = e.m.Wait(ctx, bad.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fin.Status != sandbox.StatusFailed || fin.ExitCode == nil || *fin.ExitCode != 3 || !strings.Contains(output(fin), "failing") {
		t.Errorf("status %s exit %v logs %q", fin.Status, fin.ExitCode, output(fin))
	}
	// Finished sandboxes leave nothing on the engine.
	waitGone(t, ctx, e.backend, e.instance)
	if _, err := e.backend.Inspect(ctx, ok.ContainerID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("inspect after finish: %v, want not found", err)
	}
	// Remove of what is gone already is no error.
	if err := e.backend.Remove(ctx, ok.ContainerID); err != nil {
		t.Errorf("second remove: %v", err)
	}
}

// The hardening of SPEC 2.1, as the workload sees it.
func testHardening(t *testing.T, h Harness) {
	e := newEnv(t, h, newWorld(t, h))
	ctx := testCtx(t, h)
	rec := spawn(t, ctx, e, "sh", "-c", `echo "uid=$(id -u) gid=$(id -g)"
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
touch /rootfs-write 2>/dev/null && echo root=writable || echo root=readonly
touch /tmp/x && echo tmp=writable
echo "ifaces=$(ls /sys/class/net | tr '\n' ' ')"
/agent-suid -whoami`)
	fin, err := e.m.Wait(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	out := output(fin)
	for _, want := range []string{
		"uid=1000 gid=1000", "root=readonly", "tmp=writable", "ifaces=lo \n",
		"NoNewPrivs:\t1", "Seccomp:\t2", "euid=1000 uid=1000",
		"CapInh:\t0000000000000000", "CapPrm:\t0000000000000000", "CapEff:\t0000000000000000",
		"CapBnd:\t0000000000000000", "CapAmb:\t0000000000000000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inside the sandbox: no %q in\n%s", want, out)
		}
	}
	if fin.Status != sandbox.StatusCompleted {
		t.Errorf("status %s", fin.Status)
	}
}

// The workload reaches its own door with its token, and only with it.
func testDoor(t *testing.T, h Harness) {
	e := newEnv(t, h, newWorld(t, h))
	ctx := testCtx(t, h)
	own := spawn(t, ctx, e, "/agent")
	wrong := spawn(t, ctx, e, "/agent", "-bad-token")
	fin, err := e.m.Wait(ctx, own.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fin.Status != sandbox.StatusCompleted || !strings.HasPrefix(string(fin.Logs.Stdout), "200 "+own.ID+"\n") {
		t.Errorf("own token: status %s logs %q", fin.Status, output(fin))
	}
	fin, err = e.m.Wait(ctx, wrong.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(fin.Logs.Stdout), "401 ") {
		t.Errorf("wrong token: status %s logs %q", fin.Status, output(fin))
	}
}

// Exec and files go through the supervisor, whatever runs the container.
func testExecAndFiles(t *testing.T, h Harness) {
	e := newEnv(t, h, newWorld(t, h))
	ctx := testCtx(t, h)
	rec := spawn(t, ctx, e, "sleep", "300")
	t.Cleanup(func() { e.m.Kill(context.Background(), rec.ID) })
	var out, errb testkit.Buffer
	x, err := e.svc.Exec(ctx, rec.ID, api.ExecRequest{Cmd: []string{"sh", "-c", `cat; id -u; echo oops >&2; exit 7`}, Stdin: "in\n"}, sandbox.ExecOptions{}, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	exit, err := x.Wait()
	x.Close()
	if err != nil || exit.ExitCode != 7 || out.String() != "in\n1000\n" || errb.String() != "oops\n" {
		t.Errorf("exec: err %v exit %+v stdout %q stderr %q", err, exit, out.String(), errb.String())
	}
	data := bytes.Repeat([]byte("clawbox\x00\xff"), 1000)
	if _, err := e.svc.WriteFile(ctx, rec.ID, "/tmp/f.bin", 0o600, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	rc, entry, err := e.svc.ReadFile(ctx, rec.ID, "/tmp/f.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) || entry.Size != int64(len(data)) {
		t.Errorf("read back %d bytes (entry %+v), err %v; wrote %d", len(got), entry, err, len(data))
	}
	list, err := e.svc.ListFiles(ctx, rec.ID, "/tmp")
	if err != nil || !slices.ContainsFunc(list.Entries, func(f api.FileEntry) bool { return f.Name == "f.bin" }) {
		t.Errorf("list /tmp: %v %+v", err, list)
	}
	// The root is read-only for exec'd processes too.
	if _, err := e.svc.WriteFile(ctx, rec.ID, "/etc/f", 0o600, strings.NewReader("x")); err == nil {
		t.Error("wrote into the read-only root")
	}
}

// An unmodified program's HTTP request goes through the supervisor's bridge on
// 127.0.0.1:3128 (http_proxy, set by the server) to the sandbox's door, with the
// sandbox's token added on the way.
func testBridge(t *testing.T, h Harness) {
	e := newEnv(t, h, newWorld(t, h))
	ctx := testCtx(t, h)
	rec := spawn(t, ctx, e, "sleep", "300")
	t.Cleanup(func() { e.m.Kill(context.Background(), rec.ID) })
	token, err := os.ReadFile(filepath.Join(e.proxiesDir, rec.ID, "token"))
	if err != nil {
		t.Fatal(err)
	}
	var out, errb testkit.Buffer
	x, err := e.svc.Exec(ctx, rec.ID, api.ExecRequest{Cmd: []string{"wget", "-q", "-O-", "http://example.test/some/path?q=1"}}, sandbox.ExecOptions{}, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	exit, err := x.Wait()
	x.Close()
	if want := "door " + rec.ID + ": GET http://example.test/some/path?q=1"; err != nil || exit.ExitCode != 0 || out.String() != want {
		t.Fatalf("wget: %v exit %d stdout %q stderr %q, want %q", err, exit.ExitCode, out.String(), errb.String(), want)
	}
	want := "GET http://example.test/some/path?q=1 Bearer " + strings.TrimSpace(string(token))
	if seen := e.doors.Proxied(rec.ID); !slices.Contains(seen, want) {
		t.Errorf("door saw %q, want %q", seen, want)
	}
}

// A sandbox has no network but its own loopback: a listener on the host's
// loopback is out of its reach.
func testNoNetwork(t *testing.T, h Harness) {
	e := newEnv(t, h, newWorld(t, h))
	ctx := testCtx(t, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	rec := spawn(t, ctx, e, "/agent", "-dial", "tcp:"+ln.Addr().String())
	fin, err := e.m.Wait(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(output(fin), "dial=failed") {
		t.Errorf("a sandbox reached the host's loopback: %q", output(fin))
	}
}

func testKill(t *testing.T, h Harness) {
	e := newEnv(t, h, newWorld(t, h))
	ctx := testCtx(t, h)
	rec := spawn(t, ctx, e, "sh", "-c", "echo started; exec sleep 300")
	// The workload's output so far is kept with the kill.
	for {
		logs, err := e.svc.Logs(ctx, rec.ID)
		if err == nil && strings.Contains(logs.Stdout+logs.Stderr, "started") {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no output before kill: %v %+v", err, logs)
		case <-time.After(100 * time.Millisecond):
		}
	}
	fin, err := e.m.Kill(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fin.Status != sandbox.StatusKilled || fin.ExitCode == nil || !strings.Contains(output(fin), "started") {
		t.Errorf("status %s exit %v logs %q", fin.Status, fin.ExitCode, output(fin))
	}
	waitGone(t, ctx, e.backend, e.instance)
}

// A container removed behind clawbox's back makes its sandbox lost, and the
// socket dir goes with it.
func testLost(t *testing.T, h Harness) {
	e := newEnv(t, h, newWorld(t, h))
	ctx := testCtx(t, h)
	rec := spawn(t, ctx, e, "sleep", "300")
	h.Destroy(t, rec.ContainerID)
	for {
		got, err := e.m.Get(ctx, rec.ID)
		if err == nil && got.Status == sandbox.StatusLost {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not lost: %v %+v", err, got)
		case <-time.After(100 * time.Millisecond):
		}
	}
	for {
		if _, err := os.Stat(filepath.Join(e.proxiesDir, rec.ID)); errors.Is(err, os.ErrNotExist) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the lost sandbox's socket dir is still there")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A restarted server adopts a running sandbox (its door still works), marks a
// vanished one lost and removes its instance's orphans, never another
// instance's containers.
func testAdoption(t *testing.T, h Harness) {
	w := newWorld(t, h)
	e1 := newEnv(t, h, w)
	ctx := testCtx(t, h)
	adopted := spawn(t, ctx, e1, "sleep", "300")
	vanished := spawn(t, ctx, e1, "sleep", "300")
	e1.close(t)
	token, err := os.ReadFile(filepath.Join(w.proxiesDir, adopted.ID, "token"))
	if err != nil {
		t.Fatal(err)
	}
	b := h.New(t)
	defer b.Close()
	h.Destroy(t, vanished.ContainerID)
	spec := sandbox.Spec{Task: "orphan", Image: h.Image, Policy: sandbox.PolicyContainer, Command: []string{"sleep", "300"},
		User: "1000:1000", MemoryBytes: 32 << 20, CPUShares: 2, PidsLimit: 16, TmpfsMB: 1, Nofile: 64}
	orphanSpec := spec
	orphanSpec.ID, orphanSpec.Instance = "clawbox-orphan-"+randHex(4), w.instance
	orphan, err := b.Start(ctx, orphanSpec)
	if err != nil {
		t.Fatal(err)
	}
	other := newWorld(t, h)
	otherSpec := spec
	otherSpec.ID, otherSpec.Instance = "clawbox-other-"+randHex(4), other.instance
	foreign, err := b.Start(ctx, otherSpec)
	if err != nil {
		t.Fatal(err)
	}

	e2 := newEnv(t, h, w)
	got, err := e2.m.Get(ctx, adopted.ID)
	if err != nil || got.Status != sandbox.StatusRunning {
		t.Fatalf("adopted: %v %+v", err, got)
	}
	status, body, err := sandboxtest.Get(ctx, filepath.Join(w.proxiesDir, adopted.ID, "proxy.sock"), string(token))
	if err != nil || status != 200 || body != adopted.ID {
		t.Errorf("door after adoption: %v %d %q", err, status, body)
	}
	if lost, err := e2.m.Get(ctx, vanished.ID); err != nil || lost.Status != sandbox.StatusLost {
		t.Errorf("vanished: %v %+v", err, lost)
	}
	if _, err := b.Inspect(ctx, orphan); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("orphan still there: %v", err)
	}
	if c, err := b.Inspect(ctx, foreign); err != nil || !c.Running {
		t.Errorf("another instance's container was touched: %v %+v", err, c)
	}
	if c, err := b.Inspect(ctx, adopted.ContainerID); err != nil || c.Labels[sandbox.LabelContainerID] != adopted.ID || c.Labels[sandbox.LabelInstance] != w.instance || c.Labels[sandbox.LabelTask] != "backend suite" {
		t.Errorf("adopted container's labels: %v %+v", err, c.Labels)
	}
	// The adopted sandbox still execs.
	var out testkit.Buffer
	if x, err := e2.svc.Exec(ctx, adopted.ID, api.ExecRequest{Cmd: []string{"echo", "adopted"}}, sandbox.ExecOptions{}, &out, io.Discard); err != nil {
		t.Errorf("exec after adoption: %v", err)
	} else {
		x.Wait()
		x.Close()
		if out.String() != "adopted\n" {
			t.Errorf("exec after adoption: %q", out.String())
		}
	}
	fin, err := e2.m.Kill(ctx, adopted.ID)
	if err != nil || fin.Status != sandbox.StatusKilled {
		t.Fatalf("kill adopted: %v %+v", err, fin)
	}
	if err := b.Remove(ctx, foreign); err != nil {
		t.Error(err)
	}
	waitGone(t, ctx, b, w.instance)
}
