package sandbox

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/uuid"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/supervisor"
)

// This file is the warm pool (docs/warm-pool.md): per configured pool, started,
// hardened, idle sandboxes whose supervisor waits for a main command, claimed by
// matching spawns.
//
// Ownership: every pooled sandbox is in exactly one place. While it fills or waits
// it is its pool's (filling counts it, ready holds it, ids names it so the reaper
// never takes it for an orphan); a claim moves it, under poolMu, into a store
// record and m.live, after which it is an ordinary sandbox and never goes back;
// an eviction, a failed fill or shutdown removes it. Pooled sandboxes have no
// store record: a server that dies leaves their containers to the next start's
// reconciliation, which removes them as orphans and fills the pools anew.

const (
	// poolFillConcurrency bounds the fills in flight per pool.
	poolFillConcurrency = 2
	// poolReadyTimeout bounds how long a fill waits for the new supervisor to
	// answer.
	poolReadyTimeout = 60 * time.Second
	// poolBackoffMax caps the wait after failed fills (doubling from 1s).
	poolBackoffMax = time.Minute
)

// pool is one [[containers.warm_pool]] entry at run time. Every field below cfg
// is guarded by Manager.poolMu.
type pool struct {
	cfg  PoolConfig
	kick chan struct{} // capacity 1: "look again"

	ready   []*pooled       // claimable, oldest first
	filling int             // fills in flight
	ids     map[string]bool // every sandbox ready or filling

	failures int       // consecutive failed fills
	lastErr  string    // the last fill's error, "" after a success
	retryAt  time.Time // no fill before this (back-off)
	hits     int64
	misses   int64
	refilled int64 // successful fills
	// imageKnown is set at the first fill; imageMain says whether the image
	// has an entrypoint or cmd (a spawn naming no command needs one).
	imageKnown, imageMain bool
}

// pooled is one ready sandbox of a pool.
type pooled struct {
	id  string
	cid string // the engine's container id
	res *hostResources
	// entrypoint and cmd are the image's (what Docker would run).
	entrypoint, cmd []string
}

func (p *pool) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Pools returns the state of every warm pool, in configuration order.
func (m *Manager) Pools() []api.WarmPoolHealth {
	m.poolMu.Lock()
	defer m.poolMu.Unlock()
	var out []api.WarmPoolHealth // nil without pools
	for _, p := range m.pools {
		s := api.WarmPoolHealth{Name: p.cfg.Name, Image: p.cfg.Image, Size: p.cfg.Size, Ready: len(p.ready), Filling: p.filling,
			Hits: p.hits, Misses: p.misses, Refilled: p.refilled, Failures: p.failures, LastError: p.lastErr}
		if p.failures > 0 && !p.retryAt.IsZero() {
			t := p.retryAt.UTC()
			s.RetryAt = &t
		}
		out = append(out, s)
	}
	return out
}

// countClaim counts a spawn that matched p: a hit when it claimed, else a miss.
func (m *Manager) countClaim(p *pool, hit bool) {
	result := "miss"
	m.poolMu.Lock()
	if hit {
		result = "hit"
		p.hits++
	} else {
		p.misses++
	}
	m.poolMu.Unlock()
	m.metrics.poolClaims.WithLabelValues(p.cfg.Name, result).Inc()
}

// readyChangedLocked publishes p's ready count; poolMu must be held.
func (m *Manager) readyChangedLocked(p *pool) {
	m.metrics.poolReady.WithLabelValues(p.cfg.Name).Set(float64(len(p.ready)))
}

// pokePools tells every pool to look again (a sandbox ended: there may be room).
func (m *Manager) pokePools() {
	m.poolMu.Lock()
	defer m.poolMu.Unlock()
	for _, p := range m.pools {
		p.poke()
	}
}

