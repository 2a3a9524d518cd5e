package docker

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/sandbox/workspace"
)

// TestWorkspace spawns a sandbox with a workspace: it is at /workspace, writable
// by the sandbox user through exec and files, bounded by its quota (507 once
// full), kept after the sandbox ends and removed on request.
func TestWorkspace(t *testing.T) {
	requireDocker(t)
	if err := workspace.DefaultCheck(); err != nil {
		t.Skipf("workspaces need root, loop devices and mkfs.ext4 (run as root): %v", err)
	}
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{workspaceMB: 8})
	ctx := testCtx(t)
	req := spawnReq("sleep", "300")
	req.Capabilities = &api.ContainerCapabilities{Workspace: true}
	info, err := e.svc.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	id := info.ContainerID
	t.Cleanup(func() { e.m.Kill(ctx, id); e.svc.RemoveWorkspace(ctx, id) })
	if info.Workspace == nil || info.Workspace.Path != "/workspace" || info.Workspace.QuotaBytes <= 0 || info.Workspace.QuotaBytes > 8<<20 {
		t.Fatalf("workspace info %+v", info.Workspace)
	}
	r := mustRun(t, ctx, e.svc, id, "sh", "-c", "echo hi > /workspace/a && cat /workspace/a && ls -ln /workspace/a")
	if f := strings.Fields(r.stdout); r.exit.ExitCode != 0 || len(f) < 5 || f[0] != "hi" || f[3] != "1000" {
		t.Fatalf("exec in the workspace: %+v", r)
	}
	data := bytes.Repeat([]byte{0, 1, 2, 0xff}, 64<<10)
	if _, err := e.svc.WriteFile(ctx, id, "/workspace/d/b.bin", 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	rc, _, err := e.svc.ReadFile(ctx, id, "/workspace/d/b.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("workspace file read back differs")
	}
	// Past the quota: the workload's own write fails, and so does a file put.
	r = mustRun(t, ctx, e.svc, id, "dd", "if=/dev/zero", "of=/workspace/fill", "bs=1M", "count=20")
	if r.exit.ExitCode == 0 {
		t.Errorf("writing 20 MiB into an 8 MiB workspace succeeded: %+v", r)
	}
	_, err = e.svc.WriteFile(ctx, id, "/workspace/more", 0, bytes.NewReader(make([]byte, 1<<20)))
	wantErrCode(t, err, api.CodeQuotaExceeded, "")

	wantErrCode(t, e.svc.RemoveWorkspace(ctx, id), api.CodeConflict, "")
	if _, err := e.m.Kill(ctx, id); err != nil {
		t.Fatal(err)
	}
	kept, err := e.svc.Get(ctx, id)
	if err != nil || kept.Workspace == nil {
		t.Fatalf("after the end: %v %+v", err, kept.Workspace)
	}
	// The listing shows the kept workspace too, as Get does.
	list, err := e.svc.List(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range list {
		if info.ContainerID == id && info.Workspace == nil {
			t.Errorf("List shows %s without its workspace", id)
		}
	}
	if err := e.svc.RemoveWorkspace(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantErrCode(t, e.svc.RemoveWorkspace(ctx, id), api.CodeNotFound, "")
	if after, err := e.svc.Get(ctx, id); err != nil || after.Workspace != nil {
		t.Errorf("after removal: %v %+v", err, after.Workspace)
	}
	// No workspace asked for: none.
	other, err := e.svc.Spawn(ctx, spawnReq("sleep", "300"))
	if err != nil {
		t.Fatal(err)
	}
	defer e.m.Kill(ctx, other.ContainerID)
	if other.Workspace != nil {
		t.Errorf("a sandbox without a workspace reports %+v", other.Workspace)
	}
}

// TestWorkspaceAcrossRestart: a restarted server adopts the still-mounted
// workspace of a running sandbox; its end then releases it, kept.
func TestWorkspaceAcrossRestart(t *testing.T) {
	requireDocker(t)
	if err := workspace.DefaultCheck(); err != nil {
		t.Skipf("workspaces need root, loop devices and mkfs.ext4 (run as root): %v", err)
	}
	t.Parallel()
	w := newWorld(t)
	e1 := newEnv(t, w, envOptions{workspaceMB: 8})
	ctx := testCtx(t)
	req := spawnReq("sleep", "300")
	req.Capabilities = &api.ContainerCapabilities{Workspace: true}
	info, err := e1.svc.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	id := info.ContainerID
	mustRun(t, ctx, e1.svc, id, "sh", "-c", "echo kept > /workspace/a")
	e1.close(t)
	e2 := newEnv(t, w, envOptions{workspaceMB: 8})
	t.Cleanup(func() { e2.m.Kill(ctx, id); e2.svc.RemoveWorkspace(ctx, id) })
	if r := mustRun(t, ctx, e2.svc, id, "cat", "/workspace/a"); r.stdout != "kept\n" {
		t.Fatalf("after restart: %+v", r)
	}
	if _, err := e2.m.Kill(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e2.svc.RemoveWorkspace(ctx, id); err != nil {
		t.Fatalf("remove the kept workspace: %v", err)
	}
}
