package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
	cbclient "github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/wasm/exampletools"
)

// rssKB reads VmRSS of a /proc/<pid>/status file.
func rssKB(statusPath string) (int64, string) {
	f, err := os.Open(statusPath)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	var name string
	var kb int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "Name:"); ok {
			name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return kb, name
}

// shimRSSKB sums the RSS of every containerd-shim process (one per container): the
// engine's own per-sandbox cost, for comparison.
func shimRSSKB() int64 {
	paths, _ := filepath.Glob("/proc/[0-9]*/status")
	var sum int64
	for _, p := range paths {
		kb, name := rssKB(p)
		if strings.HasPrefix(name, "containerd-shim") {
			sum += kb
		}
	}
	return sum
}

type densityPoint struct {
	Sandboxes int `json:"sandboxes"`
	// RSSMB is read after a forced collection, RestRSSMB just before it.
	RSSMB      float64 `json:"rss_mb"`
	RestRSSMB  float64 `json:"rest_rss_mb"`
	HeapMB     float64 `json:"heap_inuse_mb"`
	Goroutines int     `json:"goroutines"`
	ShimRSSMB  float64 `json:"containerd_shim_rss_mb"`
}

// benchDensity starts a clawbox server in a child process (this binary with -serve,
// the same config as the main server), spawns up to maxN idle sandboxes (sleep) and
// reads the child's RSS (/proc/<pid>/status), goroutines and Go heap (its /metrics)
// at 0 and every step sandboxes, with the containerd-shims' RSS for scale.
func benchDensity(ctx context.Context, e *env, maxN, step int, heapProfile string) ([]Row, []densityPoint, error) {
	dir := filepath.Join(e.dir, "dens")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	cfg, err := newConfigWith(ctx, filepath.Join(dir, "cb"), exampletools.Install)
	if err != nil {
		return nil, nil, err
	}
	if err := e.serverSettings(cfg); err != nil {
		return nil, nil, err
	}
	cfg.Sandbox.CacheDir = e.cfg.Sandbox.CacheDir
	// The default idle time (60 s) only says when the pools drain; a short one lets
	// the readings below be taken at rest without a minute's wait.
	cfg.Sandbox.PoolIdleTimeoutMS = densityPoolIdle.Milliseconds()
	child, err := startChild(ctx, cfg, dir, heapProfile, e.logw)
	if err != nil {
		return nil, nil, err
	}
	defer child.Stop()
	var ids []string
	defer func() { e.killAllWith(child.api, ids) }()
	// One call of echo (its module is compiled, its pool filled), a reading while the
	// pool is full, then the readings at rest: after the pool's idle time, so that
	// the growth measured is the sandboxes'.
	if _, err := child.api.Execute(ctx, api.ExecuteRequest{Tool: "echo", Params: echoParams}); err != nil {
		return nil, nil, err
	}
	wait := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	if err := wait(densityPoolIdle / 2); err != nil {
		return nil, nil, err
	}
	busy, err := child.probe(ctx, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := wait(densityPoolIdle + time.Second); err != nil {
		return nil, nil, err
	}
	timeout := int64(15 * 60 * 1000)
	p, err := child.probe(ctx, 0)
	if err != nil {
		return nil, nil, err
	}
	points := []densityPoint{p}
	for len(ids) < maxN {
		if err := ctx.Err(); err != nil {
			return nil, points, err
		}
		info, err := child.api.Spawn(ctx, api.ContainerSpawnRequest{Task: "bench idle", Command: []string{"sleep", "900"},
			Capabilities: &api.ContainerCapabilities{Resources: &api.ContainerResources{TimeoutMS: &timeout}}})
		if err != nil {
			return nil, points, fmt.Errorf("spawn %d: %w", len(ids)+1, err)
		}
		ids = append(ids, info.ContainerID)
		if len(ids)%step == 0 {
			p, err := child.probe(ctx, len(ids))
			if err != nil {
				return nil, points, err
			}
			points = append(points, p)
		}
	}
	running, err := child.api.Containers(ctx, api.ContainerStatusRunning)
	if err != nil {
		return nil, points, err
	}
	if len(running) < maxN {
		return nil, points, fmt.Errorf("only %d of %d sandboxes running", len(running), maxN)
	}
	first, last := points[1], points[len(points)-1]
	span := float64(last.Sandboxes - first.Sandboxes)
	rows := []Row{{Section: "density", Name: "server RSS with 0 sandboxes, echo's pool full", Unit: "MB", Stat: one(busy.RSSMB),
		Note: fmt.Sprintf("before the forced collection %.1f MB; Go heap %.1f MB, %d goroutines", busy.RestRSSMB, busy.HeapMB, busy.Goroutines)}}
	for _, p := range points {
		rows = append(rows, Row{Section: "density", Name: fmt.Sprintf("server RSS with %d sandboxes", p.Sandboxes), Unit: "MB", Stat: one(p.RSSMB),
			Note: fmt.Sprintf("before the forced collection %.1f MB; Go heap %.1f MB, %d goroutines, containerd-shims %.0f MB", p.RestRSSMB, p.HeapMB, p.Goroutines, p.ShimRSSMB)})
	}
	shim := fmt.Sprintf("containerd-shim RSS per sandbox (%d→%d)", first.Sandboxes, last.Sandboxes)
	rows = append(rows,
		Row{Section: "density", Name: shim, Unit: "MB", Stat: one((last.ShimRSSMB - first.ShimRSSMB) / span),
			Note: "the engine's own per-container process, for scale"},
		Row{Section: "density", Name: fmt.Sprintf("server RSS per sandbox (%d→%d)", first.Sandboxes, last.Sandboxes), Unit: "MB", Stat: one((last.RSSMB - first.RSSMB) / span),
			Baseline: shim},
		Row{Section: "density", Name: fmt.Sprintf("server Go heap per sandbox (%d→%d)", first.Sandboxes, last.Sandboxes), Unit: "KB", Stat: one((last.HeapMB - first.HeapMB) * 1024 / span)},
		Row{Section: "density", Name: fmt.Sprintf("server goroutines per sandbox (%d→%d)", first.Sandboxes, last.Sandboxes), Unit: "goroutines", Stat: one(float64(last.Goroutines-first.Goroutines) / span)},
	)
	return rows, points, nil
}

// densityPoolIdle is the density server's sandbox.pool_idle_timeout_ms.
const densityPoolIdle = 3 * time.Second

func one(v float64) Stat { return Stat{N: 1, Min: v, Median: v, P90: v, Max: v} }

// killAll kills sandboxes of the main server, a few at a time (not timed).
func (e *env) killAll(ids []string) { e.killAllWith(e.api, ids) }

func (e *env) killAllWith(c *cbclient.Client, ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sem := make(chan struct{}, 6)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.Kill(ctx, id)
		}()
	}
	wg.Wait()
}

