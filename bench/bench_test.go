package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
)

// The Benchmark functions reuse the harness's setup (agent, image, upstream and an
// in-process server), made once for the package and removed in TestMain. Each one
// is meant to run in seconds with -benchtime 1x (CI runs them that way); those that
// need Docker skip when no daemon answers.

var (
	sharedOnce    sync.Once
	sharedEnv     *env
	sharedErr     error
	sharedCleanup func() []string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedCleanup != nil {
		for _, p := range sharedCleanup() {
			fmt.Fprintln(os.Stderr, "bench cleanup:", p)
			code = 1
		}
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func benchEnv(b *testing.B, docker bool) *env {
	b.Helper()
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		sharedEnv, sharedCleanup, sharedErr = setup(ctx, io.Discard)
	})
	if sharedErr != nil {
		b.Fatalf("bench setup: %v", sharedErr)
	}
	if docker && sharedEnv.docker == nil {
		b.Skipf("Docker daemon not reachable (%v): start dockerd or set DOCKER_HOST to run this benchmark", sharedEnv.dockerErr)
	}
	return sharedEnv
}

// runVariants runs each variant as a sub-benchmark.
func runVariants(b *testing.B, vs []variant) {
	for _, v := range vs {
		if v.pause > 0 {
			continue // the idle gap would dominate the benchmark's time
		}
		b.Run(strings.ReplaceAll(v.name, " ", "_"), func(b *testing.B) {
			for b.Loop() {
				if err := v.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWASM: echo by bare wazero, by the engine without and with its pool, and
// through POST /execute.
func BenchmarkWASM(b *testing.B) {
	e := benchEnv(b, false)
	vs, closeAll, err := wasmVariants(b.Context(), e)
	if err != nil {
		b.Fatal(err)
	}
	defer closeAll()
	runVariants(b, vs)
}

// BenchmarkGatewayInProcess: a GET straight to the loopback upstream and through
// egress.Gateway.Do without a credential store, with leak scanning, and with
// injection.
func BenchmarkGatewayInProcess(b *testing.B) {
	e := benchEnv(b, false)
	vs, closeAll, err := gatewayVariants(b.Context(), e)
	if err != nil {
		b.Fatal(err)
	}
	defer closeAll()
	runVariants(b, vs)
}

// BenchmarkSpawn: POST /containers/spawn until running, and the raw Engine API
// create+start of the same hardened container (removal is not timed).
func BenchmarkSpawn(b *testing.B) {
	e := benchEnv(b, true)
	ctx := b.Context()
	b.Run("clawbox", func(b *testing.B) {
		var ids []string
		defer func() { e.killAll(ids) }()
		for b.Loop() {
			info, err := e.api.Spawn(ctx, api.ContainerSpawnRequest{Task: "bench", Command: []string{"sleep", "600"}})
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, info.ContainerID)
		}
	})
	b.Run("raw_engine_api", func(b *testing.B) {
		h, err := e.hardened()
		if err != nil {
			b.Fatal(err)
		}
		var ids []string
		defer func() {
			for _, id := range ids {
				e.removeContainer(id)
			}
		}()
		i := 0
		for b.Loop() {
			i++
			c, err := e.docker.ContainerCreate(ctx, h.createOptions(fmt.Sprintf("clawbox-bench-b-%s-%d-%d", e.runID, b.N, i), []string{"sleep", "600"}))
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, c.ID)
			if _, err := e.docker.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkProxyFromSandbox: one sandbox per iteration whose agent sends 100
// requests through its door; reports the agent's median latency and rate.
func BenchmarkProxyFromSandbox(b *testing.B) {
	e := benchEnv(b, true)
	ctx := b.Context()
	var p50, rps float64
	for b.Loop() {
		info, err := e.api.Spawn(ctx, api.ContainerSpawnRequest{Task: "bench", Command: []string{"/agent", "-url", e.up.URL("/x"), "-n", "100"}})
		if err != nil {
			b.Fatal(err)
		}
		r, err := e.agentReport(ctx, info.ContainerID)
		if err != nil {
			b.Fatal(err)
		}
		if r.Errors > 0 {
			b.Fatalf("%d requests failed: %s", r.Errors, r.FirstErr)
		}
		p50, rps = r.P50US, r.RPS
	}
	b.ReportMetric(p50, "agent-p50-µs")
	b.ReportMetric(rps, "agent-req/s")
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want Stat
	}{
		{"empty", nil, Stat{}},
		{"one", []float64{3}, Stat{N: 1, Min: 3, Median: 3, P90: 3, Max: 3}},
		{"unsorted ten", []float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5}, Stat{N: 10, Min: 1, Median: 5, P90: 9, Max: 10}},
		{"two", []float64{2, 1}, Stat{N: 2, Min: 1, Median: 1, P90: 2, Max: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := summarize(tc.in); got != tc.want {
				t.Errorf("summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestFillRatiosAndTable(t *testing.T) {
	rows := []Row{
		{Section: "s", Name: "base", Unit: "ms", Stat: Stat{N: 3, Median: 2}},
		{Section: "s", Name: "ours", Unit: "ms", Stat: Stat{N: 3, Median: 3}, Baseline: "base"},
		{Section: "other", Name: "ours", Unit: "ms", Stat: Stat{N: 3, Median: 3}, Baseline: "base"}, // no baseline in its section
	}
	fillRatios(rows)
	if rows[0].Ratio != nil || rows[2].Ratio != nil {
		t.Errorf("ratio set on a row without a baseline in its section: %+v", rows)
	}
	if rows[1].Ratio == nil || *rows[1].Ratio != 1.5 {
		t.Fatalf("ratio = %v, want 1.5", rows[1].Ratio)
	}
	if tab := table(rows); !strings.Contains(tab, "| s | ours | 3 |") || !strings.Contains(tab, "1.50x base") {
		t.Errorf("table:\n%s", tab)
	}
}
