package workspace

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/internal/dockertest"
)

// The workload's view for real: a hardened container (read-only root, no
// capabilities, no-new-privileges, uid 1000) with the workspace bind-mounted at
// /workspace, as spawn mounts it, under runc and gVisor. It fills the quota, plants
// symlinks to host paths and writes through them, and tries to run a binary it put
// there. The host paths stay untouched, and so do they after every host-side
// operation on the workspace with the links in it.
func TestWorkloadInContainer(t *testing.T) {
	requireLoop(t)
	if err := dockertest.Ping(); err != nil {
		t.Skipf("this test needs a Docker daemon (DOCKER_HOST or /var/run/docker.sock): %v", err)
	}
	ref := dockertest.RandomTag()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := dockertest.ImportImage(ctx, ref, nil, dockertest.Label+"=1"); err != nil {
		t.Fatalf("test image: %v", err)
	}
	t.Cleanup(func() {
		if err := dockertest.RemoveImage(ref); err != nil {
			t.Errorf("remove test image: %v", err)
		}
	})
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	dockertest.ForEachRuntime(t, func(t *testing.T, rt dockertest.Runtime) {
		m, h, id := newManager(t), newHostTarget(t), newID()
		dir := create(t, m, id)
		script := strings.NewReplacer("HOSTFILE", h.file, "HOSTDIR", h.dir).Replace(`
dd if=/dev/zero of=/workspace/big bs=65536 count=1024 2>&1 | grep -o 'No space left on device' | head -n 1
rm /workspace/big
ln -s HOSTFILE /workspace/link-file
ln -s HOSTDIR /workspace/link-dir
ln -s / /workspace/link-root
echo pwned > /workspace/link-file 2>/dev/null; echo "write-file=$?"
echo pwned > /workspace/link-dir/new 2>/dev/null; echo "write-dir=$?"
echo pwned > /workspace/link-rootHOSTFILE 2>/dev/null; echo "write-root=$?"
cp /bin/busybox /workspace/busybox && chmod 755 /workspace/busybox
/workspace/busybox true 2>/dev/null; echo "exec=$?"
echo "uid=$(id -u)"
`)
		init := true
		created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{
				Image:  ref,
				User:   "1000:1000",
				Cmd:    []string{"/bin/sh", "-c", script},
				Labels: map[string]string{dockertest.Label: "1"},
			},
			HostConfig: &container.HostConfig{
				NetworkMode:    "none",
				ReadonlyRootfs: true,
				CapDrop:        []string{"ALL"},
				SecurityOpt:    []string{"no-new-privileges:true"},
				Init:           &init,
				Runtime:        rt.Config,
				Mounts:         []mount.Mount{{Type: mount.TypeBind, Source: dir, Target: "/workspace"}},
			},
		})
		if err != nil {
			t.Fatalf("create container: %v", err)
		}
		t.Cleanup(func() {
			rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
			defer rcancel()
			if _, err := cli.ContainerRemove(rctx, created.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
				t.Errorf("remove container: %v", err)
			}
		})
		wait := cli.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
		if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatalf("start container: %v", err)
		}
		select {
		case r := <-wait.Result:
			if r.StatusCode != 0 {
				t.Fatalf("workload exited %d", r.StatusCode)
			}
		case err := <-wait.Error:
			t.Fatalf("wait: %v", err)
		}
		rc, err := cli.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		_, err = stdcopy.StdCopy(&stdout, &stderr, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out := stdout.String()
		t.Logf("workload (%s):\n%s%s", rt.Name, out, stderr.String())
		for _, want := range []string{"No space left on device", "uid=1000", "write-file=1", "write-dir=1", "write-root=1"} {
			if !strings.Contains(out, want) {
				t.Errorf("workload output lacks %q", want)
			}
		}
		// A workspace is where an agent builds and runs programs: a binary copied
		// there runs (nosuid and no-new-privileges still hold).
		if !strings.Contains(out, "exec=0") {
			t.Errorf("a binary in /workspace did not run (want exec=0)")
		}
		h.check(t)

		// The container is gone: what spawn does at its end, then the host-side
		// operations, with the workload's links still in the workspace.
		if _, err := cli.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Stat(id); err != nil {
			t.Fatal(err)
		}
		if err := m.Release(id); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Open(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		if err := m.Remove(id); err != nil {
			t.Fatal(err)
		}
		waitNoLoops(t, m, id)
		h.check(t)
	})
}
