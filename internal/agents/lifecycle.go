package agents

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/sandbox"
)

// saveLocked persists st as a's state (a.op held) and makes it current. The
// counters that move outside operations (activity, executions) keep their
// newest values.
func (m *Manager) saveLocked(ctx context.Context, a *agent, st *Agent) error {
	a.mu.Lock()
	if a.st.ExecutionCount > st.ExecutionCount {
		st.ExecutionCount = a.st.ExecutionCount
	}
	if a.st.LastActivity.After(st.LastActivity) {
		st.LastActivity = a.st.LastActivity
	}
	a.mu.Unlock()
	if err := m.store.UpdateAgent(context.WithoutCancel(ctx), st); err != nil {
		return fmt.Errorf("agent %s: record: %w", st.Config.AgentID, err)
	}
	a.mu.Lock()
	a.st = st.clone()
	a.mu.Unlock()
	return nil
}

// endWatchLocked stops a's watcher or restart timer, if any.
func (a *agent) endWatchLocked() {
	a.mu.Lock()
	stop := a.stop
	a.stop = nil
	a.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// startLocked spawns a's sandbox through the one spawn path (a.op held). On
// failure a is idle again (failed after a crash restart) with the reason, and
// the error is returned.
func (m *Manager) startLocked(ctx context.Context, a *agent, event string) error {
	sb, err := m.sandboxes()
	if err != nil {
		return err
	}
	a.endWatchLocked()
	st := a.snapshot()
	prev := st.Status
	st.Status, st.NextRestart = StatusStarting, time.Time{}
	if err := m.saveLocked(ctx, a, st.clone()); err != nil {
		return err
	}
	req := withMaxTimeout(spawnRequest(st.Config), sb.Config().MaxTimeout.Milliseconds())
	rec, err := sb.SpawnWith(ctx, req, sandbox.SpawnOptions{Workspace: st.WorkspaceID})
	if err != nil {
		st.Status, st.ContainerID = StatusIdle, ""
		if event == "agent_restarted" || prev == StatusFailed {
			st.Status = StatusFailed
		}
		st.Reason = "start failed: " + safeText(err)
		if serr := m.saveLocked(ctx, a, st); serr != nil {
			m.log.Error("agents: record failed start", "agent", st.Config.AgentID, "err", serr)
		}
		m.event(st, "agent_start_failed", st.Reason)
		return err
	}
	now := time.Now().UTC()
	st.Status, st.ContainerID, st.LastContainerID = StatusRunning, rec.ID, rec.ID
	st.StartedAt, st.LastActivity, st.Reason = now, now, ""
	if err := m.saveLocked(ctx, a, st); err != nil {
		if _, kerr := sb.Kill(context.WithoutCancel(ctx), rec.ID); kerr != nil {
			m.log.Error("agents: kill the sandbox of an unrecorded start", "agent", st.Config.AgentID, "err", kerr)
		}
		return err
	}
	m.watchLocked(a, sb, rec.ID)
	m.event(st, event, "")
	m.log.Info("agent started", "agent", st.Config.AgentID, "sandbox", rec.ID)
	return nil
}

// safeText is an error as a client may see it.
func safeText(err error) string {
	if ae, ok := api.AsError(err); ok {
		return ae.Code + ": " + ae.Message
	}
	return "internal error (see the server log)"
}

// watchLocked starts the watcher of a's sandbox cid: it handles the sandbox's
// end and the idle policy until a.stop or Close.
func (m *Manager) watchLocked(a *agent, sb Sandboxes, cid string) {
	ctx, cancel := context.WithCancel(m.ctx)
	a.mu.Lock()
	a.stop = cancel
	a.mu.Unlock()
	ended := make(chan *sandbox.Record, 1)
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		rec, err := sb.Wait(ctx, cid)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("agents: wait for sandbox", "sandbox", cid, "err", err)
				rec = &sandbox.Record{ID: cid, Status: sandbox.StatusLost}
			} else {
				return
			}
		}
		ended <- rec
	}()
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(m.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case rec := <-ended:
				a.op.Lock()
				if cur := a.snapshot(); !a.isGone() && cur.ContainerID == cid {
					m.endedLocked(m.ctx, a, rec, false)
				}
				a.op.Unlock()
				return
			case <-t.C:
				m.checkIdle(a, sb, cid)
			}
		}
	}()
}

