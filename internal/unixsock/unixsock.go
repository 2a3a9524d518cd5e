// Package unixsock listens on a Unix socket that is private (mode 0600) from its
// first moment, replaces only a stale socket file, and removes its file once on Close.
package unixsock

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// unixListener removes its socket file on Close, once: a second Close must not
// remove a socket that another server has since bound at the same path.
type unixListener struct {
	*net.UnixListener
	path string
	once sync.Once
	err  error
}

func (l *unixListener) Close() error {
	l.once.Do(func() { l.err = l.close() })
	return l.err
}

func (l *unixListener) close() error {
	err := l.UnixListener.Close()
	if rmErr := os.Remove(l.path); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
		err = rmErr
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Listen listens on a Unix socket at path with mode 0600 from the first moment:
// the socket is bound inside a private temporary directory, restricted, then renamed
// into place. A stale socket file (nobody listening) is replaced; a live socket or
// any other kind of file at path is an error and is left alone.
func Listen(path string) (net.Listener, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket: not replacing it", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by a running process (another clawbox?)", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	dir := filepath.Dir(path)
	tmp, err := os.MkdirTemp(dir, ".clawbox-sock-*")
	if err != nil {
		return nil, fmt.Errorf("cannot create the socket in %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	tmpSock := filepath.Join(tmp, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmpSock, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmpSock, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmpSock, path); err != nil {
		ln.Close()
		return nil, err
	}
	return &unixListener{UnixListener: ln, path: path}, nil
}
