package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/poll"
)

const testQuota = 8 << 20

func TestCheckID(t *testing.T) {
	good := "clawbox-0b9f6c2e-6a7d-4c1e-9d8f-2a3b4c5d6e7f"
	for _, tc := range []struct {
		name, id string
		ok       bool
	}{
		{"manager id", good, true},
		{"empty", "", false},
		{"no prefix", good[len("clawbox-"):], false},
		{"dot dot", "..", false},
		{"traversal", "clawbox-../../etc/passwd", false},
		{"slash", good + "/x", false},
		{"leading slash", "/" + good, false},
		{"nul", good + "\x00", false},
		{"image name", good + ".img", false},
		{"upper case", strings.ToUpper(good), false},
		{"newline", good + "\n", false},
		{"short uuid", "clawbox-0b9f6c2e", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckID(tc.id)
			if tc.ok && err != nil {
				t.Fatalf("CheckID(%q) = %v", tc.id, err)
			}
			if !tc.ok {
				wantCode(t, "CheckID", err, api.CodeInvalidRequest)
			}
		})
	}
}

// Every operation refuses a hostile id before touching anything: the root stays empty.
func TestHostileIDsTouchNothing(t *testing.T) {
	root := t.TempDir()
	m := &Manager{Root: root, Check: func() error { return nil }}
	ctx := context.Background()
	for _, id := range []string{"", "..", "../x", "clawbox-x/../../y", "a\x00b", "/etc"} {
		_, err := m.Create(ctx, id, testQuota, 1000, 1000)
		wantCode(t, "Create "+id, err, api.CodeInvalidRequest)
		_, err = m.Open(ctx, id)
		wantCode(t, "Open "+id, err, api.CodeInvalidRequest)
		wantCode(t, "Release "+id, m.Release(id), api.CodeInvalidRequest)
		wantCode(t, "Remove "+id, m.Remove(id), api.CodeInvalidRequest)
		_, err = m.Stat(id)
		wantCode(t, "Stat "+id, err, api.CodeInvalidRequest)
	}
	_, err := m.Create(ctx, newID(), MinQuota-1, 1000, 1000)
	wantCode(t, "Create under MinQuota", err, api.CodeInvalidRequest)
	_, err = m.Create(ctx, newID(), testQuota, -1, 1000)
	wantCode(t, "Create negative uid", err, api.CodeInvalidRequest)
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("root has %d entries after refusals", len(entries))
	}
}

// The availability check runs once and every operation reports it as unavailable.
func TestUnavailable(t *testing.T) {
	calls := 0
	m := &Manager{Root: t.TempDir(), Check: func() error { calls++; return errors.New("no /dev/loop-control") }}
	id := newID()
	_, err := m.Create(context.Background(), id, testQuota, 1000, 1000)
	wantCode(t, "Create", err, api.CodeUnavailable)
	if !strings.Contains(err.Error(), "need root and loop devices") || !strings.Contains(err.Error(), "no /dev/loop-control") {
		t.Fatalf("message does not say what is missing: %v", err)
	}
	_, err = m.Open(context.Background(), id)
	wantCode(t, "Open", err, api.CodeUnavailable)
	wantCode(t, "Release", m.Release(id), api.CodeUnavailable)
	wantCode(t, "Remove", m.Remove(id), api.CodeUnavailable)
	_, err = m.Stat(id)
	wantCode(t, "Stat", err, api.CodeUnavailable)
	_, err = m.List()
	wantCode(t, "List", err, api.CodeUnavailable)
	if calls != 1 {
		t.Fatalf("check ran %d times, want once", calls)
	}
}

func create(t *testing.T, m *Manager, id string) string {
	t.Helper()
	dir, err := m.Create(context.Background(), id, testQuota, sandboxUID, sandboxGID)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return dir
}

func waitNoLoops(t *testing.T, m *Manager, id string) {
	t.Helper()
	poll.Until(t, poll.Short, "loop devices of "+id+" detached", func() (bool, error) {
		if l := loopsFor(t, m, id); len(l) > 0 {
			return false, errors.New("still attached: " + strings.Join(l, ","))
		}
		return true, nil
	})
}

