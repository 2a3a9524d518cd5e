package docker

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/supervisor"
	"github.com/clawbox/clawbox/internal/supervisor/supervisorbin"
)

// TestWaitMainCreateOptions: a pooled container has no main command, whatever
// the spawn and the image say; its supervisor waits for the server's.
func TestWaitMainCreateOptions(t *testing.T) {
	img := imageDefaults{Entrypoint: []string{"/ep"}, Cmd: []string{"serve"}}
	spec := sandbox.Spec{ID: "clawbox-x", Command: []string{"run"}, Supervisor: "/s", Entrypoint: sandbox.WaitMainSupervisorArgs(7, true), WaitMain: true}
	o := createOptions(spec, img)
	if o.Config.Cmd != nil {
		t.Errorf("cmd %q, want none", o.Config.Cmd)
	}
	ep := o.Config.Entrypoint
	if !slices.Contains(ep, "-wait-main") || slices.Contains(ep, "--") || !slices.Contains(ep, sandbox.ContainerSupervisorTokenPath) {
		t.Errorf("entrypoint %q", ep)
	}
}

// writeTokenFile replaces a 0444 token file the way a claim must: a new file
// renamed over the old, seen through the read-only bind mount of the dir.
func writeTokenFile(t *testing.T, path, token string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(token), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func execOut(t *testing.T, ctx context.Context, c *supervisor.Client, cmd ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	res, err := c.Exec(ctx, supervisor.ExecRequest{Cmd: cmd}, &out, &errb)
	if err != nil {
		t.Fatalf("exec %q: %v", cmd, err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("exec %q: exit %d, stderr %q", cmd, res.ExitCode, errb.String())
	}
	return out.String()
}

// TestWaitMainContainer runs a hardened container in the pooled mode on the
// real daemon: it is ready (exec answers) before any main command, ran
// nothing of the spawn's or the image's, takes the main command and env of
// the claim, and after its token is replaced reconnects with the new one.
func TestWaitMainContainer(t *testing.T) {
	requireDocker(t)
	w := newWorld(t)
	ctx := testCtx(t)
	b, err := New(Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	bin, err := supervisorbin.Install(filepath.Join(filepath.Dir(w.proxiesDir), "supervisor"), runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	id := "clawbox-pool-" + randHex(8)
	dir := filepath.Join(w.proxiesDir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{w.proxiesDir, dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tokenFile := filepath.Join(dir, "supervisor-token")
	writeTokenFile(t, tokenFile, "pool-token")
	l, err := supervisor.Listen(filepath.Join(dir, "supervisor.sock"), "pool-token")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	spec := sandbox.Spec{
		ID: id, Image: testImage, Policy: sandbox.PolicyContainer, Instance: w.instance,
		Command:   []string{"sh", "-c", "echo spawn > /tmp/ran"}, // never run: WaitMain
		Env:       []string{"POOLVAR=pool"},
		SocketDir: dir, Supervisor: bin, Entrypoint: sandbox.WaitMainSupervisorArgs(1<<20, false), WaitMain: true,
		User: "1000:1000", MemoryBytes: 256 << 20, PidsLimit: 256, TmpfsMB: 16, Nofile: 1024,
	}
	cid, err := b.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Remove(context.Background(), cid); err != nil {
			t.Errorf("remove: %v", err)
		}
	})

	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := execOut(t, ctx, c, "sh", "-c", `test -e /tmp/ran && echo ran || echo idle; echo "$POOLVAR"`); got != "idle\npool\n" {
		t.Fatalf("pooled container before the claim: %q", got)
	}

	// The claim: a new token, then the main command with the claim's env.
	writeTokenFile(t, tokenFile, "claim-token")
	l.SetToken("claim-token")
	if err := c.StartMain(ctx, supervisor.MainRequest{
		Cmd: []string{"sh", "-c", `echo "$CLAIM" > /tmp/main; exec sleep 600`},
		Env: map[string]string{"CLAIM": "alice"},
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for got := ""; got != "alice\n"; got = execOut(t, ctx, c, "sh", "-c", "cat /tmp/main 2>/dev/null; true") {
		if time.Now().After(deadline) {
			t.Fatalf("main command never wrote its env: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Dropped: the supervisor redials with the token the file now holds.
	c.Close()
	c2, err := l.Accept(ctx)
	if err != nil {
		t.Fatalf("no reconnect with the claim's token: %v", err)
	}
	if got := execOut(t, ctx, c2, "sh", "-c", `echo "$CLAIM"`); got != "alice\n" {
		t.Fatalf("exec after the claim: %q", got)
	}
}
