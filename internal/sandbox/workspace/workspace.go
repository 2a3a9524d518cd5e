package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clawbox/clawbox/api"
)

// Quota bounds, in bytes.
const (
	MinQuota int64 = 2 << 20  // below this mkfs.ext4 has no room for a useful file system
	MaxQuota int64 = 16 << 40 // ext4's limit with 4 KiB blocks is far above; this bounds typos
)

// imgSuffix ends the image's name beside the mount point.
const imgSuffix = ".img"

// idRE is the sandbox manager's id format: "clawbox-" and a lowercase UUID.
var idRE = regexp.MustCompile(`^clawbox-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// CheckID returns an invalid_request error unless id has the sandbox id format
// ("clawbox-<uuid>"). An accepted id has no '/', no "..", no NUL: it is one plain
// name under the root.
func CheckID(id string) error {
	if !idRE.MatchString(id) {
		return api.Errorf(api.CodeInvalidRequest, "invalid workspace id %q: want clawbox-<uuid>", id)
	}
	return nil
}

// Info describes a workspace.
type Info struct {
	ID string
	// Mounted says the file system is mounted at the mount point (a running sandbox,
	// or one whose workspace was not released yet).
	Mounted bool
	// QuotaBytes is the image's apparent size; DiskBytes what it takes on the host's
	// disk (allocated blocks), never more than the quota plus a few metadata blocks.
	QuotaBytes, DiskBytes int64
	// UsedBytes and TotalBytes are the file system's statfs figures when mounted,
	// zero otherwise. TotalBytes is a little under the quota (ext4 metadata).
	UsedBytes, TotalBytes int64
	// Released is when a workspace that is not mounted was released (the mount
	// point's mtime; the image's when the mount point is missing); zero when mounted.
	Released time.Time
	// Age is how long ago Released was; zero when mounted. Retention removes kept
	// workspaces by Age.
	Age time.Duration
}

// Manager creates, mounts, releases, removes and lists the workspaces under Root.
// The zero value is not usable: set Root. Its methods are safe for concurrent use.
type Manager struct {
	// Root is containers.workspace_root, an absolute path. It is created (0700) if
	// missing and must not be writable by group or others.
	Root string
	// Check reports why workspaces cannot work on this host; nil means DefaultCheck.
	// It runs once, on the first operation.
	Check func() error
	// Mkfs is the path of mkfs.ext4; "" means looking it up in PATH.
	Mkfs string
	// Now is the clock for ages; nil means time.Now.
	Now func() time.Time

	checkOnce sync.Once
	checkErr  error

	mu    sync.Mutex         // guards locks
	locks map[string]*idLock // one per id with an operation in flight
}

type idLock struct {
	mu   sync.Mutex
	refs int // guarded by Manager.mu
}

// DefaultCheck reports whether this host can have workspaces: the process runs as
// root, /dev/loop-control exists and mkfs.ext4 is in PATH.
func DefaultCheck() error {
	if os.Geteuid() != 0 {
		return errors.New("the server does not run as root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return fmt.Errorf("no loop devices: %w", err)
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		return errors.New("mkfs.ext4 not found in PATH (install e2fsprogs)")
	}
	return nil
}

func (m *Manager) available() error {
	m.checkOnce.Do(func() {
		check := m.Check
		if check == nil {
			check = DefaultCheck
		}
		if err := check(); err != nil {
			m.checkErr = api.Errorf(api.CodeUnavailable, "workspaces need root and loop devices (/dev/loop-control, mkfs.ext4): %v", err)
		}
	})
	return m.checkErr
}

// begin validates id, runs the availability check and takes id's lock; the returned
// func releases it.
func (m *Manager) begin(id string) (func(), error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	if err := m.available(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.locks == nil {
		m.locks = map[string]*idLock{}
	}
	l := m.locks[id]
	if l == nil {
		l = &idLock{}
		m.locks[id] = l
	}
	l.refs++
	m.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		m.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(m.locks, id)
		}
		m.mu.Unlock()
	}, nil
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// openRoot opens Root as an O_PATH directory, creating it if create is set. A root
// writable by group or others is refused: someone else could plant names in it.
func (m *Manager) openRoot(create bool) (int, error) {
	if !filepath.IsAbs(m.Root) {
		return -1, fmt.Errorf("workspace root %q is not an absolute path", m.Root)
	}
	if create {
		if err := os.MkdirAll(m.Root, 0o700); err != nil {
			return -1, fmt.Errorf("workspace root: %w", err)
		}
	}
	fd, err := unix.Open(m.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open workspace root", Path: m.Root, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st.Mode&0o022 != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("workspace root %s is writable by group or others (mode %o); make it 0700", m.Root, st.Mode&0o7777)
	}
	return fd, nil
}

// openBeneath opens name directly under dirfd, refusing any symlink on the way.
func openBeneath(dirfd int, name string, flags uint64, mode uint64) (int, error) {
	// O_NOFOLLOW is left out of O_PATH opens: with it, openat2 would hand back a
	// descriptor of the symlink itself instead of failing with ELOOP.
	if flags&unix.O_PATH == 0 {
		flags |= unix.O_NOFOLLOW
	}
	return unix.Openat2(dirfd, name, &unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Mode:    mode,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// refused is the error for a planted name: a symlink or the wrong kind of file.
func refused(id, name, what string) error {
	return api.Errorf(api.CodeConflict, "workspace %s: %s is %s; refusing to use it", id, name, what)
}

// kind classifies the name under dirfd without following it: 0 (missing),
// unix.S_IFREG, unix.S_IFDIR, unix.S_IFLNK or another S_IFMT value.
func kind(dirfd int, name string) (uint32, *unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	return st.Mode & unix.S_IFMT, &st, nil
}

// Create makes, formats and mounts a new workspace of quota bytes whose root
// directory belongs to uid:gid, and returns the host directory to bind-mount
// read-write at /workspace. An existing workspace of that id is a conflict.
func (m *Manager) Create(ctx context.Context, id string, quota int64, uid, gid int) (dir string, err error) {
	if quota < MinQuota || quota > MaxQuota {
		return "", api.Errorf(api.CodeInvalidRequest, "workspace quota %d bytes out of range [%d, %d]", quota, MinQuota, MaxQuota)
	}
	if uid < 0 || gid < 0 || uid > 1<<31-2 || gid > 1<<31-2 {
		return "", api.Errorf(api.CodeInvalidRequest, "workspace owner %d:%d out of range", uid, gid)
	}
	unlock, err := m.begin(id)
	if err != nil {
		return "", err
	}
	defer unlock()
	mkfs := m.Mkfs
	if mkfs == "" {
		if mkfs, err = exec.LookPath("mkfs.ext4"); err != nil {
			return "", api.Errorf(api.CodeUnavailable, "workspaces need mkfs.ext4 in PATH (install e2fsprogs)")
		}
	}
	root, err := m.openRoot(true)
	if err != nil {
		return "", err
	}
	defer unix.Close(root)

	// Refuse a planted mount point before creating anything.
	switch k, _, err := kind(root, id); {
	case err != nil:
		return "", err
	case k == unix.S_IFLNK:
		return "", refused(id, id, "a symlink")
	case k != 0 && k != unix.S_IFDIR:
		return "", refused(id, id, "not a directory")
	}
	// O_EXCL on the image is the existence check, also across Manager instances.
	img, err := openBeneath(root, id+imgSuffix, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o600)
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
		return "", api.Errorf(api.CodeConflict, "workspace %s already exists", id)
	}
	if err != nil {
		return "", fmt.Errorf("workspace %s: create image: %w", id, err)
	}
	dir, err = m.format(ctx, root, img, id, quota, uid, gid, mkfs)
	unix.Close(img)
	if err != nil {
		// The one release path, as for any workspace.
		if rerr := m.removeLocked(root, id); rerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", rerr))
		}
		return "", err
	}
	return dir, nil
}

// format sizes and formats the new image open at img, then mounts it.
func (m *Manager) format(ctx context.Context, root, img int, id string, quota int64, uid, gid int, mkfs string) (string, error) {
	if err := unix.Ftruncate(img, quota); err != nil {
		return "", fmt.Errorf("workspace %s: size image: %w", id, err)
	}
	// mkfs opens /proc/self/fd/3, the descriptor we created: no path is resolved again.
	// The *os.File gets its own duplicate, since it closes what it holds.
	dup, err := unix.FcntlInt(uintptr(img), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("workspace %s: %w", id, err)
	}
	f := os.NewFile(uintptr(dup), id+imgSuffix)
	defer f.Close()
	cmd := exec.CommandContext(ctx, mkfs, "-q", "-F", "-t", "ext4",
		"-O", "^has_journal", "-m", "0",
		"-E", "root_owner="+strconv.Itoa(uid)+":"+strconv.Itoa(gid)+",nodiscard",
		"/proc/self/fd/3")
	cmd.ExtraFiles = []*os.File{f}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("workspace %s: mkfs.ext4: %w: %s", id, err, strings.TrimSpace(out.String()))
	}
	if err := unix.Mkdirat(root, id, 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return "", fmt.Errorf("workspace %s: create mount point: %w", id, err)
	}
	if err := m.mountLocked(root, id); err != nil {
		return "", err
	}
	// mkfs makes lost+found; the workload has no use for it.
	dir, err := openBeneath(root, id, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return "", fmt.Errorf("workspace %s: %w", id, err)
	}
	defer unix.Close(dir)
	if err := unix.Unlinkat(dir, "lost+found", unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return "", fmt.Errorf("workspace %s: remove lost+found: %w", id, err)
	}
	return filepath.Join(m.Root, id), nil
}

// Open mounts the kept workspace id, or adopts it if it is already mounted (a
// sandbox that ran on across a server restart), and returns the host directory to
// bind-mount at /workspace. An unknown id is not_found.
func (m *Manager) Open(ctx context.Context, id string) (dir string, err error) {
	err = m.withRoot(id, func(root int) error {
		dir, err = m.openLocked(root, id)
		return err
	})
	if errors.Is(err, errNoRoot) {
		return "", api.Errorf(api.CodeNotFound, "workspace %s not found", id)
	}
	return dir, err
}

func (m *Manager) openLocked(root int, id string) (string, error) {
	switch k, _, err := kind(root, id+imgSuffix); {
	case err != nil:
		return "", err
	case k == 0:
		return "", api.Errorf(api.CodeNotFound, "workspace %s not found", id)
	}
	if err := unix.Mkdirat(root, id, 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return "", fmt.Errorf("workspace %s: create mount point: %w", id, err)
	}
	if err := m.mountLocked(root, id); err != nil {
		return "", err
	}
	return filepath.Join(m.Root, id), nil
}

// errNoRoot is withRoot's answer when the workspace root does not exist (so no
// workspace does).
var errNoRoot = errors.New("no workspace root")

// withRoot runs f holding id's lock, with the workspace root open (closed after).
func (m *Manager) withRoot(id string, f func(root int) error) error {
	unlock, err := m.begin(id)
	if err != nil {
		return err
	}
	defer unlock()
	root, err := m.openRoot(false)
	if errors.Is(err, unix.ENOENT) {
		return errNoRoot
	}
	if err != nil {
		return err
	}
	defer unix.Close(root)
	return f(root)
}

// opened is a workspace's two names, opened without following anything.
type opened struct {
	img, dir int // -1 when missing (or closed)
	hasImg   bool
	imgSt    unix.Stat_t
	mounted  bool // dir is the root of a mount on a loop device backed by img
}

// close closes both descriptors; it is idempotent.
func (o *opened) close() {
	if o.img >= 0 {
		unix.Close(o.img)
		o.img = -1
	}
	if o.dir >= 0 {
		unix.Close(o.dir)
		o.dir = -1
	}
}

// openNames opens the image (read-write, for the loop device) and the mount point
// (O_PATH), refusing symlinks and wrong kinds, and finds out whether the mount point
// carries the image's file system. A mount point carrying anything else is refused.
func openNames(root int, id string) (*opened, error) {
	o := &opened{img: -1, dir: -1}
	// Look before opening: opening a planted device node or FIFO could have effects.
	switch k, _, err := kind(root, id+imgSuffix); {
	case err != nil:
		return nil, err
	case k == unix.S_IFLNK:
		return nil, refused(id, id+imgSuffix, "a symlink")
	case k != 0 && k != unix.S_IFREG:
		return nil, refused(id, id+imgSuffix, "not a regular file")
	}
	var err error
	o.img, err = openBeneath(root, id+imgSuffix, unix.O_RDWR, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV):
		return nil, refused(id, id+imgSuffix, "a symlink")
	case err != nil:
		return nil, fmt.Errorf("workspace %s: open image: %w", id, err)
	default:
		if err := unix.Fstat(o.img, &o.imgSt); err != nil {
			o.close()
			return nil, err
		}
		if o.imgSt.Mode&unix.S_IFMT != unix.S_IFREG || o.imgSt.Nlink != 1 {
			o.close()
			return nil, refused(id, id+imgSuffix, "not a regular file with one link")
		}
		o.hasImg = true
	}
	o.dir, err = openBeneath(root, id, unix.O_PATH|unix.O_DIRECTORY, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return o, nil
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV):
		o.close()
		return nil, refused(id, id, "a symlink")
	case errors.Is(err, unix.ENOTDIR):
		o.close()
		return nil, refused(id, id, "not a directory")
	case err != nil:
		o.close()
		return nil, fmt.Errorf("workspace %s: open mount point: %w", id, err)
	}
	var rootSt, dirSt unix.Stat_t
	if err := unix.Fstat(root, &rootSt); err != nil {
		o.close()
		return nil, err
	}
	if err := unix.Fstat(o.dir, &dirSt); err != nil {
		o.close()
		return nil, err
	}
	if dirSt.Dev == rootSt.Dev {
		return o, nil // a plain directory: not mounted
	}
	ours := false
	if o.hasImg {
		ours, err = loopBacks(dirSt.Dev, o.imgSt.Dev, o.imgSt.Ino)
	}
	if err != nil || !ours {
		o.close()
		return nil, api.Errorf(api.CodeConflict, "workspace %s: something other than its image is mounted at %s; refusing to touch it", id, id)
	}
	o.mounted = true
	return o, nil
}

// mountLocked mounts the image at the mount point unless it is mounted already.
func (m *Manager) mountLocked(root int, id string) error {
	o, err := openNames(root, id)
	if err != nil {
		return err
	}
	defer o.close()
	if !o.hasImg {
		return api.Errorf(api.CodeNotFound, "workspace %s not found", id)
	}
	if o.mounted {
		return nil
	}
	if o.dir < 0 {
		return fmt.Errorf("workspace %s: mount point vanished", id)
	}
	dev, loopFd, err := attachLoop(o.img, id+imgSuffix)
	if err != nil {
		return fmt.Errorf("workspace %s: %w", id, err)
	}
	// Closing loopFd after the mount leaves the mount as the device's only user;
	// if the mount failed, closing it detaches the device (autoclear).
	defer unix.Close(loopFd)
	target := "/proc/self/fd/" + strconv.Itoa(o.dir)
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOATIME)
	if err := unix.Mount(dev, target, "ext4", flags, "discard"); err != nil {
		return fmt.Errorf("workspace %s: mount %s: %w", id, dev, err)
	}
	return nil
}

// unmountLocked unmounts the workspace if it is mounted; it is the only unmount.
func (m *Manager) unmountLocked(o *opened) error {
	if !o.mounted {
		return nil
	}
	// The descriptor names the root of the mounted file system; MNT_DETACH so that a
	// host process with its cwd inside cannot keep the mount in the host's namespace.
	if err := unix.Unmount("/proc/self/fd/"+strconv.Itoa(o.dir), unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount: %w", err)
	}
	o.mounted = false
	return nil
}

// Release unmounts the workspace and keeps its image; the kernel detaches the loop
// device. Releasing a workspace that is not mounted (or does not exist) does nothing.
func (m *Manager) Release(id string) error {
	err := m.withRoot(id, func(root int) error { return m.releaseLocked(root, id) })
	if errors.Is(err, errNoRoot) {
		return nil
	}
	return err
}

func (m *Manager) releaseLocked(root int, id string) error {
	o, err := openNames(root, id)
	if err != nil {
		return err
	}
	defer o.close()
	if !o.mounted {
		return nil
	}
	if err := m.unmountLocked(o); err != nil {
		return fmt.Errorf("workspace %s: %w", id, err)
	}
	// The release time, which retention ages from, is the mtime of the now plain
	// mount point: nothing writes there (the image's mtime moves with the loop
	// device's last writes, which may come after the lazy unmount returns).
	now := unix.NsecToTimespec(m.now().UnixNano())
	if err := unix.UtimesNanoAt(root, id, []unix.Timespec{now, now}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("workspace %s: stamp release time: %w", id, err)
	}
	return nil
}

// Remove unmounts the workspace if mounted, detaches any loop device still backed by
// its image, and deletes the image and the mount point. Removing a workspace that
// does not exist does nothing. A planted symlink is never followed: it is refused
// (and left for an operator to look at), the other name is still removed.
func (m *Manager) Remove(id string) error {
	err := m.withRoot(id, func(root int) error { return m.removeLocked(root, id) })
	if errors.Is(err, errNoRoot) {
		return nil
	}
	return err
}

func (m *Manager) removeLocked(root int, id string) error {
	var errs []error
	o, err := openNames(root, id)
	if err == nil {
		if err := m.unmountLocked(o); err != nil {
			errs = append(errs, err)
		}
		// Our descriptor of the mount point pins the detached mount: close it first.
		o.close()
		if o.hasImg {
			if err := detachLoops(o.imgSt.Dev, o.imgSt.Ino); err != nil {
				errs = append(errs, err)
			}
		}
	} else {
		errs = append(errs, err)
	}
	// Whatever openNames said, each name is looked at again without following it.
	switch k, _, err := kind(root, id+imgSuffix); {
	case err != nil:
		errs = append(errs, err)
	case k == unix.S_IFREG:
		if err := unix.Unlinkat(root, id+imgSuffix, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete image: %w", err))
		}
	case k == unix.S_IFLNK:
		errs = append(errs, refused(id, id+imgSuffix, "a symlink"))
	case k != 0:
		errs = append(errs, refused(id, id+imgSuffix, "not a regular file"))
	}
	switch k, _, err := kind(root, id); {
	case err != nil:
		errs = append(errs, err)
	case k == unix.S_IFDIR:
		// Not mounted any more, so empty unless the host wrote there: never walked.
		if err := unix.Unlinkat(root, id, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete mount point: %w", err))
		}
	case k == unix.S_IFLNK:
		errs = append(errs, refused(id, id, "a symlink"))
	case k != 0:
		errs = append(errs, refused(id, id, "not a directory"))
	}
	if len(errs) == 0 {
		return nil
	}
	for _, e := range errs {
		if _, ok := api.AsError(e); ok {
			return e // the chosen, client-facing refusal
		}
	}
	return fmt.Errorf("workspace %s: remove: %w", id, errors.Join(errs...))
}

// Stat describes the workspace id; an unknown id is not_found.
func (m *Manager) Stat(id string) (info Info, err error) {
	err = m.withRoot(id, func(root int) error {
		info, err = m.statLocked(root, id)
		return err
	})
	if errors.Is(err, errNoRoot) {
		return Info{}, api.Errorf(api.CodeNotFound, "workspace %s not found", id)
	}
	return info, err
}

func (m *Manager) statLocked(root int, id string) (Info, error) {
	o, err := openNames(root, id)
	if err != nil {
		return Info{}, err
	}
	defer o.close()
	if !o.hasImg {
		return Info{}, api.Errorf(api.CodeNotFound, "workspace %s not found", id)
	}
	info := Info{
		ID:         id,
		Mounted:    o.mounted,
		QuotaBytes: o.imgSt.Size,
		DiskBytes:  o.imgSt.Blocks * 512,
	}
	if !o.mounted {
		info.Released = time.Unix(o.imgSt.Mtim.Unix())
		var st unix.Stat_t
		if o.dir >= 0 && unix.Fstat(o.dir, &st) == nil {
			info.Released = time.Unix(st.Mtim.Unix())
		}
		info.Age = m.now().Sub(info.Released)
	} else {
		var fs unix.Statfs_t
		if err := unix.Fstatfs(o.dir, &fs); err != nil {
			return Info{}, fmt.Errorf("workspace %s: statfs: %w", id, err)
		}
		info.TotalBytes = int64(fs.Blocks) * fs.Bsize
		info.UsedBytes = int64(fs.Blocks-fs.Bfree) * fs.Bsize
	}
	return info, nil
}

// Usage returns the workspace's used and total bytes, for a sandbox's info: the
// file system's statfs figures while mounted; for a kept workspace that is not
// mounted, the image's allocated bytes on the host (file data plus ext4 metadata, so
// a little above what is stored) and the quota.
func (m *Manager) Usage(id string) (used, total int64, err error) {
	info, err := m.Stat(id)
	if err != nil {
		return 0, 0, err
	}
	if info.Mounted {
		return info.UsedBytes, info.TotalBytes, nil
	}
	return info.DiskBytes, info.QuotaBytes, nil
}

// List describes every workspace under the root (mounted or kept), in name order.
// Names that are not a valid id plus ".img", and planted symlinks, are skipped.
func (m *Manager) List() ([]Info, error) {
	if err := m.available(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(m.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	var out []Info
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), imgSuffix)
		if !ok || CheckID(id) != nil || !e.Type().IsRegular() {
			continue
		}
		info, err := m.Stat(id)
		if isNotFound(err) {
			continue // removed meanwhile
		}
		if _, refused := api.AsError(err); refused {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

func isNotFound(err error) bool {
	e, ok := api.AsError(err)
	return ok && e.Code == api.CodeNotFound
}