func (a *agent) isGone() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gone
}

// checkIdle applies the idle policy to a running agent: no exec, file call or
// egress request for lifecycle.max_idle_ms stops (or pauses) it.
func (m *Manager) checkIdle(a *agent, sb Sandboxes, cid string) {
	st := a.snapshot()
	maxIdle := time.Duration(*st.Config.Lifecycle.MaxIdleMS) * time.Millisecond
	if st.Status != StatusRunning || st.ContainerID != cid {
		return
	}
	last, ok := sb.LastActivity(cid)
	if !ok {
		return
	}
	a.mu.Lock()
	if last.After(a.st.LastActivity) {
		a.st.LastActivity = last.UTC()
	}
	last = a.st.LastActivity
	a.mu.Unlock()
	if maxIdle <= 0 || time.Since(last) < maxIdle {
		return
	}
	if !a.op.TryLock() {
		return // an operation is in flight: look again at the next tick
	}
	defer a.op.Unlock()
	st = a.snapshot()
	if a.isGone() || st.Status != StatusRunning || st.ContainerID != cid {
		return
	}
	reason := fmt.Sprintf("idle for %s (lifecycle.max_idle_ms)", maxIdle)
	if st.Config.Lifecycle.IdleAction == api.AgentIdlePause {
		if err := m.pauseLocked(m.ctx, a, reason, "agent_idle_paused"); err != nil {
			m.log.Warn("agents: idle pause", "agent", st.Config.AgentID, "err", err)
		}
		return
	}
	if err := m.stopLocked(m.ctx, a, reason, "agent_idle_stopped"); err != nil {
		m.log.Warn("agents: idle stop", "agent", st.Config.AgentID, "err", err)
	}
}

// endedLocked handles the end of a's current sandbox, rec (a.op held): exit 0 or
// a kill leaves it idle, the deadline terminates it, a crash (non-zero exit, OOM
// kill, vanished container) restarts it per its policy or fails it. At the
// server's start (atLoad) a restart_on_crash agent whose sandbox was killed
// (containers.kill_on_shutdown) is started again too.
func (m *Manager) endedLocked(ctx context.Context, a *agent, rec *sandbox.Record, atLoad bool) {
	a.endWatchLocked()
	st := a.snapshot()
	lc := st.Config.Lifecycle
	end := describeEnd(rec)
	st.ContainerID = ""
	var event string
	switch rec.Status {
	case sandbox.StatusCompleted, sandbox.StatusKilled:
		if atLoad && lc.RestartOnCrash {
			st.Reason = end + " while the server was stopped"
			if err := m.saveLocked(ctx, a, st); err != nil {
				m.log.Error("agents: record end", "agent", st.Config.AgentID, "err", err)
			}
			if err := m.startLocked(ctx, a, "agent_restarted"); err != nil {
				m.log.Warn("agents: restart at start", "agent", st.Config.AgentID, "err", err)
			}
			return
		}
		st.Status, st.Reason, event = StatusIdle, end, "agent_stopped"
	case sandbox.StatusTimedOut:
		st.Status, st.Reason, event = StatusTerminated, "its lifetime ended (lifecycle.max_lifetime_ms or capabilities.resources.timeout_ms)", "agent_terminated"
	default: // failed, lost
		if lc.RestartOnCrash && st.Restarts < *lc.MaxRestarts {
			st.Restarts++
			delay := time.Duration(backoff(lc, st.Restarts)) * time.Millisecond
			st.Status = StatusStarting
			st.NextRestart = time.Now().Add(delay).UTC()
			st.Reason = fmt.Sprintf("%s: restart %d of %d in %s", end, st.Restarts, *lc.MaxRestarts, delay)
			if err := m.saveLocked(ctx, a, st); err != nil {
				m.log.Error("agents: record crash", "agent", st.Config.AgentID, "err", err)
			}
			m.event(st, "agent_crashed", st.Reason)
			m.scheduleLocked(a, st.NextRestart)
			return
		}
		st.Status, event = StatusFailed, "agent_failed"
		st.Reason = end
		if lc.RestartOnCrash {
			st.Reason = fmt.Sprintf("%s after %d restarts (lifecycle.max_restarts)", end, st.Restarts)
		}
	}
	if err := m.saveLocked(ctx, a, st); err != nil {
		m.log.Error("agents: record end", "agent", st.Config.AgentID, "err", err)
	}
	rec2 := *st
	rec2.ContainerID = rec.ID
	m.event(&rec2, event, st.Reason)
}

