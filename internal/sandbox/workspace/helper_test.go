package workspace

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/uuid"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/clawbox/clawbox/api"
)

// The tests run against real loop mounts: they need root, /dev/loop-control and
// mkfs.ext4 (CI runs as root). Each test's root is a t.TempDir; a cleanup unmounts
// whatever is still mounted under it and detaches every loop device backed by a file
// in it, even when the test failed half-way.

// sandboxUID is the non-root user the workload runs as in the tests.
const sandboxUID, sandboxGID = 1000, 1000

const helperEnv = "CLAWBOX_WORKSPACE_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode, os.Args[len(os.Args)-1]))
	}
	// The Docker test's client can hand a keep-alive connection back to its idle
	// pool just after Close: an idle connection is not a goroutine of ours.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}

// helper runs in a child process, standing in for a workload: it drops to the
// sandbox user (after a chroot into the workspace for "escape", the view a container
// has) and writes. It prints what happened; the parent checks the host.
func helper(mode, arg string) int {
	fail := func(what string, err error) int {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		return 2
	}
	switch mode {
	case "fill":
		// The test's temp dirs are 0700: enter the workspace as root, as a
		// container's bind mount would put it in reach, then drop.
		if err := unix.Chdir(arg); err != nil {
			return fail("chdir", err)
		}
		if err := dropToSandboxUser(); err != nil {
			return fail("setuid", err)
		}
		f, err := os.Create("fill")
		if err != nil {
			return fail("create", err)
		}
		chunk := make([]byte, 256<<10)
		for i := range chunk {
			chunk[i] = byte(i)
		}
		for {
			if _, err := f.Write(chunk); err != nil {
				fmt.Println(errnoName(err))
				return 0
			}
		}
	case "escape":
		// arg is the workspace dir; the host file to aim at is in the env.
		hostFile, hostDir := os.Getenv("HOST_FILE"), os.Getenv("HOST_DIR")
		if err := unix.Chroot(arg); err != nil {
			return fail("chroot", err)
		}
		if err := unix.Chdir("/"); err != nil {
			return fail("chdir", err)
		}
		if err := dropToSandboxUser(); err != nil {
			return fail("setuid", err)
		}
		for _, l := range [][2]string{{hostFile, "/link-file"}, {hostDir, "/link-dir"}, {"/", "/link-root"}, {"../../../../../../" + hostFile, "/link-up"}} {
			if err := os.Symlink(l[0], l[1]); err != nil {
				return fail("symlink", err)
			}
		}
		// Inside, the host file's directory does not exist until the workload makes it.
		if err := os.MkdirAll(filepath.Dir(hostFile), 0o755); err != nil {
			return fail("mkdir", err)
		}
		for _, p := range []string{"/link-file", "/link-up", "/link-dir/new", "/link-root" + hostFile} {
			err := os.WriteFile(p, []byte("pwned"), 0o644)
			fmt.Printf("%s %s\n", p, errnoName(err))
		}
		return 0
	}
	return fail("mode", errors.New(mode))
}

func dropToSandboxUser() error {
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(sandboxGID); err != nil {
		return err
	}
	return syscall.Setuid(sandboxUID)
}

func errnoName(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &errno):
		return unix.ErrnoName(errno)
	default:
		return err.Error()
	}
}

// runHelper runs the test binary as a helper child and returns its stdout.
func runHelper(t *testing.T, mode, arg string, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", arg)
	cmd.Env = append(os.Environ(), append(env, helperEnv+"="+mode)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper %s: %v: %s", mode, err, stderr.String())
	}
	return string(out)
}

// requireLoop skips the test, saying how to enable it, when this host cannot mount
// workspaces.
func requireLoop(t *testing.T) {
	t.Helper()
	if err := DefaultCheck(); err != nil {
		t.Skipf("workspace tests need root, loop devices and mkfs.ext4 (run as root, e.g. sudo go test ./internal/sandbox/workspace): %v", err)
	}
}

// newManager returns a Manager on a fresh root, with the cleanup described above.
func newManager(t *testing.T) *Manager {
	t.Helper()
	requireLoop(t)
	root := t.TempDir()
	t.Cleanup(func() { forceClean(t, root) })
	return &Manager{Root: root}
}

func forceClean(t *testing.T, root string) {
	for _, mp := range mountsUnder(t, root) {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
			t.Errorf("cleanup: unmount %s: %v", mp, err)
		}
	}
	for _, dev := range loopsUnder(t, root) {
		fd, err := unix.Open("/dev/"+dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		_ = unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
		unix.Close(fd)
	}
}

// mountsUnder lists the mount points at or under dir (from /proc/self/mountinfo).
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := fields[4]
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// mountOptions returns the per-mount options of the mount at mp ("" when none).
func mountOptions(t *testing.T, mp string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if fields := strings.Fields(line); len(fields) > 5 && fields[4] == mp {
			return fields[5]
		}
	}
	return ""
}

// loopsUnder lists the loop devices whose backing file is in dir (from sysfs, not
// the ioctls the package uses).
func loopsUnder(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // detached meanwhile
		}
		if strings.HasPrefix(strings.TrimSpace(string(b)), dir+"/") {
			out = append(out, filepath.Base(filepath.Dir(filepath.Dir(f))))
		}
	}
	return out
}

// loopsFor lists the loop devices backed by the image of id.
func loopsFor(t *testing.T, m *Manager, id string) []string {
	t.Helper()
	var out []string
	img := filepath.Join(m.Root, id+".img")
	for _, dev := range loopsUnder(t, m.Root) {
		b, _ := os.ReadFile("/sys/block/" + dev + "/loop/backing_file")
		if name := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)"); name == img {
			out = append(out, dev)
		}
	}
	return out
}

func newID() string { return "clawbox-" + uuid.NewString() }

// wantCode fails unless err is an *api.Error with code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	e, ok := api.AsError(err)
	if !ok || e.Code != code {
		t.Fatalf("%s: got %v, want code %s", what, err, code)
	}
}
