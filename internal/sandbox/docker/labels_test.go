package docker

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/sandbox/sandboxtest"
)

// The secret the test redactor knows.
const testSecret = "s3cr3t-Zq9xW"

// replaceRedactor replaces testSecret, the way internal/secrets replaces known values.
type replaceRedactor struct{}

func (replaceRedactor) Redact(b []byte) ([]byte, int) {
	n := bytes.Count(b, []byte(testSecret))
	return bytes.ReplaceAll(b, []byte(testSecret), []byte("[REDACTED]")), n
}

// pollUntil calls cond until it returns true or ctx ends (then the test fails).
func pollUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestLabelsOnSpawnAndListFilter(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{})
	ctx := testCtx(t)
	a := api.ContainerSpawnRequest{Command: []string{"sleep", "300"}, Labels: map[string]string{"team": "a", "run": "1"}}
	b := api.ContainerSpawnRequest{Command: []string{"sleep", "300"}, Labels: map[string]string{"team": "b", "run": "1"}}
	ra, err := e.m.Spawn(ctx, a) // no task: optional
	if err != nil {
		t.Fatal(err)
	}
	rb, err := e.m.Spawn(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if info := ra.Info(); info.Labels["team"] != "a" || info.TaskSummary != "" {
		t.Errorf("info %+v", info)
	}
	r, err := e.backend.cli.ContainerInspect(ctx, ra.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := r.Container.Config.Labels
	if l["team"] != "a" || l["run"] != "1" || l[sandbox.LabelContainerID] != ra.ID || l[sandbox.LabelInstance] != e.instance {
		t.Errorf("container labels %v", l)
	}
	ids := func(f api.ContainerFilter) []string {
		t.Helper()
		recs, err := e.m.Find(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, r.ID)
		}
		slices.Sort(out)
		return out
	}
	both := []string{ra.ID, rb.ID}
	slices.Sort(both)
	if got := ids(api.ContainerFilter{Labels: map[string]string{"run": "1"}}); !slices.Equal(got, both) {
		t.Errorf("run=1: %v", got)
	}
	if got := ids(api.ContainerFilter{Labels: map[string]string{"run": "1", "team": "b"}}); !slices.Equal(got, []string{rb.ID}) {
		t.Errorf("run=1 AND team=b: %v", got)
	}
	if got := ids(api.ContainerFilter{Status: "completed", Labels: map[string]string{"run": "1"}}); len(got) != 0 {
		t.Errorf("completed AND run=1: %v", got)
	}
	// A user label in clawbox's namespace is refused before anything starts.
	_, err = e.m.Spawn(ctx, api.ContainerSpawnRequest{Labels: map[string]string{"clawbox.instance": "someone-else"}})
	wantCode(t, err, api.CodeInvalidRequest)
	// The labels survive a restart of the manager (they are in the store).
	got, err := e.db.GetSandbox(ctx, ra.ID)
	if err != nil || got.Labels["team"] != "a" {
		t.Errorf("stored labels %v %v", got, err)
	}
	for _, id := range both {
		if _, err := e.m.Kill(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLogsOfARunningSandbox reads what a sandbox has written while it still runs,
// redacted; and after it ends, the stored record holds no secret (redacted before
// state.db, not only on the way out).
func TestLogsOfARunningSandbox(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{redactor: replaceRedactor{}})
	ctx := testCtx(t)
	rec, err := e.m.Spawn(ctx, spawnReq("sh", "-c", "echo hello; echo token="+testSecret+"; echo oops >&2; exec sleep 300"))
	if err != nil {
		t.Fatal(err)
	}
	var live *sandbox.Record
	pollUntil(t, ctx, "logs of the running sandbox", func() bool {
		live, err = e.m.Logs(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(live.Logs.Stdout), "token=") && strings.Contains(string(live.Logs.Stderr), "oops")
	})
	if live.Status != sandbox.StatusRunning {
		t.Errorf("status %s while reading live logs", live.Status)
	}
	if want := "hello\ntoken=[REDACTED]\n"; string(live.Logs.Stdout) != want || live.Logs.Truncated {
		t.Errorf("live stdout %q truncated %v, want %q", live.Logs.Stdout, live.Logs.Truncated, want)
	}
	final, err := e.m.Kill(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := e.db.GetSandbox(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*sandbox.Record{final, stored} {
		if bytes.Contains(r.Logs.Stdout, []byte(testSecret)) || string(r.Logs.Stdout) != "hello\ntoken=[REDACTED]\n" {
			t.Errorf("stored stdout %q", r.Logs.Stdout)
		}
	}
	raw, err := os.ReadFile(e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(testSecret)) {
		t.Error("state.db holds the secret")
	}
}

func TestLiveLogsAreCapped(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{})
	ctx := testCtx(t)
	req := spawnReq("sh", "-c", "yes | head -c 5000; echo done >&2; exec sleep 300")
	req.Capabilities = &api.ContainerCapabilities{Resources: &api.ContainerResources{MaxOutputBytes: ptr[int64](1000)}}
	rec, err := e.m.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	pollUntil(t, ctx, "capped live logs", func() bool {
		live, err := e.m.Logs(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(live.Logs.Stdout) > 1000 || len(live.Logs.Stdout) < 1000 && live.Logs.Truncated {
			t.Fatalf("live stdout %d bytes, truncated %v: over the cap, or cut short", len(live.Logs.Stdout), live.Logs.Truncated)
		}
		// The engine reads stdout and stderr from two pipes: stderr's "done" can be
		// there before the last of stdout, so wait for both.
		return string(live.Logs.Stderr) == "done\n" && len(live.Logs.Stdout) == 1000 && live.Logs.Truncated
	})
	if _, err := e.m.Kill(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
}

// TestExtendDeadline moves a running sandbox's deadline both ways, on a fake clock:
// extended, it outlives its first deadline; shortened, it times out at the new one.
func TestExtendDeadline(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{fakeClock: true})
	ctx := testCtx(t)
	start := e.clock.Now()
	req := spawnReq("sleep", "300")
	req.Capabilities = &api.ContainerCapabilities{Resources: &api.ContainerResources{TimeoutMS: ptr[int64](60_000)}}
	rec, err := e.m.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// The reaper's timer and the monitor's deadline.
	if err := e.clock.WaitTimers(ctx, 2); err != nil {
		t.Fatal(err)
	}
	// Bounds first: above the maximum, zero, unknown.
	_, err = e.m.Extend(ctx, rec.ID, 3_600_001)
	wantCode(t, err, api.CodeInvalidRequest)
	_, err = e.m.Extend(ctx, rec.ID, 0)
	wantCode(t, err, api.CodeInvalidRequest)
	_, err = e.m.Extend(ctx, "clawbox-unknown", 1000)
	wantCode(t, err, api.CodeNotFound)

	ext, err := e.m.Extend(ctx, rec.ID, 10*60_000)
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(10 * time.Minute); !ext.Deadline.Equal(want) {
		t.Errorf("extended deadline %v, want %v", ext.Deadline, want)
	}
	if st, err := e.db.GetSandbox(ctx, rec.ID); err != nil || !st.Deadline.Equal(ext.Deadline) {
		t.Errorf("stored deadline %v %v", st, err)
	}
	// Past the first deadline: still running, and it can still be changed.
	e.clock.Advance(90 * time.Second)
	shortened, err := e.m.Extend(ctx, rec.ID, 30_000)
	if err != nil {
		t.Fatalf("extended sandbox after its first deadline: %v", err)
	}
	if got, _ := e.m.Get(ctx, rec.ID); got.Status != sandbox.StatusRunning {
		t.Fatalf("status after the first deadline: %s", got.Status)
	}
	e.clock.Advance(30 * time.Second)
	final, err := e.m.Wait(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Timed out at the shortened deadline, not at the first one: the clock only
	// reached the finishing time after both advances.
	if final.Status != sandbox.StatusTimedOut || !final.FinishedAt.Equal(start.Add(2*time.Minute)) || !final.Deadline.Equal(shortened.Deadline) {
		t.Fatalf("final %s finished %v deadline %v", final.Status, final.FinishedAt, final.Deadline)
	}
	if got := e.audit.events(rec.ID); !slices.Equal(got, []string{"spawned", "deadline_set", "deadline_set", "timed_out"}) {
		t.Errorf("audit events %v", got)
	}
	_, err = e.m.Extend(ctx, rec.ID, 1000)
	wantCode(t, err, api.CodeConflict)
	assertGone(t, e, final)
}

// blockingLogs holds a teardown while it collects the logs, until released.
type blockingLogs struct {
	*Backend
	once     sync.Once
	entered  chan struct{}
	released chan struct{}
}

func (b *blockingLogs) Logs(ctx context.Context, id string, follow bool, stdout, stderr io.Writer) error {
	if !follow {
		b.once.Do(func() { close(b.entered) })
		select {
		case <-b.released:
		case <-ctx.Done():
		}
	}
	return b.Backend.Logs(ctx, id, follow, stdout, stderr)
}

// TestDoorRefusesTokenDuringTeardown sends a door request while a killed sandbox is
// being torn down (its door still open, its logs still being collected): the
// token is already revoked, so it is refused.
func TestDoorRefusesTokenDuringTeardown(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	bl := &blockingLogs{entered: make(chan struct{}), released: make(chan struct{})}
	e := newEnv(t, newWorld(t), envOptions{wrap: func(b *Backend) sandbox.Backend { bl.Backend = b; return bl }})
	ctx := testCtx(t)
	rec, err := e.m.Spawn(ctx, spawnReq("sleep", "300"))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(e.proxiesDir, rec.ID, "proxy.sock")
	token, err := os.ReadFile(filepath.Join(e.proxiesDir, rec.ID, "token"))
	if err != nil {
		t.Fatal(err)
	}
	if status, body, err := sandboxtest.Get(ctx, sock, string(token)); err != nil || status != 200 || body != rec.ID {
		t.Fatalf("door before kill: %d %q %v", status, body, err)
	}
	killed := make(chan error, 1)
	go func() {
		_, err := e.m.Kill(ctx, rec.ID)
		killed <- err
	}()
	select {
	case <-bl.entered:
	case <-ctx.Done():
		t.Fatal("teardown never collected logs")
	}
	status, _, err := sandboxtest.Get(ctx, sock, string(token))
	close(bl.released)
	if err != nil {
		t.Fatalf("door during teardown: %v (the door should still be open)", err)
	}
	if status != 401 {
		t.Errorf("door request during teardown answered %d, want 401: the token was not revoked", status)
	}
	if err := <-killed; err != nil {
		t.Fatal(err)
	}
}

// TestTmpWritableWhenImageTmpIsRootOnly runs an image whose /tmp is 0755 root: the
// tmpfs over it is mode 1777, so the sandbox user can write there.
func TestTmpWritableWhenImageTmpIsRootOnly(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	ctx := testCtx(t)
	ref := "clawbox-test/tmp0755:" + randHex(6)
	if err := dockertest.ImportImageTmpMode(ctx, ref, nil, dockertest.Label+"=1", 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dockertest.RemoveImage(ref); err != nil {
			t.Errorf("remove image: %v", err)
		}
	})
	e := newEnv(t, newWorld(t), envOptions{})
	req := spawnReq("sh", "-c", "echo hi > /tmp/f && cat /tmp/f && ls -ld /tmp")
	req.Image = ref
	rec, err := e.m.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	final, err := e.m.Wait(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != sandbox.StatusCompleted || !strings.HasPrefix(string(final.Logs.Stdout), "hi\nd") {
		t.Errorf("status %s stdout %q stderr %q", final.Status, final.Logs.Stdout, final.Logs.Stderr)
	}
}
