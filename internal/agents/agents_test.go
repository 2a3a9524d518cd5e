package agents

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"go.uber.org/goleak"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/poll"
	"github.com/clawbox/clawbox/internal/sandbox"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSandboxes is an in-memory sandbox manager: sandboxes run until the test
// ends them.
type fakeSandboxes struct {
	mu       sync.Mutex
	n        int
	recs     map[string]*sandbox.Record
	done     map[string]chan struct{}
	opts     []sandbox.SpawnOptions
	reqs     []api.ContainerSpawnRequest
	removed  []string
	gate     chan struct{} // when not nil, SpawnWith waits for it
	spawning chan struct{} // signalled when a spawn waits at the gate
}

func newFake() *fakeSandboxes {
	return &fakeSandboxes{recs: map[string]*sandbox.Record{}, done: map[string]chan struct{}{}}
}

func (f *fakeSandboxes) Check(req api.ContainerSpawnRequest) error {
	if req.Image == "bad" {
		return api.Errorf(api.CodeImageNotAllowed, "image not allowed")
	}
	return nil
}

func (f *fakeSandboxes) Config() sandbox.Config { return sandbox.Config{MaxTimeout: time.Hour} }

func (f *fakeSandboxes) SpawnWith(ctx context.Context, req api.ContainerSpawnRequest, o sandbox.SpawnOptions) (*sandbox.Record, error) {
	if err := f.Check(req); err != nil {
		return nil, err
	}
	f.mu.Lock()
	gate, spawning := f.gate, f.spawning
	f.mu.Unlock()
	if gate != nil {
		if spawning != nil {
			spawning <- struct{}{}
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	id := fmt.Sprintf("clawbox-%d", f.n)
	rec := &sandbox.Record{ID: id, Status: sandbox.StatusRunning, Task: req.Task, Workspace: o.Workspace}
	f.recs[id] = rec
	f.done[id] = make(chan struct{})
	f.opts = append(f.opts, o)
	f.reqs = append(f.reqs, req)
	c := *rec
	return &c, nil
}

func (f *fakeSandboxes) Get(_ context.Context, id string) (*sandbox.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.recs[id]
	if r == nil {
		return nil, api.Errorf(api.CodeNotFound, "sandbox %q not found", id)
	}
	c := *r
	return &c, nil
}

// end finishes sandbox id in status st with exit code code.
func (f *fakeSandboxes) end(id string, st sandbox.Status, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.recs[id]
	if r == nil || r.Status.Final() {
		return
	}
	r.Status, r.ExitCode, r.PausedAt = st, &code, time.Time{}
	close(f.done[id])
}

func (f *fakeSandboxes) Kill(_ context.Context, id string) (*sandbox.Record, error) {
	f.end(id, sandbox.StatusKilled, 137)
	return f.Get(context.Background(), id)
}

func (f *fakeSandboxes) Wait(ctx context.Context, id string) (*sandbox.Record, error) {
	f.mu.Lock()
	ch := f.done[id]
	f.mu.Unlock()
	if ch == nil {
		return f.Get(ctx, id)
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return f.Get(ctx, id)
}

func (f *fakeSandboxes) setPaused(id string, on bool) (*sandbox.Record, error) {
	f.mu.Lock()
	r := f.recs[id]
	if r == nil || r.Status != sandbox.StatusRunning || on == !r.PausedAt.IsZero() {
		f.mu.Unlock()
		return nil, api.Errorf(api.CodeConflict, "sandbox %q cannot do that now", id)
	}
	r.PausedAt = time.Time{}
	if on {
		r.PausedAt = time.Now()
	}
	f.mu.Unlock()
	return f.Get(context.Background(), id)
}

func (f *fakeSandboxes) Pause(_ context.Context, id string) (*sandbox.Record, error) {
	return f.setPaused(id, true)
}

func (f *fakeSandboxes) Resume(_ context.Context, id string) (*sandbox.Record, error) {
	return f.setPaused(id, false)
}

func (f *fakeSandboxes) LastActivity(id string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.recs[id]
	if r == nil || r.Status.Final() {
		return time.Time{}, false
	}
	return r.CreatedAt, true // never active after its spawn
}

func (f *fakeSandboxes) RemoveKeptWorkspace(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, id)
	return nil
}

// memStore is an in-memory Store that round-trips through JSON as the real one.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemStore() *memStore { return &memStore{m: map[string][]byte{}} }

func (s *memStore) CreateAgent(_ context.Context, a *Agent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[a.Config.AgentID]; ok {
		return errdefs.ErrAlreadyExists
	}
	s.m[a.Config.AgentID], _ = json.Marshal(a)
	return nil
}

func (s *memStore) UpdateAgent(_ context.Context, a *Agent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[a.Config.AgentID]; !ok {
		return errdefs.ErrNotFound
	}
	s.m[a.Config.AgentID], _ = json.Marshal(a)
	return nil
}

func (s *memStore) GetAgent(_ context.Context, id string) (*Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[id]
	if !ok {
		return nil, errdefs.ErrNotFound
	}
	var a Agent
	return &a, json.Unmarshal(b, &a)
}

func (s *memStore) ListAgents(ctx context.Context) ([]*Agent, error) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.m))
	for id := range s.m {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	sort.Strings(ids)
	var out []*Agent
	for _, id := range ids {
		a, err := s.GetAgent(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (s *memStore) DeleteAgent(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

type auditLog struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (l *auditLog) Record(r audit.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
}

func (l *auditLog) events(agent string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if r.Agent == agent {
			out = append(out, r.Event)
		}
	}
	return out
}

func newManager(t *testing.T, st Store, sb *fakeSandboxes, log *auditLog) *Manager {
	t.Helper()
	var sink AuditSink
	if log != nil {
		sink = log
	}
	m, err := New(Options{Store: st, Sandboxes: func() (Sandboxes, error) { return sb, nil }, Audit: sink,
		WorkspaceRoot: "/ws", CheckEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func code(err error) string {
	if ae, ok := api.AsError(err); ok {
		return ae.Code
	}
	return ""
}

func TestCheckID(t *testing.T) {
	for id, want := range map[string]string{
		"a": "", "Agent-42": "", strings.Repeat("x", 64): "",
		"": "1-64 characters", strings.Repeat("x", 65): "1-64 characters",
		"..": "path traversal", "a/b": "path traversal", `a\b`: "path traversal",
		"a_b": "alphanumeric + hyphens only", "é": "alphanumeric + hyphens only", "a.b": "alphanumeric + hyphens only",
	} {
		err := CheckID(id)
		if want == "" {
			if err != nil {
				t.Errorf("CheckID(%q) = %v", id, err)
			}
			continue
		}
		if code(err) != api.CodeInvalidRequest || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckID(%q) = %v, want %q", id, err, want)
		}
	}
}

// TestNoLockHeldAcrossASpawn: while one agent's spawn waits on the engine, the
// others are listed, read, created and started (the reference held one lock
// across the Docker call, blocking /health and every agent call).
func TestNoLockHeldAcrossASpawn(t *testing.T) {
	sb := newFake()
	m := newManager(t, newMemStore(), sb, nil)
	ctx := context.Background()
	for _, id := range []string{"slow", "fast"} {
		if _, err := m.Create(ctx, api.AgentConfig{AgentID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	gate, spawning := make(chan struct{}), make(chan struct{}, 1)
	sb.mu.Lock()
	sb.gate, sb.spawning = gate, spawning
	sb.mu.Unlock()
	started := make(chan error, 1)
	go func() { _, err := m.Start(ctx, "slow"); started <- err }()
	<-spawning
	sb.mu.Lock()
	sb.gate = nil
	sb.mu.Unlock()
	if a, err := m.Get(ctx, "slow"); err != nil || a.Status != api.AgentStatusStarting {
		t.Fatalf("get while starting: %+v, %v", a, err)
	}
	if _, err := m.List(ctx); err != nil {
		t.Fatal(err)
	}
	if total, _ := m.Count(); total != 2 {
		t.Fatalf("count = %d", total)
	}
	if _, err := m.Start(ctx, "fast"); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
}

// TestStatusFollowsTheSandbox: the agent's status follows its sandbox's end.
func TestStatusFollowsTheSandbox(t *testing.T) {
	sb := newFake()
	log := &auditLog{}
	m := newManager(t, newMemStore(), sb, log)
	ctx := context.Background()
	for _, tc := range []struct {
		end  sandbox.Status
		code int
		want string
	}{
		{sandbox.StatusCompleted, 0, api.AgentStatusIdle},
		{sandbox.StatusKilled, 137, api.AgentStatusIdle},
		{sandbox.StatusTimedOut, 137, api.AgentStatusTerminated},
		{sandbox.StatusFailed, 1, api.AgentStatusFailed},
		{sandbox.StatusLost, 0, api.AgentStatusFailed},
	} {
		id := "a-" + string(tc.end)
		id = strings.ReplaceAll(id, "_", "-")
		if _, err := m.Create(ctx, api.AgentConfig{AgentID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
		a, err := m.Start(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sb.end(*a.ContainerID, tc.end, tc.code)
		poll.Until(t, 10*time.Second, id+" "+tc.want, func() (bool, error) {
			a, err := m.Get(ctx, id)
			return err == nil && a.Status == tc.want && a.ContainerID == nil, err
		})
	}
}

// TestCrashRestartBackoffAndLimit: a failing sandbox is restarted, each restart
// after a doubled back-off, max_restarts times, then the agent is failed.
func TestCrashRestartBackoffAndLimit(t *testing.T) {
	sb := newFake()
	log := &auditLog{}
	st := newMemStore()
	m := newManager(t, st, sb, log)
	ctx := context.Background()
	three := 3
	if _, err := m.Create(ctx, api.AgentConfig{AgentID: "c", Name: "c", Lifecycle: &api.AgentLifecycle{
		RestartOnCrash: true, MaxRestarts: &three, RestartBackoffMS: ptr(int64(30))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		var cid string
		poll.Until(t, 10*time.Second, fmt.Sprintf("sandbox %d", i), func() (bool, error) {
			a, err := m.Get(ctx, "c")
			if err == nil && a.Status == api.AgentStatusRunning && a.ContainerID != nil && *a.ContainerID == fmt.Sprintf("clawbox-%d", i) {
				cid = *a.ContainerID
				return true, nil
			}
			return false, err
		})
		sb.end(cid, sandbox.StatusFailed, 2)
	}
	poll.Until(t, 10*time.Second, "failed", func() (bool, error) {
		a, err := m.Get(ctx, "c")
		return err == nil && a.Status == api.AgentStatusFailed, err
	})
	a, _ := m.Get(ctx, "c")
	if a.RestartCount != 3 || !strings.Contains(a.Reason, "after 3 restarts") {
		t.Fatalf("failed agent: %+v", a)
	}
	if got := strings.Count(strings.Join(log.events("c"), ","), "agent_crashed"); got != 3 {
		t.Fatalf("crash records: %v", log.events("c"))
	}
	// The workspace is the same at every start.
	sb.mu.Lock()
	for _, o := range sb.opts {
		if o.Workspace != sb.opts[0].Workspace || o.Workspace == "" {
			t.Errorf("workspaces: %+v", sb.opts)
		}
	}
	sb.mu.Unlock()
	if b := backoff(&api.AgentLifecycle{RestartBackoffMS: ptr(int64(1000))}, 10); b != MaxRestartBackoffMS {
		t.Errorf("backoff cap: %d", b)
	}
}

func ptr[T any](v T) *T { return &v }

// TestIdle: an agent without activity is stopped, or paused with idle_action pause.
func TestIdle(t *testing.T) {
	sb := newFake()
	m := newManager(t, newMemStore(), sb, &auditLog{})
	ctx := context.Background()
	for id, action := range map[string]string{"s": "stop", "p": "pause"} {
		if _, err := m.Create(ctx, api.AgentConfig{AgentID: id, Name: id, Lifecycle: &api.AgentLifecycle{MaxIdleMS: ptr(int64(100)), IdleAction: action}}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 10*time.Second, "idle stop and pause", func() (bool, error) {
		s, err1 := m.Get(ctx, "s")
		p, err2 := m.Get(ctx, "p")
		return s.Status == api.AgentStatusIdle && p.Status == api.AgentStatusPaused, errorsJoin(err1, err2)
	})
	// max_idle_ms 0 disables it.
	if _, err := m.Create(ctx, api.AgentConfig{AgentID: "never", Name: "n", Lifecycle: &api.AgentLifecycle{MaxIdleMS: ptr(int64(0))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(ctx, "never"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if a, _ := m.Get(ctx, "never"); a.Status != api.AgentStatusRunning {
		t.Fatalf("max_idle_ms 0: %+v", a)
	}
}

func errorsJoin(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// TestLoadRecovers: a new Manager on the same store adopts running and paused
// agents, keeps stopped ones, restarts a crashed restart_on_crash agent, and
// re-arms a due restart.
func TestLoadRecovers(t *testing.T) {
	sb := newFake()
	st := newMemStore()
	m1, err := New(Options{Store: st, Sandboxes: func() (Sandboxes, error) { return sb, nil }, CheckEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := m1.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"run", "pause", "idle", "crash"} {
		cfg := api.AgentConfig{AgentID: id, Name: id}
		if id == "crash" {
			cfg.Lifecycle = &api.AgentLifecycle{RestartOnCrash: true, RestartBackoffMS: ptr(int64(10))}
		}
		if _, err := m1.Create(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if id != "idle" {
			if _, err := m1.Start(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := m1.Pause(ctx, "pause"); err != nil {
		t.Fatal(err)
	}
	crashed, _ := m1.Get(ctx, "crash")
	run, _ := m1.Get(ctx, "run")
	if err := m1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m1.Close(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := m1.Get(ctx, "run"); code(err) != api.CodeUnavailable {
		t.Fatalf("after close: %v", err)
	}
	// While no server ran, the crash agent's sandbox died.
	sb.end(*crashed.ContainerID, sandbox.StatusLost, 0)

	m2 := newManager(t, st, sb, nil)
	if a, _ := m2.Get(ctx, "run"); a.Status != api.AgentStatusRunning || *a.ContainerID != *run.ContainerID {
		t.Fatalf("run: %+v", a)
	}
	if a, _ := m2.Get(ctx, "pause"); a.Status != api.AgentStatusPaused {
		t.Fatalf("pause: %+v", a)
	}
	if a, _ := m2.Get(ctx, "idle"); a.Status != api.AgentStatusIdle {
		t.Fatalf("idle: %+v", a)
	}
	poll.Until(t, 10*time.Second, "crash restarted", func() (bool, error) {
		a, err := m2.Get(ctx, "crash")
		return err == nil && a.Status == api.AgentStatusRunning && *a.ContainerID != *crashed.ContainerID && a.RestartCount == 1, err
	})
	// The adopted one is watched: its end is seen.
	sb.end(*run.ContainerID, sandbox.StatusCompleted, 0)
	poll.Until(t, 10*time.Second, "adopted agent's end", func() (bool, error) {
		a, err := m2.Get(ctx, "run")
		return err == nil && a.Status == api.AgentStatusIdle, err
	})
	if err := m2.Remove(ctx, "pause", true); err != nil {
		t.Fatal(err)
	}
	sb.mu.Lock()
	removed := append([]string(nil), sb.removed...)
	sb.mu.Unlock()
	if len(removed) != 1 || !strings.HasPrefix(removed[0], "clawbox-") {
		t.Fatalf("removed workspaces: %v", removed)
	}
}

// TestConfigDefaultsAndRefusals covers normalization.
func TestConfigDefaultsAndRefusals(t *testing.T) {
	cfg, err := normalize(api.AgentConfig{AgentID: "x", Name: "x", Policy: "wasm_only"})
	if err != nil {
		t.Fatal(err)
	}
	lc := cfg.Lifecycle
	if cfg.Policy != "container" || *lc.MaxIdleMS != DefaultMaxIdleMS || *lc.MaxRestarts != 3 || lc.IdleAction != "stop" ||
		strings.Join(cfg.Command, " ") != "sleep infinity" || cfg.Workspace.MountPoint != "/workspace" {
		t.Fatalf("defaults: %+v %+v", cfg, lc)
	}
	req := withMaxTimeout(spawnRequest(cfg), 3600000)
	if *req.Capabilities.Resources.TimeoutMS != 3600000 || req.Task != "agent:x" {
		t.Fatalf("spawn request: %+v", req)
	}
	cfg.Lifecycle.MaxLifetimeMS = ptr(int64(5000))
	if r := spawnRequest(cfg); *r.Capabilities.Resources.TimeoutMS != 5000 {
		t.Fatalf("lifetime: %+v", r.Capabilities.Resources)
	}
	hp := "/etc"
	for name, c := range map[string]api.AgentConfig{
		"no name":     {AgentID: "x"},
		"policy":      {AgentID: "x", Name: "x", Policy: "vm"},
		"host_path":   {AgentID: "x", Name: "x", Workspace: &api.AgentWorkspace{HostPath: &hp}},
		"mount_point": {AgentID: "x", Name: "x", Workspace: &api.AgentWorkspace{MountPoint: "/data"}},
		"read_only":   {AgentID: "x", Name: "x", Workspace: &api.AgentWorkspace{ReadOnly: true}},
		"idle<0":      {AgentID: "x", Name: "x", Lifecycle: &api.AgentLifecycle{MaxIdleMS: ptr(int64(-1))}},
		"lifetime 0":  {AgentID: "x", Name: "x", Lifecycle: &api.AgentLifecycle{MaxLifetimeMS: ptr(int64(0))}},
		"restarts":    {AgentID: "x", Name: "x", Lifecycle: &api.AgentLifecycle{MaxRestarts: ptr(-1)}},
		"backoff":     {AgentID: "x", Name: "x", Lifecycle: &api.AgentLifecycle{RestartBackoffMS: ptr(int64(1e9))}},
		"idle_action": {AgentID: "x", Name: "x", Lifecycle: &api.AgentLifecycle{IdleAction: "sleep"}},
	} {
		if _, err := normalize(c); code(err) != api.CodeInvalidRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
}