// Writing past the quota as the sandbox user fails with ENOSPC, and the image never
// takes more host disk than the quota.
func TestQuotaEnforced(t *testing.T) {
	m := newManager(t)
	id := newID()
	dir := create(t, m, id)
	// Not noexec: a workspace is where an agent builds and runs its programs.
	if got := mountOptions(t, dir); !strings.Contains(got, "nosuid") || !strings.Contains(got, "nodev") || strings.Contains(got, "noexec") {
		t.Fatalf("host mount options %q: want nosuid,nodev and exec allowed", got)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil || st.Uid != sandboxUID || st.Gid != sandboxGID {
		t.Fatalf("workspace root owner %d:%d (%v), want %d:%d", st.Uid, st.Gid, err, sandboxUID, sandboxGID)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("new workspace is not empty: %v", entries)
	}
	before, err := m.Stat(id)
	if err != nil {
		t.Fatal(err)
	}
	if out := strings.TrimSpace(runHelper(t, "fill", dir)); out != "ENOSPC" {
		t.Fatalf("writing past the quota as uid %d ended with %q, want ENOSPC", sandboxUID, out)
	}
	info, err := m.Stat(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before %+v after %+v", before, info)
	if !info.Mounted || info.QuotaBytes != testQuota || info.TotalBytes <= 0 || info.TotalBytes > testQuota {
		t.Fatalf("stat %+v: want mounted, quota %d, 0 < total <= quota", info, testQuota)
	}
	if info.UsedBytes <= before.UsedBytes || info.UsedBytes < info.TotalBytes*9/10 {
		t.Fatalf("used %d of %d after filling (was %d)", info.UsedBytes, info.TotalBytes, before.UsedBytes)
	}
	// Flush the file system so the image holds every block, then measure the host.
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Syncfs(fd)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	info, _ = m.Stat(id)
	if info.DiskBytes > testQuota || info.DiskBytes < info.UsedBytes/2 {
		t.Fatalf("image takes %d bytes of host disk, quota %d, used %d", info.DiskBytes, testQuota, info.UsedBytes)
	}
	// Mounted with discard: deleting the file gives the host its disk back.
	full := info.DiskBytes
	if err := os.Remove(filepath.Join(dir, "fill")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, poll.Short, "host disk freed after delete", func() (bool, error) {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return false, err
		}
		err = unix.Syncfs(fd)
		unix.Close(fd)
		if err != nil {
			return false, err
		}
		info, err = m.Stat(id)
		if err != nil || info.DiskBytes > full/2 {
			return false, fmt.Errorf("disk %d of %d before the delete (%v)", info.DiskBytes, full, err)
		}
		return true, nil
	})
	var img unix.Stat_t
	if err := unix.Stat(filepath.Join(m.Root, id+".img"), &img); err != nil || img.Size != testQuota || img.Mode&0o777 != 0o600 {
		t.Fatalf("image size %d mode %o (%v), want %d 0600", img.Size, img.Mode&0o777, err, testQuota)
	}
}

// Create, write, release (kept, unmounted, no loop device), open again (same
// content), remove (gone), remove again (nothing), open (not found), create again.
func TestLifecycle(t *testing.T) {
	m := newManager(t)
	now := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	m.Now = func() time.Time { return now }
	id := newID()
	dir := create(t, m, id)
	if dir != filepath.Join(m.Root, id) {
		t.Fatalf("workspace %s at %q", id, dir)
	}
	if _, err := m.Create(context.Background(), id, testQuota, 1000, 1000); err == nil {
		t.Fatal("second Create of the same id succeeded")
	} else {
		wantCode(t, "second Create", err, api.CodeConflict)
	}
	if err := os.WriteFile(filepath.Join(dir, "kept.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l := loopsFor(t, m, id); len(l) != 1 {
		t.Fatalf("mounted workspace has loop devices %v, want one", l)
	}

	if err := m.Release(id); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if mp := mountsUnder(t, m.Root); len(mp) != 0 {
		t.Fatalf("still mounted after Release: %v", mp)
	}
	var under unix.Stat_t
	if err := unix.Lstat(dir, &under); err != nil || under.Mode != unix.S_IFDIR || under.Uid != 0 {
		t.Fatalf("bare mount point: mode %o uid %d (%v), want a root directory of mode 0000", under.Mode, under.Uid, err)
	}
	waitNoLoops(t, m, id)
	if err := m.Release(id); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	now = now.Add(time.Hour)
	list, err := m.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v; want the kept workspace", list, err)
	}
	if got := list[0]; got.ID != id || got.Mounted || got.Age != time.Hour || got.UsedBytes != 0 || got.QuotaBytes != testQuota || got.DiskBytes <= 0 {
		t.Fatalf("kept workspace listed as %+v", got)
	}

	if used, total, err := m.Usage(id); err != nil || used != list[0].DiskBytes || total != testQuota {
		t.Fatalf("Usage kept = %d, %d, %v; want disk %d, quota", used, total, err, list[0].DiskBytes)
	}
	dir, err = m.Open(context.Background(), id)
	if err != nil {
		t.Fatalf("Open kept: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "kept.txt")); err != nil || string(b) != "hello" {
		t.Fatalf("after reopen: %q, %v", b, err)
	}
	info, err := m.Stat(id)
	if err != nil || !info.Mounted || info.UsedBytes <= 0 {
		t.Fatalf("Stat reopened = %+v, %v", info, err)
	}
	if used, total, err := m.Usage(id); err != nil || used != info.UsedBytes || total != info.TotalBytes {
		t.Fatalf("Usage mounted = %d, %d, %v; want statfs %d, %d", used, total, err, info.UsedBytes, info.TotalBytes)
	}

	if err := m.Remove(id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	waitNoLoops(t, m, id)
	if entries, _ := os.ReadDir(m.Root); len(entries) != 0 || len(mountsUnder(t, m.Root)) != 0 {
		t.Fatalf("after Remove: root has %v, mounts %v", entries, mountsUnder(t, m.Root))
	}
	if err := m.Remove(id); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	_, err = m.Open(context.Background(), id)
	wantCode(t, "Open removed", err, api.CodeNotFound)
	_, err = m.Stat(id)
	wantCode(t, "Stat removed", err, api.CodeNotFound)
	if list, err := m.List(); err != nil || len(list) != 0 {
		t.Fatalf("List after Remove = %+v, %v", list, err)
	}
	create(t, m, id)
	if err := m.Remove(id); err != nil {
		t.Fatal(err)
	}
}

// A new Manager (a restarted server) adopts a workspace still mounted by the old
// one, without a second loop device, and one kept unmounted.
func TestAdoptAfterRestart(t *testing.T) {
	m1 := newManager(t)
	running, kept := newID(), newID()
	dir := create(t, m1, running)
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("running"), 0o644); err != nil {
		t.Fatal(err)
	}
	create(t, m1, kept)
	if err := m1.Release(kept); err != nil {
		t.Fatal(err)
	}

	m2 := &Manager{Root: m1.Root}
	list, err := m2.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("restarted List = %+v, %v", list, err)
	}
	for _, info := range list {
		if info.Mounted != (info.ID == running) {
			t.Fatalf("restarted List: %+v", info)
		}
	}
	dir2, err := m2.Open(context.Background(), running)
	if err != nil {
		t.Fatalf("adopt running: %v", err)
	}
	if l := loopsFor(t, m2, running); len(l) != 1 {
		t.Fatalf("after adoption loop devices %v, want the one of before", l)
	}
	if mp := mountsUnder(t, dir2); len(mp) != 1 {
		t.Fatalf("after adoption mounts %v, want one", mp)
	}
	if b, err := os.ReadFile(filepath.Join(dir2, "f")); err != nil || string(b) != "running" {
		t.Fatalf("adopted content %q, %v", b, err)
	}
	if _, err := m2.Open(context.Background(), kept); err != nil {
		t.Fatalf("open kept after restart: %v", err)
	}
	_, err = m2.Create(context.Background(), kept, testQuota, 1000, 1000)
	wantCode(t, "Create over a kept workspace", err, api.CodeConflict)
	for _, id := range []string{running, kept} {
		if err := m2.Remove(id); err != nil {
			t.Fatal(err)
		}
		waitNoLoops(t, m2, id)
	}
}

// hostTarget is a host file and directory a planted symlink points at; unchanged
// reports whether they are exactly as made.
type hostTarget struct{ dir, file string }

func newHostTarget(t *testing.T) hostTarget {
	requireLoop(t)
	dir := filepath.Join(t.TempDir(), "host")
	// Were the code wrong, the host dir could end up mounted or attached: clean it too.
	t.Cleanup(func() { forceClean(t, dir) })
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "precious")
	if err := os.WriteFile(file, []byte("precious host data"), 0o600); err != nil {
		t.Fatal(err)
	}
	return hostTarget{dir, file}
}

