package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/api"
)

// SpawnOptions are what a server-side caller adds to a spawn beyond the wire
// request; a client of POST /containers/spawn can set none of them.
type SpawnOptions struct {
	// Workspace is the id ("clawbox-<uuid>") of a kept workspace to mount at
	// /workspace: opened when it exists, created (containers.max_workspace_mb)
	// otherwise. The sandbox's end releases it and never removes it: the next
	// sandbox given the same id sees the same files (agents). "" for none beyond
	// what the request asks.
	Workspace string
}

// Pauser is implemented by backends that can freeze a container's processes
// and thaw them (Docker's pause and unpause).
type Pauser interface {
	Pause(ctx context.Context, id string) error
	Unpause(ctx context.Context, id string) error
}

// pausedWait is how long a paused sandbox's monitor sleeps before it looks
// again: a paused sandbox has no deadline.
const pausedWait = 24 * time.Hour

// workspaceID returns the id of the sandbox's workspace.
func (r *Record) workspaceID() string {
	if r.Workspace != "" {
		return r.Workspace
	}
	return r.ID
}

// setWorkspaceID is setWorkspace for a workspace of another id (a kept one).
func (r *hostResources) setWorkspaceID(ws Workspaces, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ws, r.wsID = ws, id
}

// touch records activity at t.
func (l *live) touch(t time.Time) {
	n := t.UnixNano()
	for {
		old := l.activity.Load()
		if old >= n || l.activity.CompareAndSwap(old, n) {
			return
		}
	}
}

// checkNotPaused returns 409 conflict while the sandbox is paused.
func (l *live) checkNotPaused() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.rec.PausedAt.IsZero() {
		return api.Errorf(api.CodeConflict, "sandbox %q is paused: resume it first", l.id)
	}
	return nil
}

// keptWorkspace opens the kept workspace id, creating it when it does not exist.
func (m *Manager) keptWorkspace(ctx context.Context, id string) (string, error) {
	if m.workspaces == nil {
		return "", api.Errorf(api.CodeUnavailable, "workspaces are not available on this server")
	}
	dir, err := m.workspaces.Open(ctx, id)
	if err == nil {
		return dir, nil
	}
	if ae, ok := api.AsError(err); !(ok && ae.Code == api.CodeNotFound) && !errors.Is(err, errdefs.ErrNotFound) {
		return "", err
	}
	uid, gid := userIDs(m.cfg.User)
	return m.workspaces.Create(ctx, id, m.cfg.MaxWorkspaceMB<<20, uid, gid)
}

// RemoveKeptWorkspace deletes the kept workspace id (see SpawnOptions). The
// caller makes sure no running sandbox mounts it. Idempotent.
func (m *Manager) RemoveKeptWorkspace(id string) error {
	if m.workspaces == nil {
		return nil
	}
	return m.workspaces.Remove(id)
}

// deadlineIn is how long the monitor's deadline timer waits for rec.
func (m *Manager) deadlineIn(rec *Record) time.Duration {
	if !rec.PausedAt.IsZero() {
		return pausedWait
	}
	return rec.Deadline.Sub(m.clock.Now())
}

// LastActivity returns when sandbox id last had an exec, a file call or a door
// request, or now while an exec runs; ok is false unless it is live in this
// process (creating or running). A sandbox's activity starts at its spawn (or
// its adoption) and at its resume.
func (m *Manager) LastActivity(id string) (t time.Time, ok bool) {
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	if l == nil {
		return time.Time{}, false
	}
	if len(l.execs) > 0 {
		return m.clock.Now(), true
	}
	return time.Unix(0, l.activity.Load()).UTC(), true
}

// running returns sandbox id's live side if it is running and not finishing:
// 404 for an unknown id, 409 otherwise, its message ending in suffix (such as
// ": it cannot be paused").
func (m *Manager) running(ctx context.Context, id, suffix string) (*live, error) {
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	if l == nil {
		rec, err := m.storedLogs(ctx, id)
		if err != nil {
			return nil, err
		}
		return nil, api.Errorf(api.CodeConflict, "sandbox %q is %s, not running%s", id, rec.Status, suffix)
	}
	l.mu.Lock()
	st, finishing := l.rec.Status, l.finishing
	l.mu.Unlock()
	if finishing || st != StatusRunning {
		if finishing {
			st = "ending"
		}
		return nil, api.Errorf(api.CodeConflict, "sandbox %q is %s, not running%s", id, st, suffix)
	}
	return l, nil
}

