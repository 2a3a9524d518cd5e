// Command bench is clawbox's benchmark harness (SPEC section 11): in one run it
// measures clawbox beside its baselines on this machine — spawn, gateway, WASM,
// density and reaper precision — prints a table with min/median/p90/max and the
// ratio clawbox/baseline, and writes the results as JSON.
//
//	go run ./bench -quick                 # under five minutes on a 2-core machine
//	go run ./bench -out bench/results/full.json # the longer run
//
// The clawbox server runs in this process (daemon.Run), with a loopback HTTPS
// upstream reached as example.com through proxy.hosts; nothing leaves the machine.
// Every container and image the harness creates is labelled clawbox.bench=<run id>
// (or made from the bench image) and removed at the end, also after a failure or
// Ctrl-C. Timings never make it fail: only errors do.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	cbclient "github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/config"
)

// env is what the sections share.
type env struct {
	dir       string // temporary, removed at the end
	runID     string
	docker    *client.Client // nil without Docker
	dockerErr error
	image     string
	agentPath string
	up        *upstream
	cfg       *config.Config
	srv       *server
	api       *cbclient.Client
	logw      io.Writer
	notes     []string
}

func (e *env) note(s string) { e.notes = append(e.notes, s) }

// Params sizes a run.
type Params struct {
	SpawnIters, FirstReqIters int
	GatewayReps               int
	GatewayLoads              []gatewayLoad
	InProcessRequests         int
	WASMIters, ColdIters      int
	DensityMax, DensityStep   int
	// HeapProfile, if set, is where the density section's server writes its heap
	// profile at each reading (the last reading's stays).
	HeapProfile string
	// DoorCPUProfile, if set, is where the forward section's door child writes its
	// CPU profile (pprof), covering every load it serves.
	DoorCPUProfile       string
	ReaperN              int
	ReaperLifetime       time.Duration
	ExecIters            int
	ForwardReps          int
	ForwardLoads         []gatewayLoad
	InterceptIters       int
	PoolIters, PoolBurst int
}

func quickParams() Params {
	return Params{SpawnIters: 8, FirstReqIters: 5, GatewayReps: 3, GatewayLoads: []gatewayLoad{{n: 300, c: 1}, {n: 1000, c: 8}},
		InProcessRequests: 500, WASMIters: 200, ColdIters: 2, DensityMax: 50, DensityStep: 10, ReaperN: 5, ReaperLifetime: 2 * time.Second, ExecIters: 20,
		ForwardReps: 5, ForwardLoads: []gatewayLoad{{n: 500, c: 1}, {n: 2000, c: 8}}, InterceptIters: 300,
		PoolIters: 10, PoolBurst: 20}
}

func fullParams() Params {
	return Params{SpawnIters: 30, FirstReqIters: 15, GatewayReps: 7, GatewayLoads: []gatewayLoad{{n: 1000, c: 1}, {n: 4000, c: 8}},
		InProcessRequests: 2000, WASMIters: 1000, ColdIters: 5, DensityMax: 50, DensityStep: 10, ReaperN: 15, ReaperLifetime: 3 * time.Second, ExecIters: 100,
		ForwardReps: 7, ForwardLoads: []gatewayLoad{{n: 2000, c: 1}, {n: 8000, c: 8}}, InterceptIters: 1000,
		PoolIters: 30, PoolBurst: 20}
}

// Results is the JSON result file.
type Results struct {
	Command   string         `json:"command"`
	Quick     bool           `json:"quick"`
	Started   time.Time      `json:"started"`
	DurationS float64        `json:"duration_s"`
	Machine   Machine        `json:"machine"`
	Rows      []Row          `json:"rows"`
	Density   []densityPoint `json:"density,omitempty"`
	Errors    []string       `json:"errors,omitempty"`
	Notes     []string       `json:"notes,omitempty"`
	Cleanup   []string       `json:"cleanup_problems,omitempty"`
}