// benchReaper spawns sandboxes with a short lifetime and watches, every 5 ms, how long
// after its deadline each one reports timed_out and how long until its container is
// gone from the engine.
func benchReaper(ctx context.Context, e *env, n int, lifetime time.Duration) ([]Row, error) {
	ms := lifetime.Milliseconds()
	type result struct {
		status, removed time.Duration
		err             error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		info, err := e.api.Spawn(ctx, api.ContainerSpawnRequest{Task: "bench reaper", Command: []string{"sleep", "600"},
			Capabilities: &api.ContainerCapabilities{Resources: &api.ContainerResources{TimeoutMS: &ms}}})
		if err != nil {
			return nil, err
		}
		if info.Deadline == nil {
			e.killAll([]string{info.ContainerID})
			return nil, fmt.Errorf("spawn answered no deadline")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.watchReap(ctx, info.ContainerID, *info.Deadline)
		}()
	}
	wg.Wait()
	var st, rm []time.Duration
	for _, r := range results {
		if r.err != nil {
			return nil, r.err
		}
		st = append(st, r.status)
		rm = append(rm, r.removed)
	}
	raw, err := rawStopRemove(ctx, e, n, lifetime)
	if err != nil {
		return nil, err
	}
	base := "raw Engine API stop+remove"
	return []Row{
		{Section: "reaper", Name: base, Unit: "ms", Stat: summarize(msAll(raw)),
			Note: fmt.Sprintf("baseline: the same hardened container, stop with the same grace (%v), then remove", e.cfg.Containers.StopGrace)},
		{Section: "reaper", Name: "deadline → status timed_out", Unit: "ms", Stat: summarize(msAll(st)), Baseline: base,
			Note: fmt.Sprintf("lifetime %v, %d sandboxes spawned one after the other, polled every 5 ms", lifetime, n)},
		{Section: "reaper", Name: "deadline → container removed", Unit: "ms", Stat: summarize(msAll(rm)), Baseline: base},
	}, nil
}

// rawStopRemove times what the reaper must do at least: stop (SIGTERM, the configured
// grace) and remove the same hardened container through the Engine API, one after
// the other (the sandboxes above reach their deadlines a spawn apart), after they
// ran as long as the sandboxes' lifetime.
func rawStopRemove(ctx context.Context, e *env, n int, lifetime time.Duration) ([]time.Duration, error) {
	h, err := e.hardened()
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, n)
	defer func() {
		for _, id := range ids {
			e.removeContainer(id)
		}
	}()
	for i := 0; i < n; i++ {
		c, err := e.docker.ContainerCreate(ctx, h.createOptions(fmt.Sprintf("clawbox-bench-stop-%s-%d", e.runID, i), []string{"sleep", "600"}))
		if err != nil {
			return nil, err
		}
		ids = append(ids, c.ID)
		if _, err := e.docker.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
			return nil, err
		}
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(lifetime):
	}
	secs := int(math.Ceil(e.cfg.Containers.StopGrace.Seconds()))
	var out []time.Duration
	for _, id := range ids {
		t0 := time.Now()
		if _, err := e.docker.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
			return nil, err
		}
		if _, err := e.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

func (e *env) watchReap(ctx context.Context, id string, deadline time.Time) (r struct {
	status, removed time.Duration
	err             error
}) {
	limit := time.Now().Add(time.Until(deadline) + 2*time.Minute)
	var statusAt, removedAt time.Time
	for statusAt.IsZero() || removedAt.IsZero() {
		if time.Now().After(limit) {
			r.err = fmt.Errorf("sandbox %s not reaped 2 minutes after its deadline", id)
			return r
		}
		if statusAt.IsZero() {
			info, err := e.api.Container(ctx, id)
			if err != nil {
				r.err = err
				return r
			}
			if info.Status != api.ContainerStatusRunning && info.Status != api.ContainerStatusCreating {
				if info.Status != api.ContainerStatusTimedOut {
					r.err = fmt.Errorf("sandbox %s ended %s, want timed_out", id, info.Status)
					return r
				}
				statusAt = time.Now()
			}
		}
		if removedAt.IsZero() {
			if _, err := e.docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); cerrdefs.IsNotFound(err) {
				removedAt = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			r.err = ctx.Err()
			return r
		case <-time.After(5 * time.Millisecond):
		}
	}
	r.status, r.removed = statusAt.Sub(deadline), removedAt.Sub(deadline)
	return r
}
