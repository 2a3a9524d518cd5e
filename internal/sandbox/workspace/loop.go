package workspace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// loopMajor is the block major of loop devices (include/uapi/linux/major.h).
const loopMajor = 7

// attachLoop binds the image open at imgFd to a free loop device with
// LO_FLAGS_AUTOCLEAR and returns the device's path and an open descriptor of it. The
// kernel detaches the device when its last descriptor or mount goes, so the caller
// only closes the descriptor (after mounting, or on failure).
func attachLoop(imgFd int, name string) (path string, fd int, err error) {
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", -1, fmt.Errorf("open /dev/loop-control: %w", err)
	}
	defer unix.Close(ctl)
	// Another process (or goroutine) may take the same free device between
	// GET_FREE and CONFIGURE: the kernel answers EBUSY and we ask again.
	for range 64 {
		n, err := unix.IoctlRetInt(ctl, unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", -1, fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		path = fmt.Sprintf("/dev/loop%d", n)
		fd, err = unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", -1, fmt.Errorf("open %s: %w", path, err)
		}
		cfg := unix.LoopConfig{Fd: uint32(imgFd)}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], name)
		err = unix.IoctlLoopConfigure(fd, &cfg)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) {
			// Kernels before 5.8 have no LOOP_CONFIGURE.
			err = legacyAttach(fd, imgFd, &cfg.Info)
		}
		if err == nil {
			return path, fd, nil
		}
		unix.Close(fd)
		if !errors.Is(err, unix.EBUSY) {
			return "", -1, fmt.Errorf("attach %s to %s: %w", name, path, err)
		}
	}
	return "", -1, fmt.Errorf("attach %s: no free loop device after 64 tries", name)
}

// legacyAttach is LOOP_SET_FD then LOOP_SET_STATUS64 (for the autoclear flag); if
// the second fails, the device is detached again.
func legacyAttach(fd, imgFd int, info *unix.LoopInfo64) error {
	if err := unix.IoctlSetInt(fd, unix.LOOP_SET_FD, imgFd); err != nil {
		return err
	}
	if err := unix.IoctlLoopSetStatus64(fd, info); err != nil {
		_ = unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
		return err
	}
	return nil
}

// loopBacks reports whether the block device dev is a loop device whose backing file
// is the inode (fileDev, ino).
func loopBacks(dev uint64, fileDev, ino uint64) (bool, error) {
	if unix.Major(dev) != loopMajor {
		return false, nil
	}
	name, err := loopName(dev)
	if err != nil {
		return false, err
	}
	info, err := loopStatus("/dev/" + name)
	if err != nil || info == nil {
		return false, err
	}
	return info.Device == fileDev && info.Inode == ino, nil
}

// loopName is the kernel name ("loop3") of the loop block device dev.
func loopName(dev uint64) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", unix.Major(dev), unix.Minor(dev)))
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && strings.HasPrefix(v, "loop") && !strings.ContainsAny(v, "/.") {
			return v, nil
		}
	}
	return "", fmt.Errorf("block device %d:%d has no loop DEVNAME", unix.Major(dev), unix.Minor(dev))
}

// loopStatus returns the status of the loop device at path, or nil when it is not
// bound to a file.
func loopStatus(path string) (*unix.LoopInfo64, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	info, err := unix.IoctlLoopGetStatus64(fd)
	if errors.Is(err, unix.ENXIO) {
		return nil, nil
	}
	return info, err
}

// detachLoops detaches every loop device backed by the inode (fileDev, ino). A device
// still in use (a container that holds the file system) cannot be detached now; the
// kernel then marks it autoclear and detaches it when its last user goes.
func detachLoops(fileDev, ino uint64) error {
	devs, err := filepath.Glob("/sys/block/loop*")
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range devs {
		path := "/dev/" + filepath.Base(d)
		info, err := loopStatus(path)
		if err != nil || info == nil || info.Device != fileDev || info.Inode != ino {
			continue // unbound, gone, or not ours
		}
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0); err != nil && !errors.Is(err, unix.ENXIO) {
			errs = append(errs, fmt.Errorf("detach %s: %w", path, err))
		}
		unix.Close(fd)
	}
	return errors.Join(errs...)
}
