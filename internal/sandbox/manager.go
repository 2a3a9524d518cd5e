package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/supervisor/supervisorbin"
)

// Options are a Manager's dependencies. Backend and Store are required; a nil field
// otherwise means the default named in its comment.
type Options struct {
	Config  Config
	Backend Backend
	Store   RecordStore
	// Doors opens each sandbox's egress door; nil means doors cannot be opened and
	// every "container" spawn fails (container_direct needs none).
	Doors DoorOpener
	// Audit receives lifecycle events; nil: none.
	Audit AuditSink
	// Workspaces keeps sandbox workspaces; nil: a spawn asking for one is 503.
	Workspaces Workspaces
	// Credentials provides env placeholders for granted credentials; nil: none.
	Credentials CredentialEnv
	// Redactor removes known secrets from container logs before they are stored
	// or returned; nil: logs are kept as written.
	Redactor Redactor
	// Clock; nil: the real clock.
	Clock Clock
	// Logger; nil: slog.Default().
	Logger *slog.Logger
	// Registerer for the sandbox metrics; nil: not registered.
	Registerer prometheus.Registerer
}

// Manager owns every container sandbox of this server: spawn, kill, logs, the
// per-sandbox lifecycle monitors, the reaper and start-up reconciliation.
// Call Start before serving and Shutdown at the end.
type Manager struct {
	cfg        Config
	backend    Backend
	store      RecordStore
	doors      DoorOpener
	audit      AuditSink
	workspaces Workspaces
	creds      CredentialEnv
	redact     Redactor
	clock      Clock
	log        *slog.Logger
	metrics    *metrics

	// supervisorBin is the host path of the supervisor binary (set by Start).
	supervisorBin string

	ctx    context.Context // cancelled at Shutdown: monitors and the reaper
	cancel context.CancelFunc
	wg     sync.WaitGroup // monitors, the reaper, in-flight spawns

	mu      sync.Mutex       // guards live, closed, started
	live    map[string]*live // sandboxes creating or running in this process
	closed  bool
	started bool

	// poolMu guards the warm pools and serializes every record creation with
	// the pools' own accounting, so that records plus pooled sandboxes never
	// exceed max_containers (pool.go).
	poolMu      sync.Mutex
	pools       []*pool
	evicting    int  // pooled sandboxes leaving a pool, still counted
	poolsClosed bool // set at shutdown: no fill becomes ready any more

	shutdownOnce sync.Once
	shutdownErr  error
}

// live is the in-memory side of a sandbox that is creating or running.
type live struct {
	id        string
	tokenHash []byte
	revoked   atomic.Bool
	res       *hostResources // socket dir, door, supervisor link: released once
	cancel    context.CancelFunc
	done      chan struct{} // closed once finished (or detached at shutdown)

	mu        sync.Mutex // guards rec, finishing, timer
	rec       *Record
	finishing bool
	// timer fires at rec.Deadline; the monitor arms it, Extend replaces it and
	// tells the monitor through rearm.
	timer Timer
	rearm chan struct{} // capacity 1
	// execs holds a token per running exec (capacity containers.max_execs).
	execs chan struct{}
	// activity is the last exec, file call or door request (Unix nanoseconds;
	// see LastActivity).
	activity atomic.Int64
	// pauseMu serializes Pause and Resume.
	pauseMu sync.Mutex
	now     func() time.Time // the manager's clock
}

// newLive returns the live side of rec; dir is its socket directory ("" for
// container_direct), owned from now on by the returned live's resources.
func (m *Manager) newLive(rec *Record, dir string) *live {
	l := &live{id: rec.ID, tokenHash: rec.TokenHash, rec: rec.clone(), res: newHostResources(rec.ID, dir, m.log),
		done: make(chan struct{}), rearm: make(chan struct{}, 1), execs: make(chan struct{}, m.cfg.MaxExecs),
		now: m.clock.Now}
	l.touch(m.clock.Now())
	return l
}

func (l *live) authenticate(token string) bool {
	ok := !l.revoked.Load() && tokenMatches(l.tokenHash, token)
	if ok {
		l.touch(l.now())
	}
	return ok
}

