package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// The forward-proxy section also measures the door in a process of its own: squid
// runs in its own process, and the in-process door shares this one's two CPUs with
// the load generator and the upstream, so at concurrency the comparison favoured
// squid. The child is this binary in -door mode.

// doorMain is the -door mode: spec is "DIR,PORT"; it opens the forward-proxy door of
// openForwardDoor in DIR (socket DIR/door.sock) in front of the upstream on PORT,
// prints "READY" and stops on SIGTERM or SIGINT. With profile set it writes its CPU
// profile there, from before READY until it stops.
func doorMain(spec, profile string) int {
	dir, port, ok := strings.Cut(spec, ",")
	if !ok || dir == "" || port == "" {
		fmt.Fprintln(os.Stderr, "-door wants DIR,PORT")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if profile != "" {
		f, err := os.Create(profile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "door: cpu profile:", err)
			return 2
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	d, err := openDoor(dir, []string{"http://example.com:" + port + "/"}, nil, "", port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer d.close()
	fmt.Println("READY")
	<-ctx.Done()
	return 0
}

// startDoorChild starts this binary in -door mode in front of the upstream of
// target, and returns it as a forward target; its close stops the child. profile,
// if set, is where the child writes its CPU profile.
func startDoorChild(ctx context.Context, parent, target string, conc int, profile string) (*forwardTarget, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "door-child")
	if err != nil {
		return nil, err
	}
	args := []string{"-door", dir + "," + u.Port()}
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	done := make(chan error, 1)
	ready := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "READY" {
				ready <- struct{}{}
			}
		}
		_, _ = io.Copy(io.Discard, out)
		done <- cmd.Wait()
	}()
	stopChild := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		os.RemoveAll(dir)
	}
	select {
	case <-ready:
	case err := <-done:
		os.RemoveAll(dir)
		return nil, fmt.Errorf("door child exited before serving: %v", err)
	case <-time.After(60 * time.Second):
		stopChild()
		return nil, errors.New("door child did not become ready in 60s")
	case <-ctx.Done():
		stopChild()
		return nil, ctx.Err()
	}
	d := &benchDoor{sock: filepath.Join(dir, "door.sock")}
	hc := proxyClient(d.proxyURL(), d.dial, conc)
	return &forwardTarget{name: "clawbox door, own process", client: hc, header: proxyAuth(), close: func() { hc.CloseIdleConnections(); stopChild() }, pid: cmd.Process.Pid}, nil
}