// scheduleLocked arms a's crash restart at at.
func (m *Manager) scheduleLocked(a *agent, at time.Time) {
	ctx, cancel := context.WithCancel(m.ctx)
	a.mu.Lock()
	a.stop = cancel
	a.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTimer(time.Until(at))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.op.Lock()
		defer a.op.Unlock()
		st := a.snapshot()
		if ctx.Err() != nil || a.isGone() || st.Status != StatusStarting || !st.NextRestart.Equal(at) {
			return
		}
		if err := m.startLocked(m.ctx, a, "agent_restarted"); err != nil {
			m.log.Warn("agents: crash restart", "agent", st.Config.AgentID, "err", err)
		}
	}()
}

// Stop stops a running, paused or restarting agent (status idle); any other
// status is 409.
func (m *Manager) Stop(ctx context.Context, id string) (api.AgentInfo, error) {
	a, _, err := m.beginIn(id, "only a running, paused or restarting agent can be stopped", StatusRunning, StatusPaused, StatusStarting)
	if err != nil {
		return api.AgentInfo{}, err
	}
	defer a.op.Unlock()
	if err := m.stopLocked(ctx, a, "stopped through the API", "agent_stopped"); err != nil {
		return api.AgentInfo{}, err
	}
	return m.info(a), nil
}

// stopLocked ends a's sandbox (if any) and leaves it idle.
func (m *Manager) stopLocked(ctx context.Context, a *agent, reason, event string) error {
	sb, err := m.sandboxes()
	if err != nil {
		return err
	}
	a.endWatchLocked()
	st := a.snapshot()
	prev, cid := st.Status, st.ContainerID
	if cid != "" {
		st.Status = StatusStopping
		if err := m.saveLocked(ctx, a, st.clone()); err != nil {
			return err
		}
		if _, err := sb.Kill(context.WithoutCancel(ctx), cid); err != nil && !isNotFound(err) {
			st.Status = prev
			if serr := m.saveLocked(ctx, a, st); serr != nil {
				m.log.Error("agents: record failed stop", "agent", st.Config.AgentID, "err", serr)
			}
			m.watchLocked(a, sb, cid)
			return err
		}
	}
	st.Status, st.ContainerID, st.NextRestart, st.Reason = StatusIdle, "", time.Time{}, reason
	st.LastActivity = time.Now().UTC()
	if err := m.saveLocked(ctx, a, st); err != nil {
		return err
	}
	rec := *st
	rec.ContainerID = cid
	m.event(&rec, event, reason)
	m.log.Info("agent stopped", "agent", st.Config.AgentID, "reason", reason)
	return nil
}

// Pause freezes a running agent's sandbox and stops its lifetime clock; any
// other status is 409.
func (m *Manager) Pause(ctx context.Context, id string) (api.AgentInfo, error) {
	a, err := m.begin(id)
	if err != nil {
		return api.AgentInfo{}, err
	}
	defer a.op.Unlock()
	if err := m.pauseLocked(ctx, a, "paused through the API", "agent_paused"); err != nil {
		return api.AgentInfo{}, err
	}
	return m.info(a), nil
}

func (m *Manager) pauseLocked(ctx context.Context, a *agent, reason, event string) error {
	st := a.snapshot()
	if st.Status != StatusRunning {
		return conflict(st.Config.AgentID, st.Status, "only a running agent can be paused")
	}
	sb, err := m.sandboxes()
	if err != nil {
		return err
	}
	if _, err := sb.Pause(ctx, st.ContainerID); err != nil {
		return err
	}
	st.Status, st.Reason = StatusPaused, reason
	if err := m.saveLocked(ctx, a, st); err != nil {
		return err
	}
	m.event(st, event, reason)
	return nil
}