func (l *live) snapshot() *Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec.clone()
}

// New validates the options and returns a Manager. It starts nothing: call Start.
func New(opts Options) (*Manager, error) {
	cfg, err := opts.Config.withDefaults()
	if err != nil {
		return nil, err
	}
	if opts.Backend == nil || opts.Store == nil {
		return nil, errors.New("sandbox: a backend and a store are required")
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("sandbox metrics: %w", err)
	}
	m := &Manager{
		cfg:        cfg,
		backend:    opts.Backend,
		store:      opts.Store,
		doors:      opts.Doors,
		audit:      opts.Audit,
		workspaces: opts.Workspaces,
		creds:      opts.Credentials,
		redact:     opts.Redactor,
		clock:      opts.Clock,
		log:        opts.Logger,
		metrics:    met,
		live:       map[string]*live{},
	}
	if m.clock == nil {
		m.clock = realClock{}
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Config returns the effective configuration (defaults applied).
func (m *Manager) Config() Config { return m.cfg }

// Start checks the backend, reconciles the store with the engine (adopting running
// sandboxes, marking vanished ones lost, removing this instance's orphan containers)
// and starts the reaper. Call it once, before serving.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.started || m.closed {
		m.mu.Unlock()
		return errors.New("sandbox: manager already started or shut down")
	}
	m.started = true
	m.mu.Unlock()
	if err := m.backend.Ping(ctx); err != nil {
		return fmt.Errorf("container backend: %w", err)
	}
	if err := ensureBaseDir(m.cfg.ProxiesDir); err != nil {
		return err
	}
	bin, err := supervisorbin.Install(m.cfg.SupervisorDir, runtime.GOARCH)
	if err != nil {
		return fmt.Errorf("install the sandbox supervisor: %w", err)
	}
	m.supervisorBin = bin
	if err := m.reconcile(ctx); err != nil {
		return fmt.Errorf("reconcile sandboxes: %w", err)
	}
	m.wg.Add(1)
	go m.reaper()
	if err := m.startPools(); err != nil {
		return fmt.Errorf("warm pools: %w", err)
	}
	return nil
}

func ensureBaseDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("proxies dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("proxies dir: %w", err)
	}
	return nil
}

// Spawn validates req, then creates the record, token, socket directory and door,
// and creates and starts the hardened container. It is all or nothing: on any error
// every earlier step is undone. It returns the running sandbox's record.
func (m *Manager) Spawn(ctx context.Context, req api.ContainerSpawnRequest) (*Record, error) {
	return m.SpawnWith(ctx, req, SpawnOptions{})
}

// SpawnWith is Spawn with the server-side options o (see SpawnOptions). A spawn
// that matches a warm pool claims one of its ready sandboxes; one that matches
// none, or finds its pool empty, or whose claim fails, starts cold.
func (m *Manager) SpawnWith(ctx context.Context, req api.ContainerSpawnRequest, o SpawnOptions) (*Record, error) {
	began := m.clock.Now()
	p, err := m.validate(&req)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed || !m.started {
		m.mu.Unlock()
		return nil, api.Errorf(api.CodeUnavailable, "the sandbox manager is not running")
	}
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()

	if pl := m.matchPool(p, req.Command, o); pl != nil {
		rec, err := m.spawnWarm(ctx, req, p, pl)
		m.countClaim(pl, rec != nil)
		if rec != nil {
			d := m.clock.Now().Sub(began).Seconds()
			m.metrics.poolClaim.Observe(d)
			m.metrics.spawn.Observe(d)
			return rec, nil
		}
		if err != nil {
			m.log.Warn("sandbox pool: claim failed, starting cold", "pool", pl.cfg.Name, "err", err)
		}
	}
	rec, err := m.spawnCold(ctx, req, p, o)
	if err != nil {
		return nil, err
	}
	m.metrics.spawn.Observe(m.clock.Now().Sub(began).Seconds())
	return rec, nil
}