// Pause freezes a running sandbox's processes (the backend's pause) and stops
// its deadline clock; exec and files answer 409 until Resume. An unknown id is
// 404; a sandbox that is not running, or already paused, is 409 conflict.
func (m *Manager) Pause(ctx context.Context, id string) (*Record, error) {
	pb, ok := m.backend.(Pauser)
	if !ok {
		return nil, api.Errorf(api.CodeUnavailable, "this container backend cannot pause sandboxes")
	}
	l, err := m.running(ctx, id, ": it cannot be paused")
	if err != nil {
		return nil, err
	}
	l.pauseMu.Lock()
	defer l.pauseMu.Unlock()
	l.mu.Lock()
	if l.finishing || !l.rec.PausedAt.IsZero() {
		l.mu.Unlock()
		return nil, api.Errorf(api.CodeConflict, "sandbox %q is already paused or ending", id)
	}
	rec := l.rec.clone()
	l.mu.Unlock()
	if err := pb.Pause(ctx, rec.ContainerID); err != nil {
		return nil, m.pauseError(id, "pause", err)
	}
	rec.PausedAt = m.clock.Now().UTC()
	if err := m.store.UpdateSandbox(ctx, rec, StatusRunning); err != nil {
		if uerr := pb.Unpause(context.WithoutCancel(ctx), rec.ContainerID); uerr != nil {
			m.log.Error("sandbox: undo pause", "sandbox", id, "err", uerr)
		}
		return nil, fmt.Errorf("sandbox %s: record pause: %w", id, err)
	}
	l.mu.Lock()
	l.rec.PausedAt = rec.PausedAt
	if l.timer != nil {
		l.timer.Stop()
		l.timer = m.clock.NewTimer(pausedWait)
	}
	l.mu.Unlock()
	m.rearm(l)
	m.event(rec, "paused", "deadline clock stopped with "+rec.Deadline.Sub(rec.PausedAt).Round(time.Millisecond).String()+" left")
	m.log.Info("sandbox paused", "sandbox", id)
	return rec, nil
}

// Resume thaws a paused sandbox and restarts its deadline clock where Pause
// stopped it (the deadline moves by the time spent paused). An unknown id is
// 404; a sandbox that is not paused is 409 conflict.
func (m *Manager) Resume(ctx context.Context, id string) (*Record, error) {
	pb, ok := m.backend.(Pauser)
	if !ok {
		return nil, api.Errorf(api.CodeUnavailable, "this container backend cannot pause sandboxes")
	}
	l, err := m.running(ctx, id, ": it cannot be resumed")
	if err != nil {
		return nil, err
	}
	l.pauseMu.Lock()
	defer l.pauseMu.Unlock()
	l.mu.Lock()
	if l.finishing || l.rec.PausedAt.IsZero() {
		l.mu.Unlock()
		return nil, api.Errorf(api.CodeConflict, "sandbox %q is not paused", id)
	}
	rec := l.rec.clone()
	l.mu.Unlock()
	if err := pb.Unpause(ctx, rec.ContainerID); err != nil {
		return nil, m.pauseError(id, "resume", err)
	}
	now := m.clock.Now().UTC()
	rec.Deadline = rec.Deadline.Add(now.Sub(rec.PausedAt)).UTC()
	rec.PausedAt = time.Time{}
	if err := m.store.UpdateSandbox(ctx, rec, StatusRunning); err != nil {
		if perr := pb.Pause(context.WithoutCancel(ctx), rec.ContainerID); perr != nil {
			m.log.Error("sandbox: undo resume", "sandbox", id, "err", perr)
		}
		return nil, fmt.Errorf("sandbox %s: record resume: %w", id, err)
	}
	l.mu.Lock()
	l.rec.PausedAt, l.rec.Deadline = time.Time{}, rec.Deadline
	if l.timer != nil {
		l.timer.Stop()
		l.timer = m.clock.NewTimer(rec.Deadline.Sub(now))
	}
	l.mu.Unlock()
	l.touch(now)
	m.rearm(l)
	m.event(rec, "resumed", "deadline "+rec.Deadline.Format(time.RFC3339Nano))
	m.log.Info("sandbox resumed", "sandbox", id, "deadline", rec.Deadline)
	return rec, nil
}

func (m *Manager) rearm(l *live) {
	select {
	case l.rearm <- struct{}{}:
	default:
	}
}

func (m *Manager) pauseError(id, op string, err error) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return api.Errorf(api.CodeConflict, "sandbox %q: its container is gone", id)
	}
	if errors.Is(err, errdefs.ErrConflict) || errors.Is(err, errdefs.ErrFailedPrecondition) {
		return api.Errorf(api.CodeConflict, "sandbox %q cannot %s now: %s", id, op, "the engine refused it in its current state")
	}
	m.log.Error("sandbox: "+op, "sandbox", id, "err", err)
	return fmt.Errorf("sandbox %s: %s: %w", id, op, err)
}

// unpauseToStop thaws a paused container before it is stopped, so that the stop
// signal is delivered and the grace applies. Errors are logged: the stop that
// follows still kills it.
func (m *Manager) unpauseToStop(ctx context.Context, rec *Record) {
	if rec.PausedAt.IsZero() {
		return
	}
	if pb, ok := m.backend.(Pauser); ok {
		if err := pb.Unpause(ctx, rec.ContainerID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			m.log.Warn("sandbox: unpause before stop", "sandbox", rec.ID, "err", err)
		}
	}
}

// Check validates a spawn request against the server's policy exactly as Spawn
// does (policy, image, env, labels, credentials, network, resources), without
// spawning anything.
func (m *Manager) Check(req api.ContainerSpawnRequest) error {
	_, err := m.validate(&req)
	return err
}
