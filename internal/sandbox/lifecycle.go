package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/api"
)

// finishTimeout bounds the whole of one sandbox's teardown (beyond the stop grace).
const finishTimeout = 2 * time.Minute

// monitor waits for the sandbox's container to stop or its deadline to pass, then
// finishes it. It returns without finishing when ctx ends (shutdown or another path
// already finishing the sandbox).
func (m *Manager) monitor(ctx context.Context, l *live) {
	defer m.wg.Done()
	rec := l.snapshot()
	waitCh := make(chan Exit, 1)
	lostCh := make(chan struct{}, 1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			exit, err := m.backend.Wait(ctx, rec.ContainerID)
			if err == nil {
				waitCh <- exit
				return
			}
			if ctx.Err() != nil {
				return
			}
			// The wait failed: look at the container before deciding.
			c, ierr := m.backend.Inspect(ctx, rec.ContainerID)
			switch {
			case errors.Is(ierr, errdefs.ErrNotFound):
				lostCh <- struct{}{}
				return
			case ierr == nil && !c.Running:
				waitCh <- c.Exit
				return
			}
			m.log.Warn("sandbox: wait failed, retrying", "sandbox", rec.ID, "err", err)
			t := m.clock.NewTimer(time.Second)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
		}
	}()
	// The deadline timer lives in l so that Extend can replace it; the monitor
	// re-reads it whenever Extend says so.
	l.mu.Lock()
	l.timer = m.clock.NewTimer(m.deadlineIn(l.rec))
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.timer.Stop()
		l.mu.Unlock()
	}()
	for {
		l.mu.Lock()
		timerC := l.timer.C()
		l.mu.Unlock()
		select {
		case exit := <-waitCh:
			m.finish(ctx, l, statusOf(exit), &exit)
			return
		case <-lostCh:
			m.finish(ctx, l, StatusLost, nil)
			return
		case <-l.rearm:
			continue
		case <-timerC:
			l.mu.Lock()
			early := !l.rec.PausedAt.IsZero() || m.clock.Now().Before(l.rec.Deadline)
			l.mu.Unlock()
			if early {
				continue // a stale timer: Extend moved the deadline meanwhile
			}
			m.finish(ctx, l, StatusTimedOut, nil)
			return
		case <-ctx.Done():
			return
		}
	}
}

func statusOf(e Exit) Status {
	if e.Code == 0 && !e.OOMKilled {
		return StatusCompleted
	}
	return StatusFailed
}

// finish takes a running sandbox to its final status exactly once, whichever path
// (monitor, Kill, reaper, shutdown) gets here first; later callers wait for the first
// to complete. exit is the known exit (nil: stop the container and inspect it). It:
// revokes the token, stops the container (for timed_out and killed), collects the
// capped logs, removes the container, closes the door, deletes the socket dir and
// persists the final record.
func (m *Manager) finish(ctx context.Context, l *live, to Status, exit *Exit) {
	l.mu.Lock()
	if l.finishing {
		l.mu.Unlock()
		select {
		case <-l.done:
		case <-ctx.Done():
		}
		return
	}
	l.finishing = true
	rec := l.rec.clone()
	l.mu.Unlock()
	l.revoked.Store(true)
	if l.cancel != nil {
		l.cancel() // the monitor has nothing left to wait for
	}
	defer close(l.done)

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout+m.cfg.StopGrace)
	defer cancel()
	log := m.log.With("sandbox", rec.ID)

	if to != StatusLost {
		if exit == nil {
			m.unpauseToStop(ctx, rec)
			if err := m.backend.Stop(ctx, rec.ContainerID, m.cfg.StopGrace); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				log.Error("sandbox: stop", "err", err)
			}
			if c, err := m.backend.Inspect(ctx, rec.ContainerID); err == nil {
				e := c.Exit
				exit = &e
			} else if errors.Is(err, errdefs.ErrNotFound) {
				to = StatusLost
			} else {
				log.Error("sandbox: inspect", "err", err)
			}
		}
		if to != StatusLost {
			// Redacted before they are stored: state.db never holds a secret.
			logs, err := m.collectLogs(ctx, rec)
			if err != nil {
				log.Error("sandbox: collect logs", "err", err)
			}
			rec.Logs = logs
			if err := m.backend.Remove(ctx, rec.ContainerID); err != nil {
				log.Error("sandbox: remove container (the reaper will retry)", "err", err)
			}
		}
	}
	l.res.release()

	from := rec.Status
	if exit != nil && to != StatusLost {
		code := exit.Code
		rec.ExitCode = &code
		rec.OOMKilled = exit.OOMKilled
	}
	now := m.clock.Now().UTC()
	rec.FinishedAt = now
	rec.ExpiresAt = now.Add(m.cfg.Retention)
	rec.PausedAt = time.Time{}
	if err := rec.transition(to); err != nil {
		log.Error("sandbox: finish", "err", err)
	} else if err := m.store.UpdateSandbox(ctx, rec, from); err != nil {
		log.Error("sandbox: record final status", "status", to, "err", err)
	}
	m.mu.Lock()
	delete(m.live, rec.ID)
	m.mu.Unlock()
	l.mu.Lock()
	l.rec = rec.clone()
	l.mu.Unlock()

	m.metrics.total.WithLabelValues(string(to)).Inc()
	m.event(rec, string(to), "")
	m.refreshMetrics(ctx)
	m.pokePools() // room under max_containers: a short pool may refill
	log.Info("sandbox finished", "status", to)
}

