package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/config"

	cbclient "github.com/clawbox/clawbox/client"
)

// poolSize is the warm pool of the pool section's server.
const poolSize = 4

// benchPool compares a spawn that claims from a warm pool with a cold spawn of
// the same image, command and resource profile: a second server runs beside the
// bench's own with [[containers.warm_pool]] of the bench image (size 4). The
// hits and the cold spawns are interleaved; before each hit the pool is full
// again, and the time it took to get there after the previous claim is the
// refill row. Then a burst of burst concurrent spawns against a full pool of 4:
// the first claims, the rest cold, none may fail.
func benchPool(ctx context.Context, e *env, iters, burst int) (rows []Row, err error) {
	c, err := newConfig(ctx, filepath.Join(e.dir, "wp"))
	if err != nil {
		return nil, err
	}
	if err := e.serverSettings(c); err != nil {
		return nil, err
	}
	c.Containers.WarmPool = []config.WarmPool{{Name: "bench", Image: e.image, Size: poolSize}}
	srv, err := startServer(ctx, c, e.logw)
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := srv.Stop(); serr != nil && !errors.Is(serr, context.Canceled) && err == nil {
			err = fmt.Errorf("pool server stop: %w", serr)
		}
	}()
	tok, err := c.Token()
	if err != nil {
		return nil, err
	}
	pc, err := cbclient.New(srv.addr, cbclient.Options{Token: tok})
	if err != nil {
		return nil, err
	}
	full := func() (time.Duration, error) {
		t0 := time.Now()
		deadline := t0.Add(2 * time.Minute)
		for {
			p, err := poolState(ctx, pc)
			if err != nil {
				return 0, err
			}
			if p.Ready == p.Size {
				return time.Since(t0), nil
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("the pool did not fill in 2 minutes: %+v", p)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if _, err := full(); err != nil {
		return nil, err
	}
	cmd := []string{"sleep", "600"}
	spawn := func(cl *cbclient.Client, wantWarm bool) (time.Duration, error) {
		t0 := time.Now()
		info, err := cl.Spawn(ctx, api.ContainerSpawnRequest{Task: "bench pool", Command: cmd})
		d := time.Since(t0)
		if err != nil {
			return 0, err
		}
		defer cl.Kill(context.WithoutCancel(ctx), info.ContainerID)
		if info.Warm != wantWarm || info.Status != api.ContainerStatusRunning {
			return 0, fmt.Errorf("spawn answered warm=%v status %s, want warm=%v running", info.Warm, info.Status, wantWarm)
		}
		return d, nil
	}
	var hits, colds, refills []time.Duration
	for i := 0; i < iters; i++ {
		d, err := spawn(pc, true)
		if err != nil {
			return nil, fmt.Errorf("pool hit: %w", err)
		}
		hits = append(hits, d)
		t0 := time.Now()
		if d, err = spawn(e.api, false); err != nil {
			return nil, fmt.Errorf("cold spawn: %w", err)
		}
		colds = append(colds, d)
		if _, err := full(); err != nil {
			return nil, err
		}
		// From the claim's answer (just before the cold spawn) until full.
		refills = append(refills, time.Since(t0))
	}
	rows = []Row{
		{Section: "warm pool", Name: "cold spawn → running", Unit: "ms", Stat: summarize(msAll(colds)),
			Note: "the bench server (no pool): same image, command and resource profile"},
		{Section: "warm pool", Name: "pool hit: spawn → running (claimed)", Unit: "ms", Stat: summarize(msAll(hits)), Baseline: "cold spawn → running",
			Note: fmt.Sprintf("a server with a warm pool of %d of the same image and profile, full before each spawn", poolSize)},
		{Section: "warm pool", Name: "refill after one claim", Unit: "ms", Stat: summarize(msAll(refills)),
			Note: "from the claim's answer until the pool is full again (a cold spawn and its kill on the other server meanwhile)"},
	}

	// The burst.
	type result struct {
		d    time.Duration
		warm bool
		err  error
	}
	res := make([]result, burst)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			info, err := pc.Spawn(ctx, api.ContainerSpawnRequest{Task: "bench pool burst", Command: cmd})
			res[i] = result{d: time.Since(t0), err: err}
			if err == nil {
				res[i].warm = info.Warm
				defer pc.Kill(context.WithoutCancel(ctx), info.ContainerID)
			}
		}()
	}
	close(start)
	wg.Wait()
	var warm, cold []time.Duration
	var failed []string
	for _, r := range res {
		switch {
		case r.err != nil:
			failed = append(failed, r.err.Error())
		case r.warm:
			warm = append(warm, r.d)
		default:
			cold = append(cold, r.d)
		}
	}
	rows = append(rows,
		Row{Section: "warm pool", Name: fmt.Sprintf("burst of %d, pool of %d: claims", burst, poolSize), Unit: "ms", Stat: summarize(msAll(warm)),
			Note: fmt.Sprintf("%d claimed, %d cold, %d failed", len(warm), len(cold), len(failed))},
		Row{Section: "warm pool", Name: fmt.Sprintf("burst of %d, pool of %d: cold fallbacks", burst, poolSize), Unit: "ms", Stat: summarize(msAll(cold))},
	)
	if len(failed) > 0 {
		return rows, fmt.Errorf("%d of the burst's spawns failed, the first: %s", len(failed), failed[0])
	}
	if d, err := full(); err == nil {
		rows = append(rows, Row{Section: "warm pool", Name: fmt.Sprintf("refill of %d after the burst", poolSize), Unit: "ms", Stat: summarize(msAll([]time.Duration{d})),
			Note: "from the burst's last answer (its sandboxes being killed meanwhile)"})
	} else {
		return rows, err
	}
	return rows, nil
}

// poolState reads the first warm pool from a detailed GET /health.
func poolState(ctx context.Context, c *cbclient.Client) (api.WarmPoolHealth, error) {
	h, err := c.Health(ctx)
	if err != nil {
		return api.WarmPoolHealth{}, err
	}
	d, _ := h.Containers()
	if len(d.Pools) == 0 {
		return api.WarmPoolHealth{}, errors.New("no warm pool in the server's health")
	}
	return d.Pools[0], nil
}
