package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/poll"
	"github.com/clawbox/clawbox/internal/server"
	"github.com/clawbox/clawbox/internal/server/servertest"
)

const fakeToken = "cli-exec-token-0123456789abcdef"

// fakeAPI serves the real routes over the scripted sandbox service and returns
// the arguments that point the CLI at it.
func fakeAPI(t *testing.T) (*servertest.Sandboxes, map[string]string, []string) {
	t.Helper()
	s, err := server.New(server.Config{Token: fakeToken})
	if err != nil {
		t.Fatal(err)
	}
	fake := servertest.New()
	s.RegisterContainers(fake)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	port := strconv.Itoa(ts.Listener.Addr().(*net.TCPAddr).Port)
	return fake, map[string]string{"HOME": t.TempDir()}, []string{"--host", "127.0.0.1", "--port", port, "--token", fakeToken}
}

func TestExecExitCodePassthrough(t *testing.T) {
	_, env, conn := fakeAPI(t)
	ctx := context.Background()
	run := func(args ...string) result {
		return clawbox(t, ctx, env, append(append([]string{"exec"}, conn...), args...)...)
	}
	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"ok", []string{servertest.Running, "--", "echo", "hi"}, 0, "hi\n", ""},
		{"exit code", []string{servertest.Running, "--", "exit", "7"}, 7, "", ""},
		{"stderr", []string{servertest.Running, "--", "stderr", "bad"}, 0, "", "bad"},
		{"env and workdir", []string{"-e", "A=1", "-w", "/tmp", servertest.Running, "--", "env"}, 0, "A=1", ""},
		{"stdin literal", []string{"--stdin", "lit", servertest.Running, "--", "cat"}, 0, "lit", ""},
		{"timeout", []string{"--timeout", "1ms", servertest.Running, "--", "sleep"}, 137, "ready\n", "exec timeout"},
		{"unknown sandbox", []string{"nope", "--", "echo"}, ExitError, "", "not found"},
		{"not running", []string{servertest.Stopped, "--", "echo"}, ExitError, "", "not running"},
		{"no dash", []string{servertest.Running, "echo"}, ExitUsage, "", "ID -- COMMAND"},
		{"two ids", []string{"a", "b", "--", "echo"}, ExitUsage, "", "one sandbox ID"},
		{"bad env", []string{"-e", "NOEQ", servertest.Running, "--", "echo"}, ExitUsage, "", "KEY=VALUE"},
		{"tty without terminal", []string{"-t", servertest.Running, "--", "cat"}, ExitUsage, "", "terminal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(tc.args...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("got %+v, want code %d stdout %q stderr with %q", r, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestExecInteractivePipes(t *testing.T) {
	_, env, conn := fakeAPI(t)
	var out, errb bytes.Buffer
	code := runWithStdin(context.Background(), append(append([]string{"exec", "-i"}, conn...), servertest.Running, "--", "cat"),
		env, "piped through\nstdin", &out, &errb)
	if code != 0 || out.String() != "piped through\nstdin" {
		t.Fatalf("code %d stdout %q stderr %q", code, out.String(), errb.String())
	}
}

func TestExecJSONGolden(t *testing.T) {
	_, env, conn := fakeAPI(t)
	r := clawbox(t, context.Background(), env, append(append([]string{"exec", "--json"}, conn...), servertest.Running, "--", "exit", "3")...)
	if r.code != 3 {
		t.Fatalf("exec --json keeps the exit code: %+v", r)
	}
	// The duration is the one value that changes from run to run.
	out := regexp.MustCompile(`"duration_ms": \d+`).ReplaceAllString(r.stdout, `"duration_ms": 0`)
	golden(t, "exec.golden.json", normalise(t, out))
}

// ptyOutput collects what the CLI writes to the terminal.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *ptyOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// TestExecTTY drives exec -it through a real pseudo-terminal: raw mode, the first
// size, a window resize (SIGWINCH), Ctrl-C as the byte 0x03 reaching the command,
// its exit code passed through, and the terminal restored afterwards.
func TestExecTTY(t *testing.T) {
	fake, env, conn := fakeAPI(t)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(tty, &pty.Winsize{Rows: 24, Cols: 80}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	var out ptyOutput
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
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
		codec <- run(context.Background(), a, append(append([]string{"exec", "-it"}, conn...), servertest.Running, "--", "cat"))
	}()
	poll.Until(t, 10*time.Second, "the exec to start", func() (bool, error) { return len(fake.Execs()) == 1, nil })
	e := fake.Execs()[0]
	if !e.Req.TTY || e.Req.Rows != 24 || e.Req.Cols != 80 || !e.Opts.KeepStdin {
		t.Fatalf("request %+v", e.Req)
	}
	if _, err := ptmx.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the typed text to come back once (raw: no local echo)", func() (bool, error) {
		return strings.Contains(out.String(), "hello"), nil
	})
	// Raw mode: the terminal does not echo or edit lines itself.
	raw, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Lflag&(unix.ECHO|unix.ICANON|unix.ISIG) != 0 {
		t.Errorf("terminal not raw during exec -t: lflag %#x", raw.Lflag)
	}
	if err := pty.Setsize(tty, &pty.Winsize{Rows: 50, Cols: 132}); err != nil {
		t.Fatal(err)
	}
	// This process is not the terminal's foreground group, so the kernel does
	// not signal it: send the SIGWINCH a terminal would.
	syscall.Kill(os.Getpid(), syscall.SIGWINCH)
	poll.Until(t, 10*time.Second, "the resize to reach the command", func() (bool, error) {
		return strings.Contains(out.String(), "resize 50x132"), nil
	})
	// Ctrl-C: the byte goes to the command (through its pty), not to clawbox as SIGINT.
	if _, err := ptmx.Write([]byte{0x03}); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-codec:
		if code != 130 {
			t.Errorf("exit code %d, want the command's 130", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("exec -it did not end after Ctrl-C")
	}
	after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Errorf("terminal not restored: before %+v after %+v", before, after)
	}
	if strings.Count(out.String(), "hello") != 1 {
		t.Errorf("output %q: want the text once (no local echo)", out.String())
	}
}