// reconcile brings the store in line with the engine at start: running sandboxes
// whose container still runs are adopted, those that exited are finished with their
// exit, vanished ones become lost, interrupted spawns become lost, and this
// instance's labelled containers without a live record are removed.
func (m *Manager) reconcile(ctx context.Context) error {
	creating, err := m.store.ListSandboxes(ctx, StatusCreating)
	if err != nil {
		return err
	}
	for _, rec := range creating {
		l := m.newLive(rec, filepath.Join(m.cfg.ProxiesDir, rec.ID))
		l.finishing = true // nothing to stop: the spawn never completed
		m.markLost(ctx, l)
	}
	running, err := m.store.ListSandboxes(ctx, StatusRunning)
	if err != nil {
		return err
	}
	for _, rec := range running {
		if err := m.adopt(ctx, rec); err != nil {
			return fmt.Errorf("sandbox %s: %w", rec.ID, err)
		}
	}
	_, err = m.removeOrphans(ctx)
	m.refreshMetrics(ctx)
	return err
}

// markLost records a sandbox that never became (or no longer is) a container.
func (m *Manager) markLost(ctx context.Context, l *live) {
	rec := l.rec.clone()
	from := rec.Status
	l.res.release()
	now := m.clock.Now().UTC()
	rec.FinishedAt, rec.ExpiresAt = now, now.Add(m.cfg.Retention)
	if err := rec.transition(StatusLost); err != nil {
		m.log.Error("sandbox: mark lost", "err", err)
		return
	}
	if err := m.store.UpdateSandbox(ctx, rec, from); err != nil {
		m.log.Error("sandbox: mark lost", "sandbox", rec.ID, "err", err)
		return
	}
	m.metrics.total.WithLabelValues(string(StatusLost)).Inc()
	m.event(rec, string(StatusLost), "")
}

