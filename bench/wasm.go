package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/tetratelabs/wazero"
	wapi "github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/wasm"
	"github.com/clawbox/clawbox/internal/wasm/exampletools"
)

var echoParams = json.RawMessage(`{"hello":"world","n":42}`)

// bareWazero is the baseline: the echo module run by wazero alone, in this process,
// with the same compilation cache and a stub clawbox host module (echo makes no host
// call): per call a fresh instance, _initialize, clawbox_run, close.
type bareWazero struct {
	rt       wazero.Runtime
	cache    wazero.CompilationCache
	compiled wazero.CompiledModule
}

func newBareWazero(ctx context.Context, cacheDir string, bin []byte) (*bareWazero, error) {
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		return nil, err
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache).WithCloseOnContextDone(true))
	b := &bareWazero{rt: rt, cache: cache}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		b.Close(ctx)
		return nil, err
	}
	b.compiled, err = rt.CompileModule(ctx, bin)
	if err != nil {
		b.Close(ctx)
		return nil, err
	}
	hb := rt.NewHostModuleBuilder("clawbox")
	for _, f := range b.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod != "clawbox" {
			continue
		}
		results := f.ResultTypes()
		hb.NewFunctionBuilder().WithGoModuleFunction(wapi.GoModuleFunc(func(_ context.Context, _ wapi.Module, stack []uint64) {
			if len(results) > 0 {
				stack[0] = wapi.EncodeI32(-1)
			}
		}), f.ParamTypes(), results).Export(name)
	}
	if _, err := hb.Instantiate(ctx); err != nil {
		b.Close(ctx)
		return nil, err
	}
	return b, nil
}

