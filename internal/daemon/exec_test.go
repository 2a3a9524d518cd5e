package daemon

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/poll"
)

// execSandbox runs a daemon and a long-lived sandbox in it, killed at cleanup.
func execSandbox(t *testing.T) (*client.Client, string) {
	t.Helper()
	requireDocker(t)
	cfg := dockerConfig(t)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	info, err := c.Spawn(context.Background(), api.ContainerSpawnRequest{Task: "exec e2e", Command: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(context.Background(), info.ContainerID) })
	skipWithoutSupervisor(t, c, info.ContainerID)
	return c, info.ContainerID
}

// lockedBuffer collects a session's output for the test to poll.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestExecEndToEnd runs commands, streams and files through the API, the Go SDK
// and the real supervisor of a real sandbox.
func TestExecEndToEnd(t *testing.T) {
	c, id := execSandbox(t)
	ctx := context.Background()

	res, err := c.Exec(ctx, id, api.ExecRequest{Cmd: []string{"sh", "-c", "echo out; echo err >&2; cat; exit 3"}, Stdin: "in\n"})
	if err != nil || res.Stdout != "out\nin\n" || res.Stderr != "err\n" || res.ExitCode != 3 || res.EndedBy != api.ExecEndedExit {
		t.Fatalf("Exec = %+v, %v", res, err)
	}
	var out, errb lockedBuffer
	exit, err := c.ExecStream(ctx, id, api.ExecRequest{Cmd: []string{"sh", "-c", "printf '\\377\\000ok'; echo e >&2"}}, &out, &errb)
	if err != nil || exit.ExitCode != 0 || out.String() != "\xff\x00ok" || errb.String() != "e\n" {
		t.Fatalf("ExecStream = %+v %v, stdout %q stderr %q", exit, err, out.String(), errb.String())
	}
	exit, err = c.ExecStream(ctx, id, api.ExecRequest{Cmd: []string{"sleep", "30"}, TimeoutMS: 200}, nil, nil)
	if err != nil || !exit.TimedOut || exit.EndedBy != api.ExecEndedTimeout {
		t.Fatalf("timeout: %+v %v", exit, err)
	}

	data := bytes.Repeat([]byte("\x00clawbox\xff"), 20000)
	fw, err := c.WriteFile(ctx, id, "/tmp/e2e/sub/blob.bin", bytes.NewReader(data), 0o640)
	if err != nil || fw.Size != int64(len(data)) || fw.Mode != 0o640 {
		t.Fatalf("WriteFile = %+v, %v", fw, err)
	}
	var got bytes.Buffer
	if n, err := c.ReadFile(ctx, id, "/tmp/e2e/sub/blob.bin", &got); err != nil || n != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("ReadFile = %d, %v", n, err)
	}
	list, err := c.ListFiles(ctx, id, "/tmp/e2e/sub")
	if err != nil || len(list.Entries) != 1 || list.Entries[0].Name != "blob.bin" || list.Entries[0].Mode&0o777 != 0o640 {
		t.Fatalf("ListFiles = %+v, %v", list, err)
	}
	// The sandbox itself sees the file, as its own user.
	res, err = c.Exec(ctx, id, api.ExecRequest{Cmd: []string{"sh", "-c", "wc -c < /tmp/e2e/sub/blob.bin; id -u"}})
	if err != nil || !strings.HasPrefix(res.Stdout, "180000\n") {
		t.Fatalf("in-sandbox view: %+v %v", res, err)
	}
	if err := c.RemoveFile(ctx, id, "/tmp/e2e", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadFile(ctx, id, "/tmp/e2e/sub/blob.bin", &got); err == nil {
		t.Fatal("file still readable after RemoveFile")
	} else if e, ok := api.AsError(err); !ok || e.Code != api.CodeNotFound {
		t.Fatalf("after remove: %v", err)
	}
	// The read-only root refuses the sandbox user.
	if _, err := c.WriteFile(ctx, id, "/etc/evil", strings.NewReader("x"), 0); err == nil {
		t.Fatal("wrote to the read-only root")
	}

	// After the sandbox ends, exec is 409.
	if _, err := c.Kill(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, id, api.ExecRequest{Cmd: []string{"true"}}); err == nil {
		t.Fatal("exec in a killed sandbox")
	} else if e, ok := api.AsError(err); !ok || e.Code != api.CodeConflict {
		t.Fatalf("exec after kill: %v", err)
	}
}

// TestExecInteractiveEndToEnd drives a shell on a real pty in a real sandbox over
// the WebSocket: typed input, resize, Ctrl-C reaching the foreground command, and
// the shell's exit code.
func TestExecInteractiveEndToEnd(t *testing.T) {
	c, id := execSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out lockedBuffer
	s, err := c.ExecInteractive(ctx, id, api.ExecRequest{Cmd: []string{"sh"}, TTY: true, Rows: 24, Cols: 80}, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	expect := func(what, want string) {
		t.Helper()
		poll.Until(t, 30*time.Second, what, func() (bool, error) { return strings.Contains(out.String(), want), nil })
	}
	s.Write([]byte("echo $((6*7))x\n"))
	expect("arithmetic in the shell", "42x")
	s.Write([]byte("stty size\n"))
	expect("the first size", "24 80")
	if err := s.Resize(50, 132); err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("stty size\n"))
	expect("the new size", "50 132")
	s.Write([]byte("sleep 100; echo after$((2+3))sleep\n"))
	// Ctrl-C interrupts the foreground sleep (and the rest of that line), not the shell.
	poll.Until(t, 30*time.Second, "Ctrl-C to stop sleep", func() (bool, error) {
		s.Write([]byte{0x03})
		s.Write([]byte("echo alive$((1+1))\n"))
		return strings.Contains(out.String(), "alive2"), nil
	})
	if strings.Contains(out.String(), "after5sleep") { // only the command prints it; the echo of the line does not
		t.Error("the sleep ran to its end: Ctrl-C did not reach it")
	}
	s.Write([]byte("exit 7\n"))
	exit, err := s.Wait()
	if err != nil || exit.ExitCode != 7 {
		t.Fatalf("Wait = %+v, %v (output %q)", exit, err, out.String())
	}
}

// skipWithoutSupervisor skips while this branch carries the placeholder service of
// issue 15 (internal/sandbox/service_exec_stub.go, deleted when the supervisor side
// is merged), which answers every exec 503 "exec is not available yet".
func skipWithoutSupervisor(t *testing.T, c *client.Client, id string) {
	t.Helper()
	_, err := c.Exec(context.Background(), id, api.ExecRequest{Cmd: []string{"true"}})
	if e, ok := api.AsError(err); ok && e.Code == api.CodeUnavailable && strings.Contains(e.Message, "exec is not available yet") {
		t.Skip("the sandbox service is the exec placeholder: merge the supervisor side of issue 15 (and delete internal/sandbox/service_exec_stub.go) to run this test")
	}
}