// newRecord is a spawn's record before it has an id.
func (m *Manager) newRecord(req api.ContainerSpawnRequest, p *plan, o SpawnOptions) *Record {
	return &Record{
		Task:        req.Task,
		Image:       p.image,
		Policy:      p.policy,
		Status:      StatusCreating,
		CreatedAt:   m.clock.Now().UTC(),
		Allowlist:   p.allowlist,
		Credentials: p.credentials,
		LogLimit:    p.logLimit,
		Labels:      p.labels,
		Workspace:   o.Workspace,
	}
}

// spawnEnv is the environment sandbox id gets from its spawn (the door's own
// variables excepted): the request's env, CLAWBOX_CONTAINER_ID, the bridge and
// CA variables (policy container) and the granted credentials' placeholders.
func (m *Manager) spawnEnv(id string, p *plan) (map[string]string, error) {
	env := maps.Clone(p.env)
	if env == nil {
		env = map[string]string{}
	}
	env["CLAWBOX_CONTAINER_ID"] = id
	if p.policy == PolicyContainer {
		// The bridge and the CA bundle: unmodified clients reach the door.
		maps.Copy(env, doorEnv())
	}
	if m.creds != nil && len(p.credentials) > 0 {
		ce, err := m.creds.CredentialEnv(id, p.credentials)
		if err != nil {
			return nil, fmt.Errorf("sandbox %s: credential env: %w", id, err)
		}
		for k, v := range ce {
			if !envKeyRE.MatchString(k) || strings.IndexByte(v, 0) >= 0 {
				return nil, fmt.Errorf("sandbox %s: credential env: invalid variable %q", id, k)
			}
			if _, dup := env[k]; dup {
				return nil, invalid("env."+k, "env key %q is set by a granted credential", k)
			}
			env[k] = v
		}
	}
	return env, nil
}

// spawnWarm claims a ready sandbox of pl for the spawn. It returns nil, nil when
// the pool is empty; on a failed claim it removes the pooled sandbox (it never
// goes back) and returns the error: either way the caller starts cold.
func (m *Manager) spawnWarm(ctx context.Context, req api.ContainerSpawnRequest, p *plan, pl *pool) (*Record, error) {
	if m.doors == nil {
		return nil, errors.New("no door opener configured")
	}
	rec := m.newRecord(req, p, SpawnOptions{})
	token, hash := newToken()
	rec.TokenHash = hash
	e, err := m.createRecord(ctx, rec, pl)
	if e == nil {
		return nil, err
	}
	pl.poke() // refill now, in the background
	id := rec.ID
	l := m.newLive(rec, e.res.socketDir())
	l.res = e.res
	m.mu.Lock()
	m.live[id] = l
	m.mu.Unlock()
	undo := func() {
		m.mu.Lock()
		delete(m.live, id)
		m.mu.Unlock()
		if err := m.store.DeleteSandbox(context.WithoutCancel(ctx), id); err != nil {
			m.log.Error("sandbox: undo claim: delete record", "sandbox", id, "err", err)
		}
		m.removePooled(e)
	}
	if err := m.claim(ctx, l, rec, e, p, req.Command, token); err != nil {
		undo()
		return nil, fmt.Errorf("sandbox %s: claim: %w", id, err)
	}
	running, err := m.markRunning(ctx, l, rec, e.cid, p.timeout, true)
	if err != nil {
		undo()
		return nil, err
	}
	return running, nil
}

// markRunning records the sandbox running in container cid, starts its monitor
// and reports the spawn.
func (m *Manager) markRunning(ctx context.Context, l *live, rec *Record, cid string, timeout time.Duration, warm bool) (*Record, error) {
	running := rec.clone()
	running.ContainerID = cid
	running.Deadline = m.clock.Now().Add(timeout).UTC()
	running.Warm = warm
	if err := running.transition(StatusRunning); err != nil {
		return nil, err
	}
	if err := m.store.UpdateSandbox(ctx, running, StatusCreating); err != nil {
		return nil, fmt.Errorf("sandbox %s: record running: %w", rec.ID, err)
	}
	mctx, cancel := context.WithCancel(m.ctx)
	l.mu.Lock()
	l.rec = running.clone()
	l.cancel = cancel
	l.mu.Unlock()
	m.wg.Add(1)
	go m.monitor(mctx, l)

	m.metrics.total.WithLabelValues("spawned").Inc()
	m.event(running, "spawned", "")
	m.refreshMetrics(ctx)
	m.log.Info("sandbox spawned", "sandbox", rec.ID, "image", rec.Image, "policy", rec.Policy, "warm", warm)
	return running, nil
}