func main() {
	quick := flag.Bool("quick", false, "the short run (under five minutes on 2 cores)")
	out := flag.String("out", "bench/results/latest.json", "where to write the JSON results")
	serve := flag.String("serve", "", "internal: run only a clawbox server with this JSON config (the density section's child)")
	door := flag.String("door", "", "internal: run only a forward-proxy door, DIR,PORT (the forward section's child)")
	heapProfile := flag.String("heap-profile", "", "density: the server child writes its heap profile (pprof) here at each reading, after the forced collection")
	only := flag.String("only", "", "comma-separated sections to run (spawn,pool,exec,gateway,forward,intercept,wasm,cold,density,reaper); default all")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (the server, the upstream and the in-process proxies) to this file")
	doorProfile := flag.String("door-cpuprofile", "", "forward: the door in its own process writes its CPU profile (pprof) here")
	flag.Parse()
	if *door != "" {
		os.Exit(doorMain(*door, *cpuProfile))
	}
	if *serve != "" {
		os.Exit(serveMain(*serve, *heapProfile))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// exit stops the profile first: os.Exit runs no deferred function.
	stopProfile := func() {}
	exit := func(code int) { stopProfile(); os.Exit(code) }
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: cpu profile:", err)
			os.Exit(2)
		}
		stopProfile = func() {
			pprof.StopCPUProfile()
			f.Close()
		}
	}
	defer stopProfile()
	p := fullParams()
	if *quick {
		p = quickParams()
	}
	p.HeapProfile = *heapProfile
	p.DoorCPUProfile = *doorProfile
	res, err := run(ctx, p, *quick, sections(*only), os.Stderr)
	if res != nil {
		res.Command = strings.TrimSpace("go run ./bench " + strings.Join(os.Args[1:], " "))
		fmt.Println(table(res.Rows))
		for _, n := range res.Notes {
			fmt.Println("note:", n)
		}
		for _, e := range res.Errors {
			fmt.Println("ERROR:", e)
		}
		for _, c := range res.Cleanup {
			fmt.Println("CLEANUP:", c)
		}
		if werr := writeJSON(*out, res); werr != nil {
			fmt.Fprintln(os.Stderr, "write results:", werr)
			exit(1)
		}
		md := strings.TrimSuffix(*out, filepath.Ext(*out)) + ".md"
		if werr := os.WriteFile(md, []byte(markdown(res)), 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "write results:", werr)
			exit(1)
		}
		fmt.Printf("results written to %s and %s (%.0f s)\n", *out, md, res.DurationS)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		exit(1)
	}
	if res != nil && (len(res.Errors) > 0 || len(res.Cleanup) > 0) {
		exit(1)
	}
}

// markdown is the machine, the table and the notes, for docs/benchmarks.md.
func markdown(res *Results) string {
	m := res.Machine
	var b strings.Builder
	fmt.Fprintf(&b, "Run of `%s`, %s, %.0f s.\n\n", res.Command, res.Started.Format(time.RFC3339), res.DurationS)
	fmt.Fprintf(&b, "- CPUs: %d (%s); memory: %s; kernel %s\n", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel)
	fmt.Fprintf(&b, "- Docker Engine %s (API %s), CLI %s; %s\n", m.DockerVersion, m.DockerAPI, m.DockerCLI, m.GoVersion)
	fmt.Fprintf(&b, "- load average before: %s; after: %s\n\n", m.LoadBefore, m.LoadAfter)
	b.WriteString(table(res.Rows))
	var notes []string
	for _, r := range res.Rows {
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("- %s / %s: %s", r.Section, r.Name, r.Note))
		}
	}
	for _, n := range res.Notes {
		notes = append(notes, "- "+n)
	}
	for _, e := range res.Errors {
		notes = append(notes, "- ERROR: "+e)
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	return b.String()
}