func cpArgs(conn []string, args ...string) []string {
	return append(append([]string{"cp"}, conn...), args...)
}

func TestCpFilesAndDirs(t *testing.T) {
	fake, env, conn := fakeAPI(t)
	ctx := context.Background()
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "proj", "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "proj", "main.py"), []byte("print(1)\n"), 0o644)
	os.WriteFile(filepath.Join(src, "proj", "sub", "run.sh"), []byte("#!/bin/sh\n\x00\xff"), 0o755)
	os.Symlink("/etc/passwd", filepath.Join(src, "proj", "link"))

	r := clawbox(t, ctx, env, cpArgs(conn, filepath.Join(src, "proj", "main.py"), servertest.Running+":/w/main.py")...)
	if data, mode, ok := fake.File("/w/main.py"); r.code != 0 || !ok || string(data) != "print(1)\n" || mode != 0o644 {
		t.Fatalf("file in: %+v, stored %q %o", r, data, mode)
	}
	r = clawbox(t, ctx, env, cpArgs(conn, filepath.Join(src, "proj"), servertest.Running+":/w/")...)
	if r.code != 0 || !strings.Contains(r.stderr, "skipped") || !strings.Contains(r.stderr, "symlink") {
		t.Fatalf("dir in: %+v", r)
	}
	if data, mode, ok := fake.File("/w/proj/sub/run.sh"); !ok || string(data) != "#!/bin/sh\n\x00\xff" || mode != 0o755 {
		t.Fatalf("dir in: stored %q %o", data, mode)
	}
	if _, _, ok := fake.File("/w/proj/link"); ok {
		t.Fatal("a symlink was copied as a file")
	}

	dst := t.TempDir()
	r = clawbox(t, ctx, env, cpArgs(conn, servertest.Running+":/w/proj", dst)...)
	if r.code != 0 {
		t.Fatalf("dir out: %+v", r)
	}
	got, err := os.ReadFile(filepath.Join(dst, "proj", "sub", "run.sh"))
	fi, _ := os.Stat(filepath.Join(dst, "proj", "sub", "run.sh"))
	if err != nil || string(got) != "#!/bin/sh\n\x00\xff" || fi.Mode().Perm() != 0o755 {
		t.Fatalf("dir out: %q %v", got, err)
	}
	r = clawbox(t, ctx, env, cpArgs(conn, servertest.Running+":/w/main.py", filepath.Join(dst, "copy.py"))...)
	if got, _ := os.ReadFile(filepath.Join(dst, "copy.py")); r.code != 0 || string(got) != "print(1)\n" {
		t.Fatalf("file out: %+v %q", r, got)
	}

	// A tar stream out, then back in under another name.
	var tarOut, errb bytes.Buffer
	if code := runWithEnv(ctx, cpArgs(conn, servertest.Running+":/w/proj", "-"), env, &tarOut, &errb); code != 0 {
		t.Fatalf("tar out: %d %s", code, errb.String())
	}
	names := tarNames(t, tarOut.Bytes())
	if strings.Join(names, ",") != "proj/,proj/main.py,proj/sub/,proj/sub/run.sh" {
		t.Fatalf("tar entries %v", names)
	}
	var out bytes.Buffer
	if code := runWithStdin(ctx, cpArgs(conn, "-", servertest.Running+":/again"), env, tarOut.String(), &out, &errb); code != 0 {
		t.Fatalf("tar in: %d %s", code, errb.String())
	}
	if data, _, ok := fake.File("/again/proj/sub/run.sh"); !ok || string(data) != "#!/bin/sh\n\x00\xff" {
		t.Fatalf("tar in: %q", data)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"both local", []string{"a", "b"}, ExitUsage, "exactly one"},
		{"both remote", []string{"x:/a", "y:/b"}, ExitUsage, "exactly one"},
		{"one arg", []string{"x:/a"}, ExitUsage, "SRC and DST"},
		{"missing remote", []string{servertest.Running + ":/nope", dst}, ExitError, "does not exist"},
		{"missing local", []string{filepath.Join(src, "nope"), servertest.Running + ":/w"}, ExitError, "no such file"},
		{"stopped", []string{filepath.Join(src, "proj", "main.py"), servertest.Stopped + ":/w/x"}, ExitError, "not running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := clawbox(t, ctx, env, cpArgs(conn, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
				t.Errorf("got %+v, want code %d and %q", r, tc.code, tc.msg)
			}
		})
	}
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	return names
}

