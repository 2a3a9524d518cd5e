package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// startWaiting runs the supervisor binary in -wait-main mode (a pooled
// sandbox's) with its token in a file, and returns a client connected to it.
// extraEnv is the supervisor's own environment on top of the test's.
func startWaiting(t *testing.T, token string, extraEnv ...string) (*harness, string) {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "supervisor.sock")
	tf := filepath.Join(dir, "supervisor-token")
	if err := os.WriteFile(tf, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Listen(sock, token)
	if err != nil {
		t.Fatal(err)
	}
	l.PingInterval, l.PingTimeout = 500*time.Millisecond, 500*time.Millisecond
	cmd := exec.Command(supervisorBin, "-socket", sock, "-token-file", tf, "-wait-main")
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &harness{l: l, cmd: cmd, exited: make(chan struct{}), dir: dir}
	go func() { h.waitErr = cmd.Wait(); close(h.exited) }()
	t.Cleanup(func() {
		h.l.Close()
		_ = cmd.Process.Kill()
		<-h.exited
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h.c, err = l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return h, tf
}

// waitFile polls for a non-empty file and returns its content.
func waitFile(t *testing.T, p string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(p); err == nil && len(b) > 0 && strings.HasSuffix(string(b), "\n") {
			return string(b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never written", p)
	return ""
}

func TestWaitMainRunsTheServersCommand(t *testing.T) {
	h, _ := startWaiting(t, "pool-tok", "POOLVAR=pool")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Ready before any main command: exec and files are served (the
	// server's readiness check of a pooled sandbox), and nothing ran yet.
	out, _, res := run(t, h.c, ExecRequest{Cmd: []string{"sh", "-c", "echo ready"}})
	if out != "ready\n" || res.ExitCode != 0 {
		t.Fatalf("exec before main: %q %+v", out, res)
	}
	mainOut := filepath.Join(h.dir, "main.out")
	if _, err := os.Stat(mainOut); !os.IsNotExist(err) {
		t.Fatalf("main output before the main request: %v", err)
	}

	work := t.TempDir()
	err := h.c.StartMain(ctx, MainRequest{
		Cmd:     []string{"sh", "-c", `echo "$CLAIM:$POOLVAR:$(pwd)" > "$OUT"; exec sleep 60`},
		Env:     map[string]string{"CLAIM": "alice", "OUT": mainOut, "POOLVAR": "claimed"},
		Workdir: work,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := waitFile(t, mainOut), "alice:claimed:"+work+"\n"; got != want {
		t.Fatalf("main command saw %q, want %q", got, want)
	}

	// Later execs have the claim's environment as their base.
	out, _, _ = run(t, h.c, ExecRequest{Cmd: []string{"sh", "-c", "echo $CLAIM"}})
	if out != "alice\n" {
		t.Fatalf("exec after main: %q", out)
	}

	// A second main request is refused and changes nothing.
	err = h.c.StartMain(ctx, MainRequest{Cmd: []string{"sh", "-c", `echo bob > "$OUT"`}, Env: map[string]string{"OUT": mainOut, "CLAIM": "bob"}})
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("second main request: %v", err)
	}
	out, _, _ = run(t, h.c, ExecRequest{Cmd: []string{"sh", "-c", "echo $CLAIM"}})
	if out != "alice\n" {
		t.Fatalf("exec after a refused second main: %q", out)
	}

	// The main command is the one signals reach and whose exit is reported.
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	ex, err := h.c.WaitMain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Signal != int(syscall.SIGTERM) {
		t.Fatalf("main exit %+v, want SIGTERM", ex)
	}
}

func TestWaitMainBadRequests(t *testing.T) {
	h, _ := startWaiting(t, "pool-tok")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, req := range []MainRequest{
		{},
		{Cmd: []string{""}},
		{Cmd: []string{"true\x00"}},
		{Cmd: []string{"true"}, Env: map[string]string{"A=B": "c"}},
		{Cmd: []string{"true"}, Workdir: "relative"},
	} {
		if err := h.c.StartMain(ctx, req); !errdefs.IsInvalidArgument(err) {
			t.Fatalf("%+v: got %v", req, err)
		}
	}
	// Invalid requests do not use up the one main request.
	mainOut := filepath.Join(h.dir, "main.out")
	if err := h.c.StartMain(ctx, MainRequest{Cmd: []string{"sh", "-c", `echo ok > "$OUT"; exec sleep 60`}, Env: map[string]string{"OUT": mainOut}}); err != nil {
		t.Fatal(err)
	}
	if got := waitFile(t, mainOut); got != "ok\n" {
		t.Fatalf("got %q", got)
	}
}

func TestWaitMainCommandNotFound(t *testing.T) {
	h, _ := startWaiting(t, "pool-tok")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.c.StartMain(ctx, MainRequest{Cmd: []string{"no-such-command-clawbox"}}); !errdefs.IsNotFound(err) {
		t.Fatalf("got %v", err)
	}
	ex, err := h.c.WaitMain(ctx)
	if err != nil || ex.ExitCode != 127 {
		t.Fatalf("got %+v %v", ex, err)
	}
}

func TestWaitMainSignalBeforeMainEndsIdle(t *testing.T) {
	h, _ := startWaiting(t, "pool-tok")
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex, err := h.c.WaitMain(ctx)
	if err != nil || ex.ExitCode != 0 || ex.Signal != 0 {
		t.Fatalf("got %+v %v", ex, err)
	}
	select {
	case <-h.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("supervisor did not end")
	}
}

// A claim replaces the pooled sandbox's token: the server's listener takes
// only the new one from then on, and the supervisor presents what the token
// file holds at each dial, so it reconnects with the new token and never
// again with the old.
func TestWaitMainRereadsTokenFile(t *testing.T) {
	h, tf := startWaiting(t, "pool-tok")
	h.l.SetToken("claim-tok")
	// The connection accepted before stays usable.
	if out, _, _ := run(t, h.c, ExecRequest{Cmd: []string{"echo", "still"}}); out != "still\n" {
		t.Fatalf("got %q", out)
	}

	// Dropped while the file still holds the pool's token: the supervisor
	// redials with it, and the listener refuses it.
	h.c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := h.l.Accept(ctx)
	cancel()
	if err == nil {
		t.Fatal("the listener accepted the replaced token")
	}

	if err := os.WriteFile(tf, []byte("claim-tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := h.l.Accept(ctx)
	if err != nil {
		t.Fatalf("supervisor never presented the new token: %v", err)
	}
	if out, _, _ := run(t, c, ExecRequest{Cmd: []string{"echo", "hi"}}); out != "hi\n" {
		t.Fatalf("got %q", out)
	}
}

func TestStartMainRefusedWithoutWaitMain(t *testing.T) {
	h := start(t, "sleep", "60")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.c.StartMain(ctx, MainRequest{Cmd: []string{"true"}}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("got %v", err)
	}
}

func TestWaitMainFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-wait-main", "-token-file", "/nonexistent", "--", "true"}, // a command too
		{"-wait-main"}, // no token file
	} {
		cmd := exec.Command(supervisorBin, args...)
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("%q: got %v", args, err)
		}
	}
}

// Concurrent main requests: exactly one starts, the others are refused.
func TestWaitMainConcurrentRequests(t *testing.T) {
	h, _ := startWaiting(t, "pool-tok")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		out := filepath.Join(h.dir, fmt.Sprintf("main-%d.out", i))
		go func() {
			errs <- h.c.StartMain(ctx, MainRequest{Cmd: []string{"sh", "-c", `echo x >> "$OUT"; exec sleep 60`}, Env: map[string]string{"OUT": out}})
		}()
	}
	ok := 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case !errdefs.IsInvalidArgument(err):
			t.Errorf("got %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d main requests started, want 1", ok)
	}
	m, err := filepath.Glob(filepath.Join(h.dir, "main-*.out"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(m) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		m, _ = filepath.Glob(filepath.Join(h.dir, "main-*.out"))
	}
	if len(m) != 1 || waitFile(t, m[0]) != "x\n" {
		t.Fatalf("main outputs %q", m)
	}
}