// spawnCold creates the record, token, socket directory and door, and creates
// and starts the hardened container. It is all or nothing: on any error every
// earlier step is undone.
func (m *Manager) spawnCold(ctx context.Context, req api.ContainerSpawnRequest, p *plan, o SpawnOptions) (*Record, error) {
	id := "clawbox-" + uuid.NewString()
	rec := m.newRecord(req, p, o)
	rec.ID = id
	var token string
	if p.policy == PolicyContainer {
		token, rec.TokenHash = newToken()
	}
	dir := filepath.Join(m.cfg.ProxiesDir, id) // every sandbox has one, for its supervisor
	l := m.newLive(rec, dir)

	// Undo stack: run in reverse on failure.
	var undo []func()
	fail := func(err error) (*Record, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, err
	}

	if _, err := m.createRecord(ctx, rec, nil); err != nil {
		if errors.Is(err, errdefs.ErrResourceExhausted) {
			return nil, api.Errorf(api.CodeResourceExhausted, "container limit reached (containers.max_containers = %d)", m.cfg.MaxContainers)
		}
		return nil, fmt.Errorf("sandbox %s: create record: %w", id, err)
	}
	m.mu.Lock()
	m.live[id] = l
	m.mu.Unlock()
	undo = append(undo, func() {
		m.mu.Lock()
		delete(m.live, id)
		m.mu.Unlock()
		if err := m.store.DeleteSandbox(context.WithoutCancel(ctx), id); err != nil {
			m.log.Error("sandbox: undo spawn: delete record", "sandbox", id, "err", err)
		}
	})

	env, err := m.spawnEnv(id, p)
	if err != nil {
		return fail(err)
	}

	spec := Spec{
		ID: id, Task: req.Task, Labels: p.labels, Image: p.image, Policy: p.policy, Command: req.Command,
		Instance: m.cfg.InstanceID, User: m.cfg.User,
		MemoryBytes: p.memoryMB << 20, CPUShares: p.cpuShares, NanoCPUs: p.nanoCPUs,
		PidsLimit: m.cfg.PidsLimit, TmpfsMB: m.cfg.TmpfsSizeMB, Nofile: m.cfg.Nofile,
		Runtime: m.cfg.Runtime, Lifetime: p.timeout,
	}
	if p.policy == PolicyContainer && m.doors == nil {
		return fail(fmt.Errorf("sandbox %s: no door opener configured", id))
	}
	if err := makeSocketDir(dir, token); err != nil {
		return fail(fmt.Errorf("sandbox %s: %w", id, err))
	}
	undo = append(undo, l.res.release)
	supToken, _ := newToken()
	if err := writeSupervisorToken(dir, supToken); err != nil {
		return fail(fmt.Errorf("sandbox %s: %w", id, err))
	}
	link, err := listenSupervisor(id, dir, supToken, m.log)
	if err != nil {
		return fail(fmt.Errorf("sandbox %s: %w", id, err))
	}
	l.res.setSupervisor(link)
	if o.Workspace != "" {
		// A kept workspace (an agent's): a failed spawn releases it (the undo
		// above), never removes it.
		wdir, err := m.keptWorkspace(ctx, o.Workspace)
		if err != nil {
			return fail(fmt.Errorf("sandbox %s: workspace: %w", id, err))
		}
		l.res.setWorkspaceID(m.workspaces, o.Workspace)
		spec.WorkspaceDir = wdir
	} else if p.workspace {
		uid, gid := userIDs(m.cfg.User)
		wdir, err := m.workspaces.Create(ctx, id, m.cfg.MaxWorkspaceMB<<20, uid, gid)
		if err != nil {
			return fail(fmt.Errorf("sandbox %s: workspace: %w", id, err))
		}
		// A failed spawn leaves no workspace; a sandbox that ran keeps it.
		undo = append(undo, func() {
			l.res.setWorkspace(nil) // removed here, not released
			if err := m.workspaces.Remove(id); err != nil {
				m.log.Error("sandbox: undo spawn: remove workspace", "sandbox", id, "err", err)
			}
		})
		l.res.setWorkspace(m.workspaces)
		spec.WorkspaceDir = wdir
	}
	spec.SocketDir = dir
	spec.Supervisor = m.supervisorBin
	spec.Entrypoint = SupervisorArgs(m.cfg.MaxFileBytes, p.policy == PolicyContainer)
	if p.policy == PolicyContainer {
		if err := m.openDoorWithCA(l, rec, dir); err != nil {
			return fail(fmt.Errorf("sandbox %s: %w", id, err))
		}
		maps.Copy(env, proxyEnv(token))
	}
	spec.Env = envList(env)

	cid, err := m.backend.Start(ctx, spec)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() {
		if err := m.backend.Remove(context.WithoutCancel(ctx), cid); err != nil {
			m.log.Error("sandbox: undo spawn: remove container", "sandbox", id, "err", err)
		}
	})

	running, err := m.markRunning(ctx, l, rec, cid, p.timeout, false)
	if err != nil {
		return fail(err)
	}
	return running, nil
}