// adopt takes over a sandbox recorded running by an earlier process.
func (m *Manager) adopt(ctx context.Context, rec *Record) error {
	dir := filepath.Join(m.cfg.ProxiesDir, rec.ID)
	l := m.newLive(rec, dir)
	c, err := m.backend.Inspect(ctx, rec.ContainerID)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		l.finishing = true
		m.markLost(ctx, l)
		return nil
	case err != nil:
		return err
	}
	mctx, cancel := context.WithCancel(m.ctx)
	l.cancel = cancel
	m.mu.Lock()
	m.live[rec.ID] = l
	m.mu.Unlock()
	if !c.Running {
		exit := c.Exit
		m.finish(ctx, l, statusOf(exit), &exit)
		return nil
	}
	if rec.Policy == PolicyContainer {
		door, err := m.reopenDoor(l, rec)
		if err != nil {
			// Without its door the workload cannot work: kill it rather than leave
			// it running unreachable.
			m.log.Error("sandbox: reopen door at adoption", "sandbox", rec.ID, "err", err)
			m.finish(ctx, l, StatusKilled, nil)
			return nil
		}
		l.res.setDoor(door)
	}
	// A workspace that the sandbox had is still mounted (shutdown never
	// releases one): adopt it, so that the sandbox's end releases it.
	if m.workspaces != nil {
		if _, err := m.workspaces.Open(ctx, rec.workspaceID()); err == nil {
			l.res.setWorkspaceID(m.workspaces, rec.Workspace)
		} else if ae, ok := api.AsError(err); !ok || ae.Code != api.CodeNotFound {
			m.log.Error("sandbox: reopen workspace at adoption", "sandbox", rec.ID, "err", err)
		}
	}
	// The supervisor redials the same socket with the same token: listen again.
	// Without it the sandbox still runs; exec and files answer 503.
	if tok, err := readSupervisorToken(dir); err != nil {
		m.log.Warn("sandbox: no supervisor token at adoption: exec and files are unavailable", "sandbox", rec.ID, "err", err)
	} else if link, err := listenSupervisor(rec.ID, dir, tok, m.log); err != nil {
		m.log.Error("sandbox: reopen supervisor socket at adoption", "sandbox", rec.ID, "err", err)
	} else {
		l.res.setSupervisor(link)
	}
	m.wg.Add(1)
	go m.monitor(mctx, l)
	m.event(rec, "adopted", "")
	m.log.Info("sandbox adopted", "sandbox", rec.ID)
	return nil
}

func (m *Manager) reopenDoor(l *live, rec *Record) (door interface{ Close() error }, err error) {
	if m.doors == nil {
		return nil, errors.New("no door opener configured")
	}
	if _, err := os.Stat(l.res.socketDir()); err != nil {
		return nil, fmt.Errorf("socket dir: %w", err)
	}
	spec := m.doorSpec(l, rec)
	// The sandbox trusts the CA made at its spawn: keep signing with it. Without
	// it the door still serves, refusing the CONNECTs it would intercept.
	if ca, err := loadCA(l.res.socketDir()); err != nil {
		m.log.Warn("sandbox: no usable CA at adoption: intercepted CONNECTs will be refused", "sandbox", rec.ID, "err", err)
	} else {
		spec.CA = ca
	}
	if err := os.Remove(spec.SocketPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("stale socket: %w", err)
	}
	return m.doors.OpenDoor(spec)
}

// removeOrphans removes this instance's containers that have no live record.
func (m *Manager) removeOrphans(ctx context.Context) (int, error) {
	cs, err := m.backend.List(ctx, m.cfg.InstanceID)
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	n := 0
	for _, c := range cs {
		if c.Labels[LabelInstance] != m.cfg.InstanceID {
			continue // never another instance's container
		}
		id := c.Labels[LabelContainerID]
		m.mu.Lock()
		_, isLive := m.live[id]
		m.mu.Unlock()
		if isLive || m.isPooled(id) {
			continue
		}
		rec, err := m.store.GetSandbox(ctx, id)
		switch {
		case err == nil && rec.Status.Active():
			continue // a spawn or adoption in flight owns it
		case err != nil && !errors.Is(err, errdefs.ErrNotFound):
			return n, err
		}
		noRecord := err != nil
		if err := m.backend.Remove(ctx, c.ID); err != nil {
			m.log.Error("sandbox: remove orphan container", "container", c.ID, "err", err)
			continue
		}
		n++
		// A pooled sandbox of an earlier process (it has no record) leaves its
		// socket dir: remove it with the container. The id comes from a label:
		// only a well-formed one names a path.
		if noRecord && validSandboxID(id) {
			dir := filepath.Join(m.cfg.ProxiesDir, id)
			if err := removeSocketDir(dir); err != nil {
				m.log.Error("sandbox: remove orphan socket dir", "sandbox", id, "err", err)
			}
			if err := removeCAKey(dir); err != nil {
				m.log.Error("sandbox: remove orphan CA key", "sandbox", id, "err", err)
			}
		}
		m.log.Info("sandbox: removed orphan container", "sandbox", id, "container", c.ID)
		m.event(&Record{ID: id}, "reaped", "orphan container")
	}
	return n, nil
}