func sections(only string) map[string]bool {
	all := map[string]bool{"spawn": true, "gateway": true, "wasm": true, "cold": true, "density": true, "reaper": true, "exec": true, "forward": true, "intercept": true, "pool": true}
	if only == "" {
		return all
	}
	sel := map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		sel[strings.TrimSpace(s)] = true
	}
	return sel
}

func writeJSON(path string, res *Results) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// run sets up, runs the selected sections and always cleans up. Section errors are
// collected in the results; only a setup failure is returned.
func run(ctx context.Context, p Params, quick bool, sel map[string]bool, progress io.Writer) (res *Results, err error) {
	start := time.Now()
	e, cleanup, err := setup(ctx, progress)
	res = &Results{Quick: quick, Started: start.UTC(), Machine: machine(ctx, e.docker)}
	if l1, cpus := loadOne(), float64(res.Machine.CPUs); l1 > cpus/2 {
		e.note(fmt.Sprintf("the 1-minute load average was %.2f at the start on %d CPUs: other work shares this machine, so expect wider spreads; repeat when it is quieter", l1, res.Machine.CPUs))
	}
	defer func() {
		res.Cleanup = cleanup()
		res.Notes = e.notes
		res.DurationS = time.Since(start).Seconds()
		res.Machine.LoadAfter = loadavg()
		fillRatios(res.Rows)
	}()
	if err != nil {
		return res, err
	}
	step := func(name string, needsDocker bool, fn func() ([]Row, error)) {
		if !sel[name] || ctx.Err() != nil {
			return
		}
		if needsDocker && e.docker == nil {
			e.note(fmt.Sprintf("%s: skipped, Docker not reachable (%v): start dockerd or set DOCKER_HOST", name, e.dockerErr))
			return
		}
		fmt.Fprintf(progress, "bench: %s ...\n", name)
		t0 := time.Now()
		rows, err := fn()
		res.Rows = append(res.Rows, rows...)
		if err != nil {
			res.Errors = append(res.Errors, name+": "+err.Error())
		}
		fmt.Fprintf(progress, "bench: %s done in %.1f s\n", name, time.Since(t0).Seconds())
	}
	step("wasm", false, func() ([]Row, error) { return benchWASM(ctx, e, p.WASMIters) })
	step("cold", false, func() ([]Row, error) { return benchColdStart(ctx, e, p.ColdIters) })
	step("gateway", false, func() ([]Row, error) { return benchGatewayInProcess(ctx, e, p.InProcessRequests) })
	step("forward", false, func() ([]Row, error) { return benchForward(ctx, e, p.ForwardReps, p.ForwardLoads, p.DoorCPUProfile) })
	step("intercept", false, func() ([]Row, error) { return benchIntercept(ctx, e, p.InterceptIters) })
	step("spawn", true, func() ([]Row, error) {
		rows, err := benchSpawn(ctx, e, p.SpawnIters)
		if err != nil {
			return rows, err
		}
		more, err := benchFirstRequest(ctx, e, p.FirstReqIters)
		return append(rows, more...), err
	})
	step("pool", true, func() ([]Row, error) { return benchPool(ctx, e, p.PoolIters, p.PoolBurst) })
	step("exec", true, func() ([]Row, error) { return benchExec(ctx, e, p.ExecIters) })
	step("gateway", true, func() ([]Row, error) { return benchGateway(ctx, e, p.GatewayReps, p.GatewayLoads) })
	step("reaper", true, func() ([]Row, error) { return benchReaper(ctx, e, p.ReaperN, p.ReaperLifetime) })
	step("density", true, func() ([]Row, error) {
		rows, pts, err := benchDensity(ctx, e, p.DensityMax, p.DensityStep, p.HeapProfile)
		res.Density = pts
		return rows, err
	})
	if ctx.Err() != nil {
		res.Errors = append(res.Errors, "interrupted")
	}
	return res, nil
}