// Resume thaws a paused agent; any other status is 409.
func (m *Manager) Resume(ctx context.Context, id string) (api.AgentInfo, error) {
	a, st, err := m.beginIn(id, "only a paused agent can be resumed", StatusPaused)
	if err != nil {
		return api.AgentInfo{}, err
	}
	defer a.op.Unlock()
	sb, err := m.sandboxes()
	if err != nil {
		return api.AgentInfo{}, err
	}
	if _, err := sb.Resume(ctx, st.ContainerID); err != nil {
		return api.AgentInfo{}, err
	}
	st.Status, st.Reason, st.LastActivity = StatusRunning, "", time.Now().UTC()
	if err := m.saveLocked(ctx, a, st); err != nil {
		return api.AgentInfo{}, err
	}
	m.event(st, "agent_resumed", "")
	return m.info(a), nil
}

// Remove deletes an agent, ending its sandbox if it has one; with workspace its
// workspace goes too (otherwise it is kept on disk).
func (m *Manager) Remove(ctx context.Context, id string, workspace bool) error {
	a, err := m.begin(id)
	if err != nil {
		return err
	}
	defer a.op.Unlock()
	st := a.snapshot()
	var sb Sandboxes
	if st.ContainerID != "" || workspace {
		if sb, err = m.sandboxes(); err != nil {
			return err
		}
	}
	a.endWatchLocked()
	if st.ContainerID != "" {
		if _, err := sb.Kill(context.WithoutCancel(ctx), st.ContainerID); err != nil && !isNotFound(err) {
			if st.Status == StatusRunning || st.Status == StatusPaused {
				m.watchLocked(a, sb, st.ContainerID)
			}
			return err
		}
	}
	if workspace {
		if err := sb.RemoveKeptWorkspace(st.WorkspaceID); err != nil {
			return fmt.Errorf("agent %s: remove workspace: %w", id, err)
		}
	}
	if err := m.store.DeleteAgent(context.WithoutCancel(ctx), id); err != nil {
		return fmt.Errorf("agent %s: delete: %w", id, err)
	}
	a.mu.Lock()
	a.gone = true
	a.mu.Unlock()
	m.mu.Lock()
	delete(m.agents, id)
	m.mu.Unlock()
	reason := "workspace kept"
	if workspace {
		reason = "workspace removed"
	}
	m.event(st, "agent_removed", reason)
	return nil
}

// Sandbox returns the sandbox that an exec or a file call through agent id
// goes to: 404 for an unknown agent, 409 unless it is running. It counts as the
// agent's activity (and, with exec, as one execution).
func (m *Manager) Sandbox(_ context.Context, id string, exec bool) (string, error) {
	a, err := m.lookup(id)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch st := a.st; st.Status {
	case StatusRunning:
		if exec {
			st.ExecutionCount++
		}
		st.LastActivity = time.Now().UTC()
		return st.ContainerID, nil
	case StatusPaused:
		return "", conflict(id, st.Status, "resume it first")
	default:
		return "", conflict(id, st.Status, "start it first")
	}
}

// info returns a's wire form.
func (m *Manager) info(a *agent) api.AgentInfo {
	st := a.snapshot()
	cfg := st.Config
	info := api.AgentInfo{
		AgentID: cfg.AgentID, Name: cfg.Name, Status: string(st.Status), CreatedAt: st.CreatedAt,
		LastActivity: st.LastActivity, ExecutionCount: st.ExecutionCount, Reason: st.Reason,
		RestartCount: st.Restarts, LastContainerID: st.LastContainerID, Image: cfg.Image, Policy: cfg.Policy,
		Lifecycle: *cfg.Lifecycle,
	}
	if st.ContainerID != "" {
		cid := st.ContainerID
		info.ContainerID = &cid
		if st.Status == StatusRunning {
			if sb, err := m.sandboxes(); err == nil {
				if t, ok := sb.LastActivity(cid); ok && t.After(info.LastActivity) {
					info.LastActivity = t.UTC()
				}
			}
		}
	}
	if !st.NextRestart.IsZero() {
		t := st.NextRestart
		info.NextRestartAt = &t
	}
	if m.root != "" {
		p := filepath.Join(m.root, st.WorkspaceID)
		info.WorkspacePath = &p
	}
	return info
}

// event records an agent lifecycle audit record.
func (m *Manager) event(st *Agent, event, reason string) {
	if m.audit == nil {
		return
	}
	m.audit.Record(audit.Record{Time: time.Now().UTC(), Kind: audit.KindLifecycle, Agent: st.Config.AgentID,
		ContainerID: st.ContainerID, Event: event, Reason: reason})
}