// openDoorWithCA makes the sandbox's CA (its key beside the socket dir dir,
// never inside it: the resources' release removes both) and opens its door
// signing with it, handed to l's resources.
func (m *Manager) openDoorWithCA(l *live, rec *Record, dir string) error {
	ca, err := makeCA(rec.ID, dir, systemRoots(m.cfg.SystemRootsFile))
	if err != nil {
		return err
	}
	ds := m.doorSpec(l, rec)
	ds.CA = ca
	door, err := m.doors.OpenDoor(ds)
	if err != nil {
		return fmt.Errorf("open door: %w", err)
	}
	l.res.setDoor(door)
	return nil
}

// proxyEnv is how a workload finds its door: the socket, the token and the
// token's file.
func proxyEnv(token string) map[string]string {
	return map[string]string{
		"CLAWBOX_PROXY_SOCKET":     ContainerSocketPath,
		"CLAWBOX_PROXY_TOKEN":      token,
		"CLAWBOX_PROXY_TOKEN_FILE": ContainerTokenPath,
	}
}

// envList is env as a container's KEY=VALUE list, sorted.
func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

func (m *Manager) doorSpec(l *live, rec *Record) DoorSpec {
	return DoorSpec{
		SandboxID:    rec.ID,
		SocketPath:   filepath.Join(l.res.socketDir(), "proxy.sock"),
		Allowlist:    append([]string{}, m.cfg.NetworkAllowlist...),
		Narrow:       rec.Allowlist,
		Credentials:  append([]string(nil), rec.Credentials...),
		Authenticate: l.authenticate,
	}
}

// makeSocketDir creates a sandbox's socket directory (0755) with its door token
// file (0444; none when token is "", for container_direct).
func makeSocketDir(dir, token string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // beat the umask
		os.RemoveAll(dir)
		return fmt.Errorf("socket dir: %w", err)
	}
	if token == "" {
		return nil
	}
	if err := writeDoorToken(dir, token); err != nil {
		os.RemoveAll(dir)
		return err
	}
	return nil
}

// writeDoorToken writes the door token file (0444) into a socket dir that has
// none (a new sandbox's, or a pooled one's at its claim).
func writeDoorToken(dir, token string) error {
	if err := writeNewFile(filepath.Join(dir, "token"), []byte(token), 0o444); err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	return nil
}

func notFound(id string) error {
	return api.Errorf(api.CodeNotFound, "sandbox %q not found", id)
}

// Get returns one sandbox's record; an unknown id is 404 not_found.
func (m *Manager) Get(ctx context.Context, id string) (*Record, error) {
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	if l != nil {
		return l.snapshot(), nil
	}
	rec, err := m.store.GetSandbox(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, notFound(id)
	}
	return rec, err
}

// List returns the records, newest first (ties by id), filtered by status when it is
// not "" (an unknown status is 400 invalid_request).
func (m *Manager) List(ctx context.Context, status string) ([]*Record, error) {
	return m.Find(ctx, api.ContainerFilter{Status: status})
}

