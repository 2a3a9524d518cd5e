package agents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/uuid"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/sandbox"
)

// Options are a Manager's dependencies. Store and Sandboxes are required.
type Options struct {
	Store Store
	// Sandboxes returns the sandbox manager now, or the error every call
	// answers with while there is none (503 unavailable with the reason).
	Sandboxes func() (Sandboxes, error)
	// Audit receives a record per lifecycle transition; nil: none.
	Audit AuditSink
	// WorkspaceRoot is containers.workspace_root, for AgentInfo.workspace_path.
	WorkspaceRoot string
	// CheckEvery is how often a running agent's idleness is looked at, and how
	// often an unavailable sandbox manager is tried at start; default 1 s.
	CheckEvery time.Duration
	// Logger; nil: slog.Default().
	Logger *slog.Logger
}

// Manager owns every agent of this server. Call Load before serving and Close
// at the end.
type Manager struct {
	store     Store
	sandboxes func() (Sandboxes, error)
	audit     AuditSink
	root      string
	every     time.Duration
	log       *slog.Logger

	ctx    context.Context // cancelled by Close: watchers, restart timers, recovery
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex // guards agents, closed, started
	agents  map[string]*agent
	closed  bool
	started bool

	closeOnce sync.Once
}

// agent is the in-memory side of one agent.
type agent struct {
	// op serializes the lifecycle operations on this agent (start, stop, pause,
	// resume, remove, crash handling, idle action). It is held across sandbox
	// calls, for this agent only; never take it while holding mu or Manager.mu.
	op sync.Mutex

	mu sync.Mutex // guards st, stop, gone
	st *Agent
	// stop ends the current watcher or restart timer (nil when none).
	stop func()
	gone bool // removed
}

func (a *agent) snapshot() *Agent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.clone()
}

