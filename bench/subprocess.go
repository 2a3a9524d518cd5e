package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	cbclient "github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/daemon"
)

// serveMain is the -serve mode: this binary runs only a clawbox server (daemon.Run)
// with the JSON-encoded config at path, prints "READY <address>" once it listens and
// stops on SIGTERM or SIGINT. The density section measures such a child process, so
// that its RSS holds the server and nothing of the harness. With heapProfile set,
// each forced collection is followed by a heap profile written there.
func serveMain(path, heapProfile string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var cfg config.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGUSR1 asks for a full collection with memory returned to the OS, answered
	// by a "GC" line, so that a density reading shows live memory, not GC timing.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	gcDone := make(chan struct{})
	defer func() { <-gcDone }()
	go func() {
		defer close(gcDone)
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr1:
				debug.FreeOSMemory()
				if heapProfile != "" {
					if err := writeHeapProfile(heapProfile); err != nil {
						fmt.Fprintln(os.Stderr, "heap profile:", err)
					}
				}
				fmt.Println("GC")
			}
		}
	}()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	err = daemon.Run(ctx, &cfg, daemon.Options{Logger: log, Ready: func(a []string) { fmt.Printf("READY %s\n", a[0]) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// childServer is a clawbox server in a child process (serveMain).
type childServer struct {
	gc    chan struct{} // one value per "GC" line
	cmd   *exec.Cmd
	addr  string
	token string
	api   *cbclient.Client
	done  chan error
}

// startChild starts this binary with -serve and cfg, and waits until it listens.
func startChild(ctx context.Context, cfg *config.Config, dir, heapProfile string, stderr io.Writer) (*childServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "child-config.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	tok, err := cfg.Token()
	if err != nil {
		return nil, err
	}
	args := []string{"-serve", path}
	if heapProfile != "" {
		abs, err := filepath.Abs(heapProfile)
		if err != nil {
			return nil, err
		}
		args = append(args, "-heap-profile", abs)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &childServer{cmd: cmd, token: tok, done: make(chan error, 1), gc: make(chan struct{}, 16)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- a
			}
			if sc.Text() == "GC" {
				select {
				case c.gc <- struct{}{}:
				default:
				}
			}
		}
		c.done <- cmd.Wait()
	}()
	select {
	case c.addr = <-ready:
	case err := <-c.done:
		c.done <- err
		return nil, fmt.Errorf("child server exited before serving: %v", err)
	case <-time.After(60 * time.Second):
		c.Stop()
		return nil, errors.New("child server did not become ready in 60s")
	case <-ctx.Done():
		c.Stop()
		return nil, ctx.Err()
	}
	if c.api, err = cbclient.New(c.addr, cbclient.Options{Token: tok}); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Stop sends SIGTERM and waits (SIGKILL after two minutes). Idempotent.
func (c *childServer) Stop() error {
	if c.cmd == nil {
		return nil
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-c.done:
	case <-time.After(2 * time.Minute):
		c.cmd.Process.Kill()
		err = <-c.done
	}
	c.cmd = nil
	return err
}

// probe has the child collect garbage, then reads its RSS from /proc/<pid>/status and its goroutines and Go heap
// from its /metrics.
func (c *childServer) probe(ctx context.Context, n int) (densityPoint, error) {
	rest, _ := rssKB(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return densityPoint{}, err
	}
	select {
	case <-c.gc:
	case <-ctx.Done():
		return densityPoint{}, ctx.Err()
	case <-time.After(30 * time.Second):
		return densityPoint{}, errors.New("child server did not answer the GC request")
	}
	kb, _ := rssKB(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	p := densityPoint{Sandboxes: n, RSSMB: float64(kb) / 1024, RestRSSMB: float64(rest) / 1024, ShimRSSMB: float64(shimRSSKB()) / 1024}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.addr+"/metrics", nil)
	if err != nil {
		return p, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			p.Goroutines = int(v)
		case "go_memstats_heap_inuse_bytes":
			p.HeapMB = v / (1 << 20)
		}
	}
	if p.Goroutines == 0 {
		return p, fmt.Errorf("/metrics answered %d without go_goroutines", resp.StatusCode)
	}
	return p, nil
}
