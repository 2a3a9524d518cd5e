package sandbox

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
)

// hostResources is the one owner of a live sandbox's host-side resources: its
// socket directory (with the token files and the CA certificate), the CA key
// file beside it, its egress door and its supervisor link. Every path that ends a sandbox's life in this process (a failed spawn,
// finish after an exit, a kill, a deadline or a loss, an adoption that fails)
// calls release; shutdown without kill_on_shutdown calls detach, which closes
// what serves in this process but keeps the directory that the next process
// adopts. Both are idempotent and safe for concurrent use; each resource is
// closed at most once, whichever is called first and however often.
type hostResources struct {
	id  string
	log *slog.Logger

	mu       sync.Mutex // guards every field below
	dir      string     // "" for container_direct, or once removed
	door     io.Closer  // nil when none or closed
	sup      io.Closer  // the supervisor link; nil when none or closed
	ws       Workspaces // set when the sandbox has a workspace; released (kept) once
	wsID     string     // the workspace's id when it is not the sandbox's own
	released bool
}

func newHostResources(id, dir string, log *slog.Logger) *hostResources {
	return &hostResources{id: id, dir: dir, log: log}
}

// setDoor hands the door to r. After release or detach the door is closed at
// once (the sandbox is already gone) and false is returned.
func (r *hostResources) setDoor(door io.Closer) bool {
	return r.set(&r.door, door, "door")
}

// setSupervisor hands the supervisor link to r, like setDoor.
func (r *hostResources) setSupervisor(sup io.Closer) bool {
	return r.set(&r.sup, sup, "supervisor link")
}

func (r *hostResources) set(slot *io.Closer, c io.Closer, what string) bool {
	r.mu.Lock()
	if !r.released {
		*slot = c
		r.mu.Unlock()
		return true
	}
	r.mu.Unlock()
	r.closeOne(c, what)
	return false
}

// supervisorLink returns the supervisor link, nil when there is none (or it is
// closed).
func (r *hostResources) supervisorLink() *supervisorLink {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, _ := r.sup.(*supervisorLink)
	return k
}

// setWorkspace records that the sandbox has a workspace in ws: release
// unmounts it (keeping its content), detach leaves it mounted for adoption.
func (r *hostResources) setWorkspace(ws Workspaces) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ws = ws
}

// socketDir returns the directory, "" when there is none (or it is removed).
func (r *hostResources) socketDir() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dir
}

// release closes the door and the supervisor link and removes the socket
// directory and the CA key. Idempotent.
func (r *hostResources) release() {
	door, sup, dir := r.take(true)
	r.closeOne(sup, "supervisor link")
	r.closeOne(door, "door")
	r.mu.Lock()
	ws, wsID := r.ws, r.wsID
	r.ws = nil
	r.mu.Unlock()
	if ws != nil {
		key := r.id
		if wsID != "" {
			key = wsID
		}
		if err := ws.Release(key); err != nil {
			r.log.Error("sandbox: release workspace", "sandbox", r.id, "err", err)
		}
	}
	if dir != "" {
		if err := removeCAKey(dir); err != nil {
			r.log.Error("sandbox: remove CA key", "sandbox", r.id, "err", err)
		}
		if err := removeSocketDir(dir); err != nil {
			r.log.Error("sandbox: remove socket dir", "sandbox", r.id, "err", err)
		}
	}
}

// detach closes the door and the supervisor link but keeps the socket
// directory, its token files, the CA key and the running container for the
// next process to adopt. Idempotent; a later release still removes the directory.
func (r *hostResources) detach() {
	door, sup, _ := r.take(false)
	r.closeOne(sup, "supervisor link")
	r.closeOne(door, "door")
}

// take empties the closers (and, for a release, the directory) under the lock,
// so each is closed exactly once.
func (r *hostResources) take(release bool) (door, sup io.Closer, dir string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	door, sup = r.door, r.sup
	r.door, r.sup = nil, nil
	if release {
		dir, r.dir = r.dir, ""
		r.released = true
	}
	return door, sup, dir
}

func (r *hostResources) closeOne(c io.Closer, what string) {
	if c == nil {
		return
	}
	if err := c.Close(); err != nil {
		r.log.Error("sandbox: close "+what, "sandbox", r.id, "err", err)
	}
}

// removeSocketDir deletes a sandbox's socket directory; a missing one is fine.
func removeSocketDir(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