func tarOf(t *testing.T, entries map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range entries {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(body)), Mode: 0o644})
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.String()
}

// TestCpHostileInput: whatever a sandbox lists and whatever tar stream comes in,
// nothing lands outside the destination.
func TestCpHostileInput(t *testing.T) {
	fake, env, conn := fakeAPI(t)
	ctx := context.Background()
	for _, name := range []string{"../escape", "/abs", "a/../../b"} {
		t.Run("tar "+name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runWithStdin(ctx, cpArgs(conn, "-", servertest.Running+":/dst"), env, tarOf(t, map[string]string{name: "x"}), &out, &errb)
			if code != ExitError || !strings.Contains(errb.String(), "outside") {
				t.Errorf("code %d stderr %q", code, errb.String())
			}
		})
	}
	// A listing from a hostile supervisor.
	hostile := map[string][]api.FileEntry{
		"/evil":  {{Name: "../../escaped", Size: 1}},
		"/slash": {{Name: "a/b", Size: 1}},
		"/dot":   {{Name: "..", IsDir: true}},
		"/nul":   {{Name: "a\x00b", Size: 1}},
		"/deep":  {{Name: "d", IsDir: true}},
		"/plant": {{Name: "link", Size: 1}},
	}
	fake.Listing = func(p string) (api.FileList, bool) {
		switch {
		case p == "/":
			var es []api.FileEntry
			for k := range hostile {
				es = append(es, api.FileEntry{Name: k[1:], IsDir: true})
			}
			return api.FileList{Path: "/", Entries: es}, true
		case strings.HasPrefix(p, "/deep"):
			return api.FileList{Path: p, Entries: hostile["/deep"]}, true // endless nesting
		}
		l, ok := hostile[p]
		return api.FileList{Path: p, Entries: l}, ok
	}
	for _, dir := range []string{"/evil", "/slash", "/dot", "/nul", "/deep"} {
		t.Run("listing "+dir, func(t *testing.T) {
			dst := t.TempDir()
			r := clawbox(t, ctx, env, cpArgs(conn, servertest.Running+":"+dir, filepath.Join(dst, "out"))...)
			if r.code != ExitError || !(strings.Contains(r.stderr, "unsafe entry") || strings.Contains(r.stderr, "deeper")) {
				t.Errorf("got %+v", r)
			}
			if _, err := os.Stat(filepath.Join(dst, "escaped")); err == nil {
				t.Error("a file escaped the destination")
			}
		})
	}
	// A symlink already in the local destination does not lead a write outside it.
	dst := t.TempDir()
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(dst, "plant"), 0o755)
	os.Symlink(filepath.Join(outside, "victim"), filepath.Join(dst, "plant", "link"))
	fake.WriteFile(ctx, servertest.Running, "/plant/link", 0, strings.NewReader("x"))
	r := clawbox(t, ctx, env, cpArgs(conn, servertest.Running+":/plant", dst)...)
	if r.code == 0 {
		t.Errorf("copy through a planted symlink succeeded: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(outside, "victim")); err == nil {
		t.Error("the write followed the symlink out of the destination")
	}
}

func TestCpJSONGolden(t *testing.T) {
	fake, env, conn := fakeAPI(t)
	ctx := context.Background()
	fake.WriteFile(ctx, servertest.Running, "/w/a.txt", 0o600, strings.NewReader("hello"))
	fake.WriteFile(ctx, servertest.Running, "/w/sub/b.bin", 0, strings.NewReader("\x00\x01"))
	r := clawbox(t, ctx, env, append([]string{"--json"}, cpArgs(conn, servertest.Running+":/w", t.TempDir())...)...)
	if r.code != 0 {
		t.Fatalf("cp --json: %+v", r)
	}
	golden(t, "cp.golden.json", normalise(t, r.stdout))
}

// TestCpSkippedNamesAreTerminalSafe: a skipped entry whose name holds control
// characters (here an OSC 52 clipboard write) is printed quoted, never raw.
func TestCpSkippedNamesAreTerminalSafe(t *testing.T) {
	_, env, conn := fakeAPI(t)
	src := t.TempDir()
	evil := "x\x1b]52;c;aGk=\x07\x1b[2K"
	if err := os.Symlink("/etc/passwd", filepath.Join(src, evil)); err != nil {
		t.Fatal(err)
	}
	r := clawbox(t, context.Background(), env, cpArgs(conn, src, servertest.Running+":/w/")...)
	if r.code != 0 || !strings.Contains(r.stderr, "skipped") {
		t.Fatalf("cp: %+v", r)
	}
	if strings.ContainsAny(r.stderr, "\x1b\x07") || !strings.Contains(r.stderr, `\x1b]52`) {
		t.Fatalf("the skipped name reached the terminal raw: %q", r.stderr)
	}
}
