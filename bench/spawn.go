package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
)

// hardened is the host configuration clawbox gives a sandbox (internal/sandbox/docker
// createOptions), rebuilt here for the baselines from the same config values.
type hardened struct {
	image     string
	user      string
	tmpfsMB   int
	memory    int64
	cpuShares int64
	pids      int64
	nofile    int64
	socketDir string // bind-mounted read-only at /run/clawbox
	runID     string
}

func (h hardened) createOptions(name string, cmd []string) client.ContainerCreateOptions {
	init := true
	pids := h.pids
	return client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:  h.image,
			User:   h.user,
			Env:    []string{"CLAWBOX_PROXY_SOCKET=/run/clawbox/proxy.sock", "CLAWBOX_PROXY_TOKEN=x", "CLAWBOX_PROXY_TOKEN_FILE=/run/clawbox/token"},
			Labels: map[string]string{Label: h.runID, "clawbox.task": "bench baseline"},
			Cmd:    cmd,
		},
		HostConfig: &container.HostConfig{
			NetworkMode:    "none",
			ReadonlyRootfs: true,
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges:true"},
			Tmpfs:          map[string]string{"/tmp": "rw,noexec,nosuid,nodev,size=" + strconv.Itoa(h.tmpfsMB) + "m"},
			Init:           &init,
			LogConfig:      container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "64m", "max-file": "1"}},
			Resources: container.Resources{
				Memory:     h.memory,
				MemorySwap: h.memory,
				CPUShares:  h.cpuShares,
				PidsLimit:  &pids,
				Ulimits:    []*container.Ulimit{{Name: "nofile", Soft: h.nofile, Hard: h.nofile}},
			},
			Mounts: []mount.Mount{{Type: mount.TypeBind, Source: h.socketDir, Target: "/run/clawbox", ReadOnly: true}},
		},
	}
}

// dockerRunArgs are the `docker run -d` flags equivalent to createOptions.
func (h hardened) dockerRunArgs(name string, cmd []string) []string {
	args := []string{"run", "-d", "--name", name,
		"--network", "none", "--read-only", "--cap-drop", "ALL",
		"--security-opt", "no-new-privileges:true",
		"--tmpfs", "/tmp:rw,noexec,nosuid,nodev,size=" + strconv.Itoa(h.tmpfsMB) + "m",
		"--init",
		"--memory", strconv.FormatInt(h.memory, 10), "--memory-swap", strconv.FormatInt(h.memory, 10),
		"--cpu-shares", strconv.FormatInt(h.cpuShares, 10),
		"--pids-limit", strconv.FormatInt(h.pids, 10),
		"--ulimit", fmt.Sprintf("nofile=%d:%d", h.nofile, h.nofile),
		"--log-opt", "max-size=64m", "--log-opt", "max-file=1",
		"--mount", "type=bind,src=" + h.socketDir + ",dst=/run/clawbox,readonly",
		"--user", h.user,
		"-e", "CLAWBOX_PROXY_SOCKET=/run/clawbox/proxy.sock", "-e", "CLAWBOX_PROXY_TOKEN=x", "-e", "CLAWBOX_PROXY_TOKEN_FILE=/run/clawbox/token",
		"--label", Label + "=" + h.runID, "--label", "clawbox.task=bench baseline",
		h.image}
	return append(args, cmd...)
}

func (e *env) hardened() (hardened, error) {
	dir := filepath.Join(e.dir, "baseline-sock")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return hardened{}, err
	}
	c := e.cfg.Containers
	return hardened{
		image: e.image, user: c.User, tmpfsMB: c.TmpfsSizeMB, memory: c.DefaultMemoryMB << 20,
		cpuShares: c.DefaultCPUShares, pids: c.PidsLimit, nofile: c.Nofile, socketDir: dir, runID: e.runID,
	}, nil
}

// removeContainer force-removes a baseline container (not timed).
func (e *env) removeContainer(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
}