// Reap runs one reaper pass: it deletes expired final records and removes this
// instance's containers without a live record.
func (m *Manager) Reap(ctx context.Context) error {
	ids, err := m.store.DeleteExpiredSandboxes(ctx, m.clock.Now())
	if err != nil {
		return fmt.Errorf("delete expired sandboxes: %w", err)
	}
	for _, id := range ids {
		m.event(&Record{ID: id}, "reaped", "record expired")
		// A leftover socket dir (a failed teardown) goes too.
		if err := removeSocketDir(filepath.Join(m.cfg.ProxiesDir, id)); err != nil {
			m.log.Error("sandbox: remove socket dir", "sandbox", id, "err", err)
		}
		if err := removeCAKey(filepath.Join(m.cfg.ProxiesDir, id)); err != nil {
			m.log.Error("sandbox: remove CA key", "sandbox", id, "err", err)
		}
		// Retention ends a kept workspace with its record.
		if m.workspaces != nil {
			if err := m.workspaces.Remove(id); err != nil {
				m.log.Error("sandbox: remove expired workspace", "sandbox", id, "err", err)
			}
		}
	}
	if len(ids) > 0 {
		m.refreshMetrics(ctx)
	}
	_, err = m.removeOrphans(ctx)
	return err
}

func (m *Manager) reaper() {
	defer m.wg.Done()
	for {
		t := m.clock.NewTimer(m.cfg.ReaperInterval)
		select {
		case <-m.ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		if err := m.Reap(m.ctx); err != nil && m.ctx.Err() == nil {
			m.log.Error("sandbox reaper", "err", err)
		}
	}
}

// Shutdown stops the reaper and the monitors and waits for them (bounded by ctx).
// With kill_on_shutdown every running sandbox is killed first; otherwise running
// sandboxes keep running (their doors close, their tokens stay valid) and the next
// Start adopts them. It is idempotent.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.shutdownOnce.Do(func() { m.shutdownErr = m.shutdown(ctx) })
	return m.shutdownErr
}

func (m *Manager) shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	// Pooled sandboxes hold nobody's work: they never outlive the server.
	m.shutdownPools()
	m.mu.Lock()
	lives := make([]*live, 0, len(m.live))
	for _, l := range m.live {
		lives = append(lives, l)
	}
	m.mu.Unlock()
	if m.cfg.KillOnShutdown {
		var wg sync.WaitGroup
		for _, l := range lives {
			if l.snapshot().Status != StatusRunning {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.finish(ctx, l, StatusKilled, nil)
			}()
		}
		wg.Wait()
	}
	m.cancel()
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("sandbox shutdown: %w", ctx.Err())
	}
	if m.cfg.KillOnShutdown {
		// Spawns that were in flight when shutdown began.
		m.mu.Lock()
		late := make([]*live, 0, len(m.live))
		for _, l := range m.live {
			late = append(late, l)
		}
		m.mu.Unlock()
		for _, l := range late {
			if l.snapshot().Status == StatusRunning {
				m.finish(ctx, l, StatusKilled, nil)
			}
		}
	}
	// Detach what is still running: close the doors and supervisor links, keep
	// the socket dirs and containers for the next start to adopt.
	m.mu.Lock()
	rest := make([]*live, 0, len(m.live))
	for _, l := range m.live {
		rest = append(rest, l)
	}
	m.mu.Unlock()
	for _, l := range rest {
		l.res.detach()
	}
	return err
}