// setup builds the agent and image, starts the upstream and the in-process server.
// The returned cleanup undoes whatever was done, in reverse, and reports problems.
func setup(ctx context.Context, progress io.Writer) (*env, func() []string, error) {
	e := &env{runID: randomHex(4), logw: progress}
	var undo []func() []string
	cleanup := func() []string {
		var problems []string
		for i := len(undo) - 1; i >= 0; i-- {
			problems = append(problems, undo[i]()...)
		}
		return problems
	}
	fail := func(err error) (*env, func() []string, error) { return e, cleanup, err }

	dir, err := os.MkdirTemp("", "cbb") // short: sandbox socket paths must fit 107 bytes
	if err != nil {
		return fail(err)
	}
	e.dir = dir
	undo = append(undo, func() []string { os.RemoveAll(dir); return nil })

	if cli, err := client.New(client.FromEnv); err != nil {
		e.dockerErr = err
	} else if err := pingDocker(ctx, cli); err != nil {
		cli.Close()
		e.dockerErr = err
	} else {
		e.docker = cli
		undo = append(undo, func() []string { cli.Close(); return nil })
	}

	fmt.Fprintln(progress, "bench: building the agent ...")
	if e.agentPath, err = buildAgent(ctx, dir); err != nil {
		return fail(err)
	}
	if e.up, err = newUpstream(dir); err != nil {
		return fail(err)
	}
	undo = append(undo, func() []string { e.up.srv.Close(); return nil })

	if e.docker != nil {
		e.image = imageRepo + ":" + e.runID
		// Registered before the build, so that a half-done import is removed too.
		undo = append(undo, func() []string { return sweep(e.docker, e.runID, e.image) })
		if err := buildImage(ctx, e.image, e.agentPath, e.runID); err != nil {
			return fail(err)
		}
	}

	if e.cfg, err = newConfig(ctx, filepath.Join(dir, "cb")); err != nil {
		return fail(err)
	}
	c := e.cfg
	c.Sandbox.CacheDir = filepath.Join(dir, "cache")
	if err := e.serverSettings(c); err != nil {
		return fail(err)
	}
	fmt.Fprintln(progress, "bench: starting the server ...")
	if e.srv, err = startServer(ctx, c, progress); err != nil {
		return fail(err)
	}
	undo = append(undo, func() []string {
		if err := e.srv.Stop(); err != nil && !errors.Is(err, context.Canceled) {
			return []string{"server stop: " + err.Error()}
		}
		return nil
	})
	tok, err := c.Token()
	if err != nil {
		return fail(err)
	}
	if e.api, err = cbclient.New(e.srv.addr, cbclient.Options{Token: tok}); err != nil {
		return fail(err)
	}
	return e, cleanup, nil
}

// serverSettings configures a server for the bench: the echo tool, the bench image,
// the loopback upstream as example.com, a rate limit out of the way, the BENCH
// credential allowed, and sandboxes killed when the server stops.
func (e *env) serverSettings(c *config.Config) error {
	if err := installEcho(c); err != nil {
		return err
	}
	c.Containers.AllowedImages = []string{"clawbox-bench/"}
	c.Containers.DefaultImage = e.image
	c.Containers.MaxContainers = 64
	c.Containers.KillOnShutdown = true
	c.Proxy.AllowPrivateCIDRs = []string{"127.0.0.0/8"}
	c.Proxy.Hosts = map[string][]string{"example.com": {"127.0.0.1"}}
	c.Proxy.UpstreamCAFile = e.up.caFile
	c.Proxy.RateLimit.RequestsPerSecond = 1e9
	c.Proxy.RateLimit.Burst = 1 << 30
	c.ContainerPolicy.NetworkAllowlist = []string{"https://example.com:" + e.up.port + "/"}
	c.ContainerPolicy.AllowedCredentials = []string{"BENCH"}
	if e.docker == nil {
		// Without Docker the server still serves WASM tools.
		c.Containers.DefaultImage = "clawbox-bench/none:latest"
	}
	return nil
}