func (h hostTarget) check(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(h.dir)
	if err != nil || len(entries) != 1 || entries[0].Name() != "precious" {
		t.Fatalf("host dir changed: %v, %v", entries, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(h.file, &st); err != nil || st.Mode != unix.S_IFREG|0o600 || st.Uid != 0 || st.Size != int64(len("precious host data")) {
		t.Fatalf("host file changed: %+v, %v", st, err)
	}
	if b, _ := os.ReadFile(h.file); string(b) != "precious host data" {
		t.Fatalf("host file content changed: %q", b)
	}
	if mp := mountsUnder(t, h.dir); len(mp) != 0 {
		t.Fatalf("something mounted on the host dir: %v", mp)
	}
}

// Planted symlinks at <root>/<id> and <root>/<id>.img are refused by every
// operation, and what they point at is never touched.
func TestPlantedSymlinksRefused(t *testing.T) {
	ctx := context.Background()
	t.Run("mount point", func(t *testing.T) {
		m, h, id := newManager(t), newHostTarget(t), newID()
		if err := os.Symlink(h.dir, filepath.Join(m.Root, id)); err != nil {
			t.Fatal(err)
		}
		_, err := m.Create(ctx, id, testQuota, 1000, 1000)
		wantCode(t, "Create", err, api.CodeConflict)
		if _, err := os.Lstat(filepath.Join(m.Root, id+".img")); !os.IsNotExist(err) {
			t.Fatalf("Create left an image: %v", err)
		}
		wantCode(t, "Remove", m.Remove(id), api.CodeConflict)
		h.check(t)
		if fi, err := os.Lstat(filepath.Join(m.Root, id)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("the planted symlink is gone or changed: %v %v", fi, err)
		}
	})
	t.Run("image", func(t *testing.T) {
		m, h, id := newManager(t), newHostTarget(t), newID()
		if err := os.Symlink(h.file, filepath.Join(m.Root, id+".img")); err != nil {
			t.Fatal(err)
		}
		_, err := m.Create(ctx, id, testQuota, 1000, 1000)
		wantCode(t, "Create", err, api.CodeConflict)
		_, err = m.Open(ctx, id)
		wantCode(t, "Open", err, api.CodeConflict)
		_, err = m.Stat(id)
		wantCode(t, "Stat", err, api.CodeConflict)
		wantCode(t, "Release", m.Release(id), api.CodeConflict)
		wantCode(t, "Remove", m.Remove(id), api.CodeConflict)
		if list, err := m.List(); err != nil || len(list) != 0 {
			t.Fatalf("List = %+v, %v; want the symlink skipped", list, err)
		}
		h.check(t)
		if l := loopsUnder(t, h.dir); len(l) != 0 {
			t.Fatalf("host file attached to %v", l)
		}
	})
	t.Run("mount point swapped after release", func(t *testing.T) {
		m, h, id := newManager(t), newHostTarget(t), newID()
		create(t, m, id)
		if err := m.Release(id); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(m.Root, id)
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(h.dir, dir); err != nil {
			t.Fatal(err)
		}
		_, err := m.Open(ctx, id)
		wantCode(t, "Open", err, api.CodeConflict)
		waitNoLoops(t, m, id)
		wantCode(t, "Remove", m.Remove(id), api.CodeConflict)
		if _, err := os.Lstat(filepath.Join(m.Root, id+".img")); !os.IsNotExist(err) {
			t.Fatalf("Remove kept the image beside a planted mount point: %v", err)
		}
		h.check(t)
	})
	t.Run("hard link", func(t *testing.T) {
		m, h, id := newManager(t), newHostTarget(t), newID()
		if err := os.Link(h.file, filepath.Join(m.Root, id+".img")); err != nil {
			t.Skipf("hard link across the temp dirs: %v", err)
		}
		_, err := m.Open(ctx, id)
		wantCode(t, "Open", err, api.CodeConflict)
		h.check(t)
	})
}

// A workload makes symlinks inside its workspace that point at host paths and
// writes through them (from a chroot into the workspace as the sandbox user: the
// view a container has). The writes land inside the workspace; the host paths, and
// every host-side operation on the workspace afterwards, leave the host untouched.
func TestWorkloadSymlinksStayInside(t *testing.T) {
	m, h, id := newManager(t), newHostTarget(t), newID()
	dir := create(t, m, id)
	out := runHelper(t, "escape", dir, "HOST_FILE="+h.file, "HOST_DIR="+h.dir)
	t.Logf("workload writes:\n%s", out)
	h.check(t)
	// What the workload wrote through its links is inside the workspace.
	if b, err := os.ReadFile(filepath.Join(dir, h.file)); err != nil || string(b) != "pwned" {
		t.Fatalf("the write through the link is not in the workspace: %q, %v", b, err)
	}
	if _, err := m.Stat(id); err != nil {
		t.Fatal(err)
	}
	if _, err := m.List(); err != nil {
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
	h.check(t)
}

// A mount that fails (the image is not ext4) leaves no loop device attached, and a
// failing mkfs leaves no image behind.
func TestFailuresLeakNothing(t *testing.T) {
	t.Run("mount", func(t *testing.T) {
		m, id := newManager(t), newID()
		if err := os.WriteFile(filepath.Join(m.Root, id+".img"), bytes.Repeat([]byte{0x5a}, 4<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Open(context.Background(), id); err == nil {
			t.Fatal("Open of a non-ext4 image succeeded")
		}
		waitNoLoops(t, m, id)
		if mp := mountsUnder(t, m.Root); len(mp) != 0 {
			t.Fatalf("mounts left: %v", mp)
		}
		if err := m.Remove(id); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("mkfs", func(t *testing.T) {
		m, id := newManager(t), newID()
		m.Mkfs = "/bin/false"
		if _, err := m.Create(context.Background(), id, testQuota, 1000, 1000); err == nil {
			t.Fatal("Create with a failing mkfs succeeded")
		}
		if entries, _ := os.ReadDir(m.Root); len(entries) != 0 {
			t.Fatalf("failed Create left %v", entries)
		}
	})
}

// Different ids are created, used and removed concurrently.
func TestConcurrentCreateRemove(t *testing.T) {
	m := newManager(t)
	const workers, rounds = 4, 2
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for range workers {
		wg.Go(func() {
			for range rounds {
				id := newID()
				dir, err := m.Create(context.Background(), id, testQuota, 1000, 1000)
				if err != nil {
					errs <- err
					return
				}
				if err := os.WriteFile(filepath.Join(dir, "x"), []byte(id), 0o644); err != nil {
					errs <- err
				}
				if b, err := os.ReadFile(filepath.Join(dir, "x")); err != nil || string(b) != id {
					errs <- errors.New("crossed workspaces: " + string(b))
				}
				if err := m.Remove(id); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	poll.Until(t, poll.Short, "every loop device detached", func() (bool, error) {
		if l := loopsUnder(t, m.Root); len(l) > 0 {
			return false, errors.New(strings.Join(l, ","))
		}
		return true, nil
	})
	if entries, _ := os.ReadDir(m.Root); len(entries) != 0 {
		t.Fatalf("root has %v", entries)
	}
}

// Operations on one id from several goroutines are serialized: whatever the
// interleaving, each call either succeeds or fails with a chosen error, and at the
// end one Remove leaves nothing mounted, attached or on disk.
func TestSameIDHammer(t *testing.T) {
	m := newManager(t)
	id := newID()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Go(func() {
			for i := range 6 {
				var err error
				switch (w + i) % 5 {
				case 0:
					_, err = m.Create(ctx, id, testQuota, 1000, 1000)
				case 1:
					_, err = m.Open(ctx, id)
				case 2:
					err = m.Release(id)
				case 3:
					err = m.Remove(id)
				case 4:
					_, err = m.Stat(id)
				}
				if e, ok := api.AsError(err); err != nil && (!ok || (e.Code != api.CodeConflict && e.Code != api.CodeNotFound)) {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := m.Remove(id); err != nil {
		t.Fatal(err)
	}
	waitNoLoops(t, m, id)
	if entries, _ := os.ReadDir(m.Root); len(entries) != 0 || len(mountsUnder(t, m.Root)) != 0 {
		t.Fatalf("after the hammer: root has %v, mounts %v", entries, mountsUnder(t, m.Root))
	}
	m.mu.Lock()
	n := len(m.locks)
	m.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d id locks left behind", n)
	}
}

// A FIFO planted as the image is refused by Open and Remove (and left in place).
func TestPlantedFIFORefused(t *testing.T) {
	m, id := newManager(t), newID()
	if err := unix.Mkfifo(filepath.Join(m.Root, id+".img"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := m.Open(context.Background(), id)
	wantCode(t, "Open", err, api.CodeConflict)
	wantCode(t, "Remove", m.Remove(id), api.CodeConflict)
}

// The interface the package doc proposes for internal/sandbox: *Manager satisfies it
// with built-in types only.
var _ interface {
	Create(ctx context.Context, id string, quota int64, uid, gid int) (dir string, err error)
	Open(ctx context.Context, id string) (dir string, err error)
	Release(id string) error
	Remove(id string) error
	Usage(id string) (used, total int64, err error)
} = (*Manager)(nil)