// startPools makes the configured pools and starts one filler per pool.
func (m *Manager) startPools() error {
	if len(m.cfg.Pools) == 0 {
		return nil
	}
	if _, ok := m.backend.(ImageDefaulter); !ok {
		return errors.New("the container backend cannot resolve image commands: warm pools are not supported on it")
	}
	m.poolMu.Lock()
	for _, pc := range m.cfg.Pools {
		p := &pool{cfg: pc, kick: make(chan struct{}, 1), ids: map[string]bool{}}
		m.pools = append(m.pools, p)
		m.metrics.poolReady.WithLabelValues(pc.Name).Set(0)
		m.metrics.poolClaims.WithLabelValues(pc.Name, "hit")
		m.metrics.poolClaims.WithLabelValues(pc.Name, "miss")
	}
	pools := slices.Clone(m.pools)
	m.poolMu.Unlock()
	for _, p := range pools {
		m.wg.Add(1)
		go m.runPool(p)
	}
	return nil
}

// runPool keeps p at its size: it starts fills while the pool is short, there is
// room under max_containers and no back-off is pending, and waits for a kick
// (a claim, an eviction, a fill's end, a sandbox's end), the back-off's end or,
// while it is short without room, the reaper interval. Shutdown stops it.
func (m *Manager) runPool(p *pool) {
	defer m.wg.Done()
	for {
		var wait time.Duration
		m.poolMu.Lock()
		if !m.poolsClosed {
			wait = p.retryAt.Sub(m.clock.Now())
			for wait <= 0 && len(p.ready)+p.filling < p.cfg.Size && p.filling < poolFillConcurrency && m.roomLocked(1) {
				p.filling++
				m.wg.Add(1)
				go m.fillOne(p)
			}
			if wait <= 0 && len(p.ready)+p.filling < p.cfg.Size && p.filling == 0 {
				// Short and no room: room can appear without a kick (a failed
				// spawn's record removed); look again at the reaper's pace.
				wait = m.cfg.ReaperInterval
			}
		}
		m.poolMu.Unlock()
		var retry <-chan time.Time
		var t Timer
		if wait > 0 {
			t = m.clock.NewTimer(wait)
			retry = t.C()
		}
		select {
		case <-m.ctx.Done():
			if t != nil {
				t.Stop()
			}
			return
		case <-p.kick:
		case <-retry:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// roomLocked reports whether n more sandboxes fit under max_containers, counting
// the active records and every pooled sandbox. poolMu must be held: every record
// creation happens under it too, so the count cannot change meanwhile.
func (m *Manager) roomLocked(n int) bool {
	counts, err := m.store.CountSandboxes(m.ctx)
	if err != nil {
		m.log.Warn("sandbox pool: count records", "err", err)
		return false
	}
	return counts[StatusCreating]+counts[StatusRunning]+m.pooledLocked()+n <= m.cfg.MaxContainers
}

// pooledLocked is how many sandboxes the pools hold (ready, filling, evicting).
func (m *Manager) pooledLocked() int {
	n := m.evicting
	for _, p := range m.pools {
		n += len(p.ready) + p.filling
	}
	return n
}

// isPooled reports whether id is a sandbox a pool holds (the reaper leaves it).
func (m *Manager) isPooled(id string) bool {
	m.poolMu.Lock()
	defer m.poolMu.Unlock()
	for _, p := range m.pools {
		if p.ids[id] {
			return true
		}
	}
	return false
}

// fillOne runs one fill and records its outcome (back-off on failure).
func (m *Manager) fillOne(p *pool) {
	defer m.wg.Done()
	e, err := m.fill(p)
	m.poolMu.Lock()
	p.filling--
	switch {
	case err == nil && m.poolsClosed:
		// Shutdown began during the fill: it is not claimable any more.
		delete(p.ids, e.id)
		m.poolMu.Unlock()
		m.removePooled(e)
		return
	case err == nil:
		p.ready = append(p.ready, e)
		p.imageKnown, p.imageMain = true, len(e.entrypoint)+len(e.cmd) > 0
		p.failures, p.lastErr, p.retryAt = 0, "", time.Time{}
		p.refilled++
		m.readyChangedLocked(p)
	case m.ctx.Err() != nil:
		// Shutdown: not a failure of the pool.
	default:
		p.failures++
		p.lastErr = err.Error()
		back := time.Second << min(p.failures-1, 6)
		p.retryAt = m.clock.Now().Add(min(back, poolBackoffMax))
		m.metrics.poolFillFailures.WithLabelValues(p.cfg.Name).Inc()
		m.log.Error("sandbox pool: fill failed", "pool", p.cfg.Name, "failures", p.failures, "retry_in", min(back, poolBackoffMax), "err", err)
	}
	m.poolMu.Unlock()
	p.poke()
}

// fill starts one pooled sandbox and waits for its supervisor to answer. The
// sandbox has an id, a socket dir with a supervisor token and no door token, no
// door, no CA and nothing of any request: the claim brings all of those.
func (m *Manager) fill(p *pool) (*pooled, error) {
	ctx := m.ctx
	id := "clawbox-" + uuid.NewString()
	dir := filepath.Join(m.cfg.ProxiesDir, id)
	m.poolMu.Lock()
	p.ids[id] = true // before the container exists: the reaper must not take it
	m.poolMu.Unlock()
	e := &pooled{id: id, res: newHostResources(id, dir, m.log)}
	fail := func(err error) (*pooled, error) {
		m.removePooled(e)
		m.poolMu.Lock()
		delete(p.ids, id)
		m.poolMu.Unlock()
		return nil, err
	}
	if err := makeSocketDir(dir, ""); err != nil {
		return fail(err)
	}
	supToken, _ := newToken()
	if err := writeSupervisorToken(dir, supToken); err != nil {
		return fail(err)
	}
	link, err := listenSupervisor(id, dir, supToken, m.log)
	if err != nil {
		return fail(err)
	}
	e.res.setSupervisor(link)
	// The container's own env: what every sandbox with a door has, nothing of a
	// request (the token comes with the claim).
	env := doorEnv()
	env["CLAWBOX_CONTAINER_ID"] = id
	env["CLAWBOX_PROXY_SOCKET"] = ContainerSocketPath
	env["CLAWBOX_PROXY_TOKEN_FILE"] = ContainerTokenPath
	spec := Spec{
		ID: id, Image: p.cfg.Image, Policy: PolicyContainer, Instance: m.cfg.InstanceID, User: m.cfg.User,
		MemoryBytes: p.cfg.MemoryMB << 20, CPUShares: p.cfg.CPUShares, NanoCPUs: p.cfg.nanoCPUs(),
		PidsLimit: m.cfg.PidsLimit, TmpfsMB: m.cfg.TmpfsSizeMB, Nofile: m.cfg.Nofile, Runtime: m.cfg.Runtime,
		SocketDir: dir, Supervisor: m.supervisorBin, Entrypoint: WaitMainSupervisorArgs(m.cfg.MaxFileBytes, true),
		WaitMain: true, Pool: p.cfg.Name,
	}
	spec.Env = envList(env)
	ep, cmd, err := m.backend.(ImageDefaulter).ImageDefaults(ctx, p.cfg.Image)
	if err != nil {
		return fail(fmt.Errorf("image %s: %w", p.cfg.Image, err))
	}
	e.entrypoint, e.cmd = ep, cmd
	cid, err := m.backend.Start(ctx, spec)
	if err != nil {
		return fail(err)
	}
	e.cid = cid
	rctx, cancel := context.WithTimeout(ctx, poolReadyTimeout)
	defer cancel()
	for {
		c, err := link.client(rctx)
		if err == nil {
			if _, err = c.ListFiles(rctx, "/"); err == nil {
				return e, nil
			}
		}
		if rctx.Err() != nil {
			return fail(fmt.Errorf("its supervisor did not answer within %s: %v", poolReadyTimeout, err))
		}
		if c, ierr := m.backend.Inspect(rctx, cid); ierr == nil && !c.Running {
			return fail(fmt.Errorf("the pooled container exited (code %d) before its supervisor answered", c.Exit.Code))
		}
	}
}

// removePooled removes a pooled sandbox's container and host resources.
func (m *Manager) removePooled(e *pooled) {
	if e.cid != "" {
		ctx, cancel := context.WithTimeout(context.Background(), finishTimeout)
		defer cancel()
		if err := m.backend.Remove(ctx, e.cid); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			m.log.Error("sandbox pool: remove container (the reaper will retry)", "sandbox", e.id, "err", err)
		}
	}
	e.res.release()
}

// matchPool returns the pool a validated spawn may claim from, nil when none
// matches: policy container, no workspace, the pool's image and resource
// profile, and a main command to give it (an idle spawn has none).
func (m *Manager) matchPool(p *plan, command []string, o SpawnOptions) *pool {
	if p.policy != PolicyContainer || p.workspace || o.Workspace != "" {
		return nil
	}
	m.poolMu.Lock()
	defer m.poolMu.Unlock()
	for _, pl := range m.pools {
		c := pl.cfg
		if c.Image == p.image && c.MemoryMB == p.memoryMB && c.CPUShares == p.cpuShares && c.nanoCPUs() == p.nanoCPUs {
			if len(command) == 0 && pl.imageKnown && !pl.imageMain {
				return nil // an idle sandbox: no main command to give a pooled one
			}
			return pl
		}
	}
	return nil
}

// takeReadyLocked removes and returns the oldest ready sandbox of p whose supervisor
// is still connected; the dead ones it meets are removed in the background.
// poolMu must be held.
func (m *Manager) takeReadyLocked(p *pool) *pooled {
	for len(p.ready) > 0 {
		e := p.ready[0]
		p.ready = p.ready[1:]
		m.readyChangedLocked(p)
		if k := e.res.supervisorLink(); k != nil && k.connected() {
			return e
		}
		delete(p.ids, e.id)
		m.log.Warn("sandbox pool: a ready sandbox lost its supervisor: removed", "pool", p.cfg.Name, "sandbox", e.id)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.removePooled(e)
		}()
		p.poke()
	}
	return nil
}

// createRecord inserts rec (status creating) under max_containers, counting the
// pooled sandboxes. With claim from a pool, it first takes a ready sandbox of
// that pool, gives rec its id and returns it (nil, nil: the pool is empty, the
// caller starts cold). Without a claim, when there is no room but a pool holds
// a ready sandbox, that one is evicted to make room.
func (m *Manager) createRecord(ctx context.Context, rec *Record, claim *pool) (*pooled, error) {
	m.poolMu.Lock()
	var e *pooled
	if claim != nil {
		if e = m.takeReadyLocked(claim); e == nil {
			m.poolMu.Unlock()
			return nil, nil
		}
		rec.ID = e.id
		// Counted as pooled until the record exists: the reaper sees one or
		// the other, never neither.
		m.evicting++
	}
	for {
		max := m.cfg.MaxContainers - m.pooledLocked()
		if e != nil {
			max++ // the claimed one leaves the pool as its record arrives
		}
		err := m.store.CreateSandbox(ctx, rec, max)
		if err == nil || !errors.Is(err, errdefs.ErrResourceExhausted) || e != nil {
			if e != nil {
				m.evicting--
				delete(claim.ids, e.id)
				if err != nil {
					m.poolMu.Unlock()
					m.removePooled(e)
					claim.poke()
					return nil, err
				}
			}
			m.poolMu.Unlock()
			return e, err
		}
		// No room: take it from a pool when one holds a ready sandbox.
		var victim *pooled
		var from *pool
		for _, p := range m.pools {
			if len(p.ready) > 0 {
				victim, from = p.ready[len(p.ready)-1], p
				from.ready = from.ready[:len(from.ready)-1]
				m.readyChangedLocked(from)
				break
			}
		}
		if victim == nil {
			m.poolMu.Unlock()
			return nil, err
		}
		m.evicting++
		m.poolMu.Unlock()
		m.log.Info("sandbox pool: evicted a ready sandbox to make room for a spawn", "pool", from.cfg.Name, "sandbox", victim.id)
		m.removePooled(victim)
		m.poolMu.Lock()
		m.evicting--
		delete(from.ids, victim.id)
	}
}

// claim makes the pooled sandbox e, whose record rec was just created, the
// spawn's sandbox: door token, CA and door, a new supervisor token, then the
// main command with the spawn's env. l is rec's live side (its resources are
// e's). On error the caller undoes everything and removes the container.
func (m *Manager) claim(ctx context.Context, l *live, rec *Record, e *pooled, p *plan, command []string, token string) error {
	dir := l.res.socketDir()
	if err := writeDoorToken(dir, token); err != nil {
		return err
	}
	env, err := m.spawnEnv(rec.ID, p)
	if err != nil {
		return err
	}
	if err := m.openDoorWithCA(l, rec, dir); err != nil {
		return err
	}
	maps.Copy(env, proxyEnv(token))
	// A new supervisor token: the pool-time one is refused from now on.
	link := l.res.supervisorLink()
	if link == nil {
		return errors.New("the pooled sandbox has no supervisor link")
	}
	supToken, _ := newToken()
	if err := replaceSupervisorToken(dir, supToken); err != nil {
		return err
	}
	link.ln.SetToken(supToken)
	main := append(slices.Clone(e.entrypoint), command...)
	if len(command) == 0 {
		main = append(main, e.cmd...)
	}
	c, err := link.client(ctx)
	if err != nil {
		return err
	}
	err = c.StartMain(ctx, supervisor.MainRequest{Cmd: main, Env: env})
	if errors.Is(err, errdefs.ErrNotFound) {
		// As on a cold start: the supervisor ends with 127 and the monitor
		// records the sandbox failed.
		m.log.Info("sandbox: claimed sandbox's command was not found", "sandbox", rec.ID, "err", err)
		return nil
	}
	return err
}

// replaceSupervisorToken writes a new supervisor token file and renames it over
// the old one (0444: never rewritten in place), so the bind mount shows it.
func replaceSupervisorToken(dir, token string) error {
	tmp := filepath.Join(dir, supervisorTokenName+".new")
	if err := writeNewFile(tmp, []byte(token), 0o444); err != nil {
		return fmt.Errorf("supervisor token file: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, supervisorTokenName)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("supervisor token file: %w", err)
	}
	return nil
}

// shutdownPools removes every ready pooled sandbox (pooled sandboxes never
// outlive the server: they hold nobody's work) and waits for nothing else: the
// fills in flight see the manager closed and remove their own.
func (m *Manager) shutdownPools() {
	m.poolMu.Lock()
	m.poolsClosed = true
	var all []*pooled
	for _, p := range m.pools {
		all = append(all, p.ready...)
		for _, e := range p.ready {
			delete(p.ids, e.id)
		}
		p.ready = nil
		m.readyChangedLocked(p)
	}
	m.poolMu.Unlock()
	var wg sync.WaitGroup
	for _, e := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.removePooled(e)
		}()
	}
	wg.Wait()
}

// validSandboxID reports whether id has the form of a sandbox id,
// "clawbox-<uuid>" with a canonical lower-case uuid (so it is safe in a path).
func validSandboxID(id string) bool {
	rest, ok := strings.CutPrefix(id, "clawbox-")
	if !ok || len(rest) != 36 {
		return false
	}
	u, err := uuid.Parse(rest)
	return err == nil && u.String() == rest
}