// benchSpawn times, interleaved so that a disturbance hits all three alike: clawbox's
// spawn until running, raw Engine API create+start, and `docker run -d`, each of the
// same image, command and hardened host configuration.
func benchSpawn(ctx context.Context, e *env, iters int) ([]Row, error) {
	h, err := e.hardened()
	if err != nil {
		return nil, err
	}
	cmd := []string{"sleep", "600"}
	var cb, raw, cli []time.Duration
	dockerCLI, cliErr := exec.LookPath("docker")
	for i := 0; i < iters; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// clawbox
		t0 := time.Now()
		info, err := e.api.Spawn(ctx, api.ContainerSpawnRequest{Task: "bench spawn", Command: cmd})
		d := time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("clawbox spawn: %w", err)
		}
		if info.Status != api.ContainerStatusRunning {
			return nil, fmt.Errorf("clawbox spawn answered %s, want running", info.Status)
		}
		cb = append(cb, d)
		if _, err := e.api.Kill(ctx, info.ContainerID); err != nil {
			return nil, fmt.Errorf("kill: %w", err)
		}

		// raw Engine API
		name := fmt.Sprintf("clawbox-bench-raw-%s-%d", e.runID, i)
		t0 = time.Now()
		created, err := e.docker.ContainerCreate(ctx, h.createOptions(name, cmd))
		if err != nil {
			return nil, fmt.Errorf("raw create: %w", err)
		}
		if _, err := e.docker.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
			e.removeContainer(created.ID)
			return nil, fmt.Errorf("raw start: %w", err)
		}
		raw = append(raw, time.Since(t0))
		e.removeContainer(created.ID)

		// docker run -d
		if cliErr == nil {
			name := fmt.Sprintf("clawbox-bench-cli-%s-%d", e.runID, i)
			t0 = time.Now()
			out, err := exec.CommandContext(ctx, dockerCLI, h.dockerRunArgs(name, cmd)...).CombinedOutput()
			d := time.Since(t0)
			if err != nil {
				e.removeContainer(name)
				return nil, fmt.Errorf("docker run -d: %v: %s", err, out)
			}
			cli = append(cli, d)
			e.removeContainer(name)
		}
	}
	rows := []Row{
		{Section: "spawn", Name: "raw Engine API create+start", Unit: "ms", Stat: summarize(msAll(raw)),
			Note: "baseline: same image, command and hardened host config, one HTTP client"},
		{Section: "spawn", Name: "clawbox POST /containers/spawn → running", Unit: "ms", Stat: summarize(msAll(cb)), Baseline: "raw Engine API create+start"},
	}
	if cliErr == nil {
		rows = append(rows, Row{Section: "spawn", Name: "docker run -d", Unit: "ms", Stat: summarize(msAll(cli)), Baseline: "raw Engine API create+start",
			Note: "the CLI process start and its own API negotiation included"})
	} else {
		e.note("spawn: docker CLI not found, `docker run -d` not measured")
	}
	return rows, nil
}

// benchFirstRequest times spawn-to-first-proxied-request: from just before POST
// /containers/spawn until the agent inside has the answer of its first POST /proxy
// (the agent stamps the wall clock, which the container shares with the host).
func benchFirstRequest(ctx context.Context, e *env, iters int) ([]Row, error) {
	var spawnRet, agentStart, first []time.Duration
	for i := 0; i < iters; i++ {
		t0 := time.Now()
		info, err := e.api.Spawn(ctx, api.ContainerSpawnRequest{Task: "bench first request",
			Command: []string{"/agent", "-url", e.up.URL("/first"), "-n", "1"}})
		if err != nil {
			return nil, fmt.Errorf("spawn: %w", err)
		}
		spawnRet = append(spawnRet, time.Since(t0))
		rep, err := e.agentReport(ctx, info.ContainerID)
		if err != nil {
			return nil, err
		}
		if rep.OK != 1 {
			return nil, fmt.Errorf("first request failed: %s", rep.FirstErr)
		}
		agentStart = append(agentStart, time.Unix(0, rep.StartUnixNS).Sub(t0))
		first = append(first, time.Unix(0, rep.FirstAnswerUnixNS).Sub(t0))
	}
	return []Row{
		{Section: "spawn", Name: "spawn → agent process started", Unit: "ms", Stat: summarize(msAll(agentStart))},
		{Section: "spawn", Name: "spawn → first /proxy answer in the agent", Unit: "ms", Stat: summarize(msAll(first)),
			Note: fmt.Sprintf("spawn call itself: median %.1f ms", summarize(msAll(spawnRet)).Median)},
	}, nil
}

// agentReport waits for a sandbox running the agent to finish and decodes its report.
func (e *env) agentReport(ctx context.Context, id string) (*agentResult, error) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		info, err := e.api.Container(ctx, id)
		if err != nil {
			return nil, err
		}
		if info.Status != api.ContainerStatusRunning && info.Status != api.ContainerStatusCreating {
			logs, err := e.api.Logs(ctx, id)
			if err != nil {
				return nil, err
			}
			if info.Status != api.ContainerStatusCompleted {
				return nil, fmt.Errorf("agent sandbox %s ended %s: %s %s", id, info.Status, logs.Stdout, logs.Stderr)
			}
			var r agentResult
			if err := json.Unmarshal([]byte(strings.TrimSpace(logs.Stdout)), &r); err != nil {
				return nil, fmt.Errorf("agent output %q: %w", logs.Stdout, err)
			}
			return &r, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("agent sandbox %s still running after 5 minutes", id)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// agentResult is the agent's report (bench/agent Report).
type agentResult struct {
	N                 int     `json:"n"`
	C                 int     `json:"c"`
	OK                int     `json:"ok"`
	Errors            int     `json:"errors"`
	FirstErr          string  `json:"first_error"`
	ElapsedUS         float64 `json:"elapsed_us"`
	RPS               float64 `json:"rps"`
	MinUS             float64 `json:"min_us"`
	P50US             float64 `json:"p50_us"`
	P90US             float64 `json:"p90_us"`
	P99US             float64 `json:"p99_us"`
	MaxUS             float64 `json:"max_us"`
	StartUnixNS       int64   `json:"start_unix_ns"`
	FirstAnswerUnixNS int64   `json:"first_answer_unix_ns"`
}