func (b *bareWazero) run(ctx context.Context, params []byte) ([]byte, error) {
	var out bytes.Buffer
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions().
		WithStdin(bytes.NewReader(params)).WithStdout(&out).WithStderr(io.Discard).
		WithSysWalltime().WithSysNanotime()
	mod, err := b.rt.InstantiateModule(ctx, b.compiled, cfg)
	if err != nil {
		return nil, err
	}
	defer mod.Close(ctx)
	if _, err := mod.ExportedFunction("_initialize").Call(ctx); err != nil {
		return nil, err
	}
	if _, err := mod.ExportedFunction("clawbox_run").Call(ctx); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func (b *bareWazero) Close(ctx context.Context) {
	b.rt.Close(ctx)
	b.cache.Close(ctx)
}

// variant is one way of doing the same thing, timed call by call.
type variant struct {
	name string
	fn   func() error
	// pause, if set, is an idle time before each call (not timed): it shows what a
	// background refill (the engine's instance pool) can hide between spaced calls.
	pause time.Duration
	// baseline names the variant this one is compared with; empty: the first.
	baseline string
}

// wasmVariants are the echo call done by bare wazero (the baseline), by the engine
// in-process without and with its pool of pre-initialised instances, and through
// POST /execute. close releases them.
func wasmVariants(ctx context.Context, e *env) (vs []variant, closeAll func(), err error) {
	var closers []func()
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	bin, err := exampletools.Module("echo")
	if err != nil {
		return nil, closeAll, err
	}
	manBytes, err := exampletools.Manifest("echo")
	if err != nil {
		return nil, closeAll, err
	}
	var man api.ToolManifest
	if err := json.Unmarshal(manBytes, &man); err != nil {
		return nil, closeAll, err
	}
	bare, err := newBareWazero(ctx, e.cfg.Sandbox.CacheDir, bin)
	if err != nil {
		return nil, closeAll, fmt.Errorf("bare wazero: %w", err)
	}
	closers = append(closers, func() { bare.Close(context.WithoutCancel(ctx)) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	modules := map[string]*wasm.Module{}
	for _, pool := range []struct {
		name string
		size int
	}{{"unpooled", -1}, {"pooled", 0}} {
		eng, err := wasm.NewEngine(ctx, wasm.Config{CacheDir: e.cfg.Sandbox.CacheDir, PoolSize: pool.size, Logger: quiet})
		if err != nil {
			return nil, closeAll, err
		}
		closers = append(closers, func() { eng.Close(context.WithoutCancel(ctx)) })
		m, err := eng.Compile(ctx, "echo", bin, &man)
		if err != nil {
			return nil, closeAll, err
		}
		modules[pool.name] = m
	}
	pooled := func() error {
		_, err := modules["pooled"].Execute(ctx, wasm.Call{Params: echoParams})
		return err
	}
	execute := func() error {
		res, err := e.api.Execute(ctx, api.ExecuteRequest{Tool: "echo", Params: echoParams})
		if err == nil && !bytes.Contains(res.Output, []byte(`"hello"`)) {
			err = fmt.Errorf("unexpected output %s", res.Output)
		}
		return err
	}
	bareRun := func() error {
		out, err := bare.run(ctx, echoParams)
		if err == nil && !bytes.Contains(out, []byte(`"hello"`)) {
			err = fmt.Errorf("unexpected output %q", out)
		}
		return err
	}
	const spaced = "bare wazero instantiate+run, calls 30 ms apart"
	getTool := func() error {
		_, err := e.api.Tool(ctx, "echo")
		return err
	}
	return []variant{
		{name: "bare wazero instantiate+run", fn: bareRun},
		{name: "wasm.Engine Execute, no pool (in-process)", fn: func() error {
			_, err := modules["unpooled"].Execute(ctx, wasm.Call{Params: echoParams})
			return err
		}},
		{name: "wasm.Engine Execute, pool (in-process)", fn: pooled},
		{name: "clawbox POST /execute echo", fn: execute},
		{name: "clawbox GET /tools/echo (the API's own cost)", fn: getTool},
		{name: spaced, fn: bareRun, pause: 30 * time.Millisecond},
		{name: "wasm.Engine Execute, pool, calls 30 ms apart", fn: pooled, pause: 30 * time.Millisecond, baseline: spaced},
		{name: "clawbox POST /execute echo, calls 30 ms apart", fn: execute, pause: 30 * time.Millisecond, baseline: spaced},
		{name: "clawbox GET /tools/echo, calls 30 ms apart", fn: getTool, pause: 30 * time.Millisecond, baseline: spaced},
	}, closeAll, nil
}

// timeInterleaved warms each variant up once, then runs rounds of n calls of each
// variant in turn (so that a disturbance hits all alike) and returns the rows, the
// first variant being the baseline of the others.
func timeInterleaved(ctx context.Context, section string, vs []variant, rounds, n int) ([]Row, error) {
	for _, v := range vs {
		if err := v.fn(); err != nil {
			return nil, fmt.Errorf("%s: %w", v.name, err)
		}
	}
	samples := make([][]time.Duration, len(vs))
	for r := 0; r < rounds; r++ {
		for j, v := range vs {
			for i := 0; i < n; i++ {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				if v.pause > 0 {
					time.Sleep(v.pause)
				}
				t0 := time.Now()
				if err := v.fn(); err != nil {
					return nil, fmt.Errorf("%s: %w", v.name, err)
				}
				samples[j] = append(samples[j], time.Since(t0))
			}
		}
	}
	var rows []Row
	for j, v := range vs {
		r := Row{Section: section, Name: v.name, Unit: "ms", Stat: summarize(msAll(samples[j]))}
		switch {
		case v.baseline != "":
			r.Baseline = v.baseline
		case j > 0 && v.pause == 0:
			r.Baseline = vs[0].name
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// benchWASM compares POST /execute of echo (HTTP, auth, limits, redaction, audit,
// and the server's pool of pre-initialised instances) with bare wazero and with the
// engine called in-process.
func benchWASM(ctx context.Context, e *env, iters int) ([]Row, error) {
	vs, closeAll, err := wasmVariants(ctx, e)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	const rounds = 10
	return timeInterleaved(ctx, "wasm", vs, rounds, max(1, iters/rounds))
}

// benchColdStart times a fresh server (daemon.Run in this process, echo as its only
// tool) from the call to Run until the first POST /execute of echo has answered,
// with an empty compilation cache and with the cache a previous start filled.
func benchColdStart(ctx context.Context, e *env, iters int) ([]Row, error) {
	cacheDir := filepath.Join(e.dir, "coldcache")
	var cold, warm []time.Duration
	for i := 0; i < iters; i++ {
		for _, cached := range []bool{false, true} {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if !cached {
				if err := os.RemoveAll(cacheDir); err != nil {
					return nil, err
				}
			}
			d, err := coldStartOnce(ctx, e, filepath.Join(e.dir, fmt.Sprintf("cold%d%v", i, cached)), cacheDir)
			if err != nil {
				return nil, err
			}
			if cached {
				warm = append(warm, d)
			} else {
				cold = append(cold, d)
			}
		}
	}
	return []Row{
		{Section: "wasm cold start", Name: "start → first /execute, compilation cache filled", Unit: "ms", Stat: summarize(msAll(warm))},
		{Section: "wasm cold start", Name: "start → first /execute, empty compilation cache", Unit: "ms", Stat: summarize(msAll(cold)),
			Baseline: "start → first /execute, compilation cache filled"},
	}, nil
}

func coldStartOnce(ctx context.Context, e *env, dir, cacheDir string) (time.Duration, error) {
	cfg, err := newConfig(ctx, dir)
	if err != nil {
		return 0, err
	}
	cfg.Sandbox.CacheDir = cacheDir
	if err := installEcho(cfg); err != nil {
		return 0, err
	}
	tok, err := cfg.Token()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	srv, err := startServer(ctx, cfg, e.logw)
	if err != nil {
		return 0, err
	}
	defer srv.Stop()
	c, err := client.New(srv.addr, client.Options{Token: tok})
	if err != nil {
		return 0, err
	}
	res, err := c.Execute(ctx, api.ExecuteRequest{Tool: "echo", Params: echoParams})
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("first /execute: %w", err)
	}
	if !bytes.Contains(res.Output, []byte(`"hello"`)) {
		return 0, fmt.Errorf("first /execute answered %s", res.Output)
	}
	return d, nil
}