// New validates opts and returns a Manager; it starts nothing.
func New(opts Options) (*Manager, error) {
	if opts.Store == nil || opts.Sandboxes == nil {
		return nil, errors.New("agents: a store and the sandboxes are required")
	}
	m := &Manager{store: opts.Store, sandboxes: opts.Sandboxes, audit: opts.Audit, root: opts.WorkspaceRoot,
		every: opts.CheckEvery, log: opts.Logger, agents: map[string]*agent{}}
	if m.every <= 0 {
		m.every = time.Second
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Load loads every agent from the store and recovers them: a running or paused
// agent whose sandbox still runs is watched again, one whose sandbox ended is
// handled as that end (a crash restarts per its policy), a due restart is
// scheduled again. While the sandbox manager is unavailable the recovery is
// retried in the background.
func (m *Manager) Load(ctx context.Context) error {
	m.mu.Lock()
	if m.started || m.closed {
		m.mu.Unlock()
		return errors.New("agents: already started or closed")
	}
	m.started = true
	m.mu.Unlock()
	all, err := m.store.ListAgents(ctx)
	if err != nil {
		return fmt.Errorf("agents: load: %w", err)
	}
	m.mu.Lock()
	for _, st := range all {
		m.agents[st.Config.AgentID] = &agent{st: st}
	}
	m.mu.Unlock()
	if _, err := m.sandboxes(); err == nil {
		m.recover(ctx)
		return nil
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(m.every)
		defer t.Stop()
		for {
			select {
			case <-m.ctx.Done():
				return
			case <-t.C:
			}
			if _, err := m.sandboxes(); err == nil {
				m.recover(m.ctx)
				return
			}
		}
	}()
	return nil
}

// recover brings every loaded agent in line with its sandbox.
func (m *Manager) recover(ctx context.Context) {
	for _, a := range m.list() {
		a.op.Lock()
		m.recoverLocked(ctx, a)
		a.op.Unlock()
	}
}

func (m *Manager) recoverLocked(ctx context.Context, a *agent) {
	st := a.snapshot()
	cfg := st.Config
	switch st.Status {
	case StatusIdle, StatusFailed, StatusTerminated:
		return
	case StatusStarting:
		if !st.NextRestart.IsZero() {
			m.scheduleLocked(a, st.NextRestart)
			return
		}
	case StatusRunning, StatusPaused:
		sb, err := m.sandboxes()
		if err != nil {
			return
		}
		rec, err := sb.Get(ctx, st.ContainerID)
		if err != nil {
			m.log.Warn("agents: sandbox of a running agent not found at start", "agent", cfg.AgentID, "sandbox", st.ContainerID, "err", err)
			rec = &sandbox.Record{ID: st.ContainerID, Status: sandbox.StatusLost}
		}
		if rec.Status == sandbox.StatusRunning {
			st.Status = StatusRunning
			if !rec.PausedAt.IsZero() {
				st.Status = StatusPaused
			}
			if err := m.saveLocked(ctx, a, st); err != nil {
				m.log.Error("agents: record adoption", "agent", cfg.AgentID, "err", err)
			}
			m.watchLocked(a, sb, st.ContainerID)
			m.event(st, "agent_adopted", "")
			return
		}
		m.endedLocked(ctx, a, rec, true)
		return
	}
	// Starting (a spawn the last process did not finish) or stopping: its
	// sandbox, if any, is gone or going (the sandbox manager marks an
	// unfinished spawn lost).
	if st.ContainerID != "" {
		if sb, err := m.sandboxes(); err == nil {
			if _, err := sb.Kill(ctx, st.ContainerID); err != nil && !isNotFound(err) {
				m.log.Warn("agents: kill the sandbox of an interrupted operation", "agent", cfg.AgentID, "err", err)
			}
		}
	}
	if st.Status == StatusStarting && cfg.Lifecycle.RestartOnCrash {
		if err := m.startLocked(ctx, a, "agent_restarted"); err != nil {
			m.log.Warn("agents: restart at start", "agent", cfg.AgentID, "err", err)
		}
		return
	}
	st.Status, st.ContainerID, st.Reason = StatusIdle, "", "the server stopped during its "+map[bool]string{true: "start", false: "stop"}[st.Status == StatusStarting]
	if err := m.saveLocked(ctx, a, st); err != nil {
		m.log.Error("agents: record recovery", "agent", cfg.AgentID, "err", err)
	}
	m.event(st, "agent_stopped", st.Reason)
}

// Close cancels every watcher and restart timer and waits for them (bounded by
// ctx). Running agents keep their sandboxes (the sandbox manager decides, by
// containers.kill_on_shutdown) and the next Load adopts them. Idempotent.
func (m *Manager) Close(ctx context.Context) error {
	var err error
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		m.cancel()
		done := make(chan struct{})
		go func() {
			m.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("agents: close: %w", ctx.Err())
			return
		}
		// Keep the counters that change between transitions.
		for _, a := range m.list() {
			a.mu.Lock()
			st, gone := a.st.clone(), a.gone
			a.mu.Unlock()
			if !gone {
				if uerr := m.store.UpdateAgent(context.WithoutCancel(ctx), st); uerr != nil && !isNotFound(uerr) {
					m.log.Warn("agents: record at close", "agent", st.Config.AgentID, "err", uerr)
				}
			}
		}
	})
	return err
}

func (m *Manager) list() []*agent {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*agent, 0, len(m.agents))
	for _, a := range m.agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		si, sj := out[i].st, out[j].st
		if !si.CreatedAt.Equal(sj.CreatedAt) {
			return si.CreatedAt.Before(sj.CreatedAt)
		}
		return si.Config.AgentID < sj.Config.AgentID
	})
	return out
}

func notFound(id string) error {
	return api.Errorf(api.CodeNotFound, "agent not found: %s", id)
}

func isNotFound(err error) bool {
	if errors.Is(err, errdefs.ErrNotFound) {
		return true
	}
	ae, ok := api.AsError(err)
	return ok && ae.Code == api.CodeNotFound
}

func conflict(id string, st Status, format string, args ...any) error {
	return api.Errorf(api.CodeConflict, "agent %q is %s: %s", id, st, fmt.Sprintf(format, args...))
}

// lookup returns agent id, 404 when unknown, 503 after Close.
func (m *Manager) lookup(id string) (*agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, api.Errorf(api.CodeUnavailable, "the server is shutting down")
	}
	a := m.agents[id]
	if a == nil {
		return nil, notFound(id)
	}
	return a, nil
}