// Find returns the records matching f, newest first (ties by id): in f.Status when
// it is not "" (an unknown status is 400 invalid_request), carrying every label of
// f.Labels.
func (m *Manager) Find(ctx context.Context, f api.ContainerFilter) ([]*Record, error) {
	var st Status
	if f.Status != "" {
		s, err := ParseStatus(f.Status)
		if err != nil {
			return nil, err
		}
		st = s
	}
	recs, err := m.store.ListSandboxes(ctx, st)
	if err != nil {
		return nil, err
	}
	if len(f.Labels) > 0 {
		recs = slices.DeleteFunc(recs, func(r *Record) bool { return !matchLabels(r.Labels, f.Labels) })
	}
	sort.SliceStable(recs, func(i, j int) bool {
		if !recs[i].CreatedAt.Equal(recs[j].CreatedAt) {
			return recs[i].CreatedAt.After(recs[j].CreatedAt)
		}
		return recs[i].ID > recs[j].ID
	})
	return recs, nil
}

// Kill stops a running sandbox (status killed) and returns its final record. On a
// finished sandbox it returns the final record unchanged; an unknown id is 404
// not_found; a sandbox still being created is 409 conflict.
func (m *Manager) Kill(ctx context.Context, id string) (*Record, error) {
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	if l != nil {
		l.mu.Lock()
		st := l.rec.Status
		l.mu.Unlock()
		if st == StatusCreating {
			return nil, api.Errorf(api.CodeConflict, "sandbox %q is still being created", id)
		}
		m.finish(ctx, l, StatusKilled, nil)
	}
	rec, err := m.store.GetSandbox(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, notFound(id)
	}
	return rec, err
}

