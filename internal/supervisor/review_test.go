package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// TestListFilesEscapeHeavyNames: names an honest supervisor escapes six bytes for
// one (control bytes) still list whole at 3,000 entries: the listing's byte bound
// is sized for maxListEntries such names.
func TestListFilesEscapeHeavyNames(t *testing.T) {
	h := start(t, "sleep", "60")
	dir := filepath.Join(h.dir, "escapes")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%05d", i)+strings.Repeat("\x01", 240)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ents, err := h.c.ListFiles(ctx, dir)
	if err != nil || len(ents) != n {
		t.Fatalf("listed %d entries, err %v; want %d", len(ents), err, n)
	}
}

// countingReader counts what is read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestDecodeListingStopsAtTheBound: a hostile listing of many small entries is
// refused at the first entry past maxListEntries, without reading (or holding)
// the rest; a bad entry, a wrong shape and bytes cut short are protocol errors.
func TestDecodeListingStopsAtTheBound(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"entries":[`)
	for i := range 20 * maxListEntries {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"name":"a"}`)
	}
	b.WriteString(`]}`)
	cr := &countingReader{r: strings.NewReader(b.String())}
	if _, _, err := decodeListing(cr); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("decodeListing of %d entries: %v", 20*maxListEntries, err)
	}
	if cr.n > b.Len()/4 {
		t.Fatalf("read %d of %d bytes: the decode did not stop at the bound", cr.n, b.Len())
	}
	for _, bad := range []string{`{"entries":[{"name":"../x"}]}`, `{"entries":{}}`, `[]`, `{"entries":[{"name":"a"}`, `{"entries":[{"name":"a","size":-1}]}`} {
		if _, _, err := decodeListing(strings.NewReader(bad)); err == nil {
			t.Errorf("decodeListing(%s) accepted it", bad)
		}
	}
	ents, truncated, err := decodeListing(strings.NewReader(`{"entries":[{"name":"a","size":3}],"truncated":true,"later":{"x":1}}`))
	if err != nil || len(ents) != 1 || ents[0].Size != 3 || !truncated {
		t.Fatalf("good listing: %v %v %v", ents, truncated, err)
	}
	if ents, _, err := decodeListing(strings.NewReader(`{"entries":[]}`)); err != nil || ents == nil || len(ents) != 0 {
		t.Fatalf("empty listing: %#v %v", ents, err)
	}
}

// hostileSupervisor is a fake supervisor serving h, and the client of it, with a
// 300 ms call timeout.
func hostileSupervisor(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen(sock, "tok")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	l.CallTimeout = 300 * time.Millisecond
	l.PingInterval, l.PingTimeout = 200*time.Millisecond, 200*time.Millisecond
	fakeSupervisor(t, sock, "tok", h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWriteFileSilentSupervisor: a supervisor that answers pings but never the
// write ends it as unavailable after the call timeout, not when the caller's
// (much longer) context ends; a caller whose reader is slower than the call
// timeout is not cut off for it.
func TestWriteFileSilentSupervisor(t *testing.T) {
	c := hostileSupervisor(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.WriteFile(ctx, "/workspace/x", 0o644, strings.NewReader("hello"), 1<<20)
	if !errdefs.IsUnavailable(err) || ctx.Err() != nil {
		t.Fatalf("WriteFile to a silent supervisor: %v (caller's context: %v); want unavailable before the caller's deadline", err, ctx.Err())
	}

	ok := hostileSupervisor(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("slow "))
		time.Sleep(time.Second) // three call timeouts
		_, _ = pw.Write([]byte("client"))
		pw.Close()
	}()
	if err := ok.WriteFile(ctx, "/workspace/x", 0o644, pr, 1<<20); err != nil {
		t.Fatalf("WriteFile from a slow caller: %v", err)
	}
}