// begin takes a's operation lock; it fails with 404 if a was removed meanwhile.
// beginIn is begin for an operation allowed only in the given statuses: any
// other status is 409 conflict saying why. It returns the agent (its op lock
// held) and the state it was found in.
func (m *Manager) beginIn(id, why string, allowed ...Status) (*agent, *Agent, error) {
	a, err := m.begin(id)
	if err != nil {
		return nil, nil, err
	}
	st := a.snapshot()
	if !slices.Contains(allowed, st.Status) {
		a.op.Unlock()
		return nil, nil, conflict(id, st.Status, "%s", why)
	}
	return a, st, nil
}

func (m *Manager) begin(id string) (*agent, error) {
	a, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	a.op.Lock()
	a.mu.Lock()
	gone := a.gone
	a.mu.Unlock()
	if gone {
		a.op.Unlock()
		return nil, notFound(id)
	}
	return a, nil
}

// Create registers an agent (status idle). Its id must be new (409 conflict
// otherwise); its configuration is checked against the server's policy as its
// spawns will be (when the sandbox manager is available).
func (m *Manager) Create(ctx context.Context, cfg api.AgentConfig) (api.AgentInfo, error) {
	cfg, err := normalize(cfg)
	if err != nil {
		return api.AgentInfo{}, err
	}
	if sb, err := m.sandboxes(); err == nil {
		if err := sb.Check(withMaxTimeout(spawnRequest(cfg), sb.Config().MaxTimeout.Milliseconds())); err != nil {
			return api.AgentInfo{}, err
		}
	}
	m.mu.Lock()
	closed, dup := m.closed, m.agents[cfg.AgentID] != nil
	m.mu.Unlock()
	if closed {
		return api.AgentInfo{}, api.Errorf(api.CodeUnavailable, "the server is shutting down")
	}
	if dup {
		return api.AgentInfo{}, api.Errorf(api.CodeConflict, "agent already exists: %s", cfg.AgentID)
	}
	now := time.Now().UTC()
	st := &Agent{Config: cfg, Status: StatusIdle, WorkspaceID: "clawbox-" + uuid.NewString(), CreatedAt: now, LastActivity: now}
	if err := m.store.CreateAgent(ctx, st); err != nil {
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			return api.AgentInfo{}, api.Errorf(api.CodeConflict, "agent already exists: %s", cfg.AgentID)
		}
		return api.AgentInfo{}, fmt.Errorf("agent %s: create: %w", cfg.AgentID, err)
	}
	a := &agent{st: st}
	m.mu.Lock()
	m.agents[cfg.AgentID] = a
	m.mu.Unlock()
	m.event(st, "agent_created", "")
	return m.info(a), nil
}

// Get returns one agent.
func (m *Manager) Get(_ context.Context, id string) (api.AgentInfo, error) {
	a, err := m.lookup(id)
	if err != nil {
		return api.AgentInfo{}, err
	}
	return m.info(a), nil
}

// List returns every agent, oldest first.
func (m *Manager) List(context.Context) ([]api.AgentInfo, error) {
	as := m.list()
	out := make([]api.AgentInfo, 0, len(as))
	for _, a := range as {
		out = append(out, m.info(a))
	}
	return out, nil
}

// Count returns how many agents there are and how many run (running or paused).
func (m *Manager) Count() (total, running int) {
	for _, a := range m.list() {
		st := a.snapshot()
		total++
		if st.Status == StatusRunning || st.Status == StatusPaused {
			running++
		}
	}
	return total, running
}

// Start starts an idle, failed or terminated agent; any other status is 409.
func (m *Manager) Start(ctx context.Context, id string) (api.AgentInfo, error) {
	a, _, err := m.beginIn(id, "only an idle, failed or terminated agent can be started", StatusIdle, StatusFailed, StatusTerminated)
	if err != nil {
		return api.AgentInfo{}, err
	}
	defer a.op.Unlock()
	a.mu.Lock()
	a.st.Restarts = 0
	a.mu.Unlock()
	if err := m.startLocked(ctx, a, "agent_started"); err != nil {
		return api.AgentInfo{}, err
	}
	return m.info(a), nil
}
