package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// TestSpecialFilesAndLargeDirectories covers what a workload can plant for the
// file API: a FIFO is refused at once (its open used to block until a writer
// came, holding the request), listings tell symlinks and special files from
// regular files, and a directory over the entry cap is an error, never a
// listing cut short in silence.
func TestSpecialFilesAndLargeDirectories(t *testing.T) {
	h := start(t, "sleep", "60")
	root := filepath.Join(h.dir, "special")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := h.c.ReadFile(ctx, fifo, &strings.Builder{}, 100); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("read of a FIFO: %v, want an invalid-argument error (and no wait)", err)
	}
	ents, err := h.c.ListFiles(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, e := range ents {
		switch {
		case e.IsSymlink:
			kinds[e.Name] = "symlink"
		case e.IsOther:
			kinds[e.Name] = "other"
		case e.IsDir:
			kinds[e.Name] = "dir"
		default:
			kinds[e.Name] = "file"
		}
	}
	if want := map[string]string{"fifo": "other", "file": "file", "link": "symlink"}; fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("listing kinds %v, want %v", kinds, want)
	}

	big := filepath.Join(h.dir, "big")
	if err := os.MkdirAll(big, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range maxListEntries + 1 {
		f, err := os.Create(filepath.Join(big, fmt.Sprintf("f%05d", i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if _, err := h.c.ListFiles(ctx, big); !errors.Is(err, ErrTooManyEntries) {
		t.Fatalf("listing %d entries: %v, want ErrTooManyEntries", maxListEntries+1, err)
	}
}

// TestLargeExecRequest sends an argument whose JSON encoding is far over the
// 64 KiB control-frame bound (12 KiB of '<' escapes to 72 KiB): the supervisor
// takes requests up to MaxRequestBytes; one over it is refused by the client with
// an invalid-argument error before anything is sent.
func TestLargeExecRequest(t *testing.T) {
	h := start(t, "sleep", "60")
	arg := strings.Repeat("<", 12<<10) + strings.Repeat("a", 70<<10)
	stdout, _, res := run(t, h.c, ExecRequest{Cmd: []string{"sh", "-c", `printf %s "$1" | wc -c`, "sh", arg}})
	if res.ExitCode != 0 || strings.TrimSpace(stdout) != fmt.Sprint(len(arg)) {
		t.Fatalf("exit %d, stdout %q; want %d bytes counted", res.ExitCode, stdout, len(arg))
	}
	huge := strings.Repeat("<", MaxRequestBytes/6+1)
	_, err := h.c.Exec(context.Background(), ExecRequest{Cmd: []string{"true", huge}}, &strings.Builder{}, &strings.Builder{})
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("exec with a %d-byte encoded request: %v, want invalid argument", len(huge)*6, err)
	}
}

// TestSilentSupervisorDoesNotHoldAFileRead: a supervisor that takes a file read
// and never answers ends the call with unavailable after the call timeout, not
// when the caller gives up.
func TestSilentSupervisorDoesNotHoldAFileRead(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen(sock, "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.CallTimeout = 300 * time.Millisecond
	fakeSupervisor(t, sock, "tok", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.OpenFile(ctx, "/workspace/x", 1<<20)
	if !errdefs.IsUnavailable(err) || ctx.Err() != nil {
		t.Fatalf("OpenFile = %v (caller's ctx %v), want unavailable before the caller's deadline", err, ctx.Err())
	}
}