// Logs returns a sandbox's record with its logs: for a running sandbox what it has
// written so far, otherwise what was kept when it finished. Both are capped at the
// sandbox's log limit and redacted.
func (m *Manager) Logs(ctx context.Context, id string) (*Record, error) {
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	if l != nil {
		if rec := l.snapshot(); rec.Status == StatusRunning {
			logs, err := m.collectLogs(ctx, rec)
			switch {
			case err == nil:
				rec.Logs = logs
				return rec, nil
			case !errors.Is(err, errdefs.ErrNotFound):
				return nil, fmt.Errorf("sandbox %s: logs: %w", id, err)
			}
			// The container went away meanwhile: its final record has the logs.
			select {
			case <-l.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return m.storedLogs(ctx, id)
}

func (m *Manager) storedLogs(ctx context.Context, id string) (*Record, error) {
	rec, err := m.store.GetSandbox(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, notFound(id)
	}
	return rec, err
}

// redactMargin is how much output is read beyond a log cap, so that a secret
// straddling the cap is still recognised and redacted before the cut.
const redactMargin = 64 << 10

// collectLogs reads a container's output so far, redacts it and caps each stream at
// the sandbox's log limit.
func (m *Manager) collectLogs(ctx context.Context, rec *Record) (Logs, error) {
	limit := rec.LogLimit
	if limit <= 0 {
		limit = m.cfg.MaxLogBytes
	}
	stdout, stderr := &cappedBuffer{limit: limit + redactMargin}, &cappedBuffer{limit: limit + redactMargin}
	err := m.backend.Logs(ctx, rec.ContainerID, false, stdout, stderr)
	var logs Logs
	var t1, t2 bool
	logs.Stdout, t1 = m.capRedacted(stdout, limit)
	logs.Stderr, t2 = m.capRedacted(stderr, limit)
	logs.Truncated = t1 || t2
	return logs, err
}

func (m *Manager) capRedacted(c *cappedBuffer, limit int64) ([]byte, bool) {
	b, truncated := c.bytes()
	if m.redact != nil {
		b, _ = m.redact.Redact(b)
	}
	if int64(len(b)) > limit {
		b, truncated = b[:limit], true
	}
	return b, truncated
}

// Extend sets a running sandbox's deadline to timeout from now (shorter or longer
// than before; at most containers.max_timeout_ms), persists it and returns the
// record. An unknown id is 404 not_found; a sandbox that is not running (still
// being created, finishing or finished) is 409 conflict.
func (m *Manager) Extend(ctx context.Context, id string, timeoutMS int64) (*Record, error) {
	d, err := m.checkTimeout("timeout_ms", timeoutMS)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	if l == nil {
		rec, err := m.storedLogs(ctx, id)
		if err != nil {
			return nil, err
		}
		return nil, api.Errorf(api.CodeConflict, "sandbox %q is %s, not running: its deadline cannot change", id, rec.Status)
	}
	l.mu.Lock()
	if l.finishing || l.rec.Status != StatusRunning {
		st := l.rec.Status
		if l.finishing {
			st = "finishing"
		}
		l.mu.Unlock()
		return nil, api.Errorf(api.CodeConflict, "sandbox %q is %s, not running: its deadline cannot change", id, st)
	}
	rec := l.rec.clone()
	rec.Deadline = m.clock.Now().Add(d).UTC()
	if err := m.store.UpdateSandbox(ctx, rec, StatusRunning); err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("sandbox %s: record deadline: %w", id, err)
	}
	l.rec = rec.clone()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = m.clock.NewTimer(d)
	}
	l.mu.Unlock()
	select {
	case l.rearm <- struct{}{}:
	default:
	}
	m.event(rec, "deadline_set", "deadline "+rec.Deadline.Format(time.RFC3339Nano))
	m.log.Info("sandbox deadline set", "sandbox", id, "deadline", rec.Deadline)
	return rec, nil
}

// FollowLogs streams a running sandbox's output, demultiplexed, until it stops or ctx
// ends; for a finished sandbox it writes the kept logs and returns.
func (m *Manager) FollowLogs(ctx context.Context, id string, stdout, stderr io.Writer) error {
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	if l != nil {
		rec := l.snapshot()
		if rec.Status == StatusRunning {
			err := m.backend.Logs(ctx, rec.ContainerID, true, stdout, stderr)
			if err == nil || ctx.Err() != nil || errors.Is(err, errdefs.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("sandbox %s: follow logs: %w", id, err)
		}
	}
	rec, err := m.storedLogs(ctx, id)
	if err != nil {
		return err
	}
	if _, err := stdout.Write(rec.Logs.Stdout); err != nil {
		return err
	}
	_, err = stderr.Write(rec.Logs.Stderr)
	return err
}

// Authenticate reports whether token is the current door token of the running
// sandbox id (constant-time; false for any other sandbox or state).
func (m *Manager) Authenticate(id, token string) bool {
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	return l != nil && l.tokenHash != nil && l.authenticate(token)
}

// event records a lifecycle audit event.
func (m *Manager) event(rec *Record, event, reason string) {
	if m.audit == nil {
		return
	}
	r := audit.Record{
		Time:        m.clock.Now().UTC(),
		Kind:        audit.KindLifecycle,
		ContainerID: rec.ID,
		Event:       event,
		Reason:      reason,
	}
	if rec.ExitCode != nil {
		v := *rec.ExitCode
		r.ExitCode = &v
	}
	m.audit.Record(r)
}

// refreshMetrics recomputes the by-status gauges from the store.
func (m *Manager) refreshMetrics(ctx context.Context) {
	counts, err := m.store.CountSandboxes(context.WithoutCancel(ctx))
	if err != nil {
		m.log.Warn("sandbox metrics: count records", "err", err)
		return
	}
	m.metrics.set(counts)
}

// Wait blocks until sandbox id has reached a final status (or ctx ends) and returns
// its record.
func (m *Manager) Wait(ctx context.Context, id string) (*Record, error) {
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	if l != nil {
		select {
		case <-l.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return m.storedLogs(ctx, id)
}

// userIDs returns the numeric uid and gid of a checked "uid[:gid]" (gid = uid
// when absent).
func userIDs(user string) (int, int) {
	u, g, ok := strings.Cut(user, ":")
	uid, _ := strconv.Atoi(u)
	if !ok {
		return uid, uid
	}
	gid, _ := strconv.Atoi(g)
	return uid, gid
}
