package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/clawbox/clawbox/internal/poll"
)

// TestExecAndCpEndToEnd: clawbox exec (exit codes, -it on a real terminal) and
// clawbox cp both ways, against a real server, sandbox and supervisor.
func TestExecAndCpEndToEnd(t *testing.T) {
	env, port, image := dockerServe(t)
	ctx := context.Background()
	cli := func(args ...string) result {
		return clawbox(t, ctx, env, append([]string{args[0], "--port", port}, args[1:]...)...)
	}
	r := cli("spawn", "--image", image, "--json", "--task", "exec e2e", "--", "sleep", "300")
	var info struct {
		ContainerID string `json:"container_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info.ContainerID == "" {
		t.Fatalf("spawn: %+v %v", r, err)
	}
	id := info.ContainerID
	t.Cleanup(func() { clawbox(t, context.Background(), env, "kill", "--port", port, id) })
	if r := cli("exec", id, "--", "true"); strings.Contains(r.stderr, "exec is not available yet") {
		t.Skip("the sandbox service is the exec placeholder: merge the supervisor side of issue 15 (and delete internal/sandbox/service_exec_stub.go) to run this test")
	}

	if r := cli("exec", id, "--", "sh", "-c", "echo hi; echo oops >&2; exit 9"); r.code != 9 || r.stdout != "hi\n" || r.stderr != "oops\n" {
		t.Fatalf("exec: %+v", r)
	}

	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "proj", "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "proj", "a.txt"), []byte("alpha\n"), 0o644)
	os.WriteFile(filepath.Join(src, "proj", "sub", "run.sh"), []byte("#!/bin/sh\necho run\n\x00\xff"), 0o755)
	if r := cli("cp", filepath.Join(src, "proj"), id+":/tmp/"); r.code != 0 {
		t.Fatalf("cp in: %+v", r)
	}
	if r := cli("exec", id, "--", "sh", "-c", "cat /tmp/proj/a.txt; wc -c < /tmp/proj/sub/run.sh; stat -c %a /tmp/proj/sub/run.sh"); r.code != 0 || r.stdout != "alpha\n21\n755\n" {
		t.Fatalf("after cp in: %+v", r)
	}
	dst := t.TempDir()
	if r := cli("cp", id+":/tmp/proj", dst); r.code != 0 {
		t.Fatalf("cp out: %+v", r)
	}
	got, err := os.ReadFile(filepath.Join(dst, "proj", "sub", "run.sh"))
	if err != nil || string(got) != "#!/bin/sh\necho run\n\x00\xff" {
		t.Fatalf("cp out: %q %v", got, err)
	}

	// exec -it on a real terminal.
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	pty.Setsize(tty, &pty.Winsize{Rows: 30, Cols: 90})
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	var out ptyOutput
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			out.mu.Lock()
			out.buf.Write(buf[:n])
			out.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	codec := make(chan int, 1)
	go func() {
		a := &app{stdin: tty, stdout: tty, stderr: tty, env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
		codec <- run(ctx, a, []string{"exec", "-it", "--port", port, id, "--", "sh"})
	}()
	ptmx.Write([]byte("stty size; echo $((6*7))x\n"))
	poll.Until(t, 30*time.Second, "the shell to answer", func() (bool, error) {
		return strings.Contains(out.String(), "30 90") && strings.Contains(out.String(), "42x"), nil
	})
	ptmx.Write([]byte("sleep 100; echo after$((2+3))sleep\n"))
	poll.Until(t, 30*time.Second, "Ctrl-C to stop sleep", func() (bool, error) {
		ptmx.Write([]byte{0x03})
		ptmx.Write([]byte("echo alive$((1+1))\n"))
		return strings.Contains(out.String(), "alive2"), nil
	})
	ptmx.Write([]byte("exit 5\n"))
	select {
	case code := <-codec:
		if code != 5 {
			t.Errorf("exec -it exit code %d, want 5 (output %q)", code, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("exec -it did not end")
	}
	if strings.Contains(out.String(), "after5sleep") {
		t.Error("Ctrl-C did not reach the sleep")
	}
	after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil || *after != *before {
		t.Errorf("terminal not restored: %v", err)
	}
}
