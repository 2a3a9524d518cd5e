package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// Machine describes where the run happened.
type Machine struct {
	CPUs          int    `json:"cpus"`
	CPUModel      string `json:"cpu_model,omitempty"`
	MemTotal      string `json:"mem_total,omitempty"`
	Kernel        string `json:"kernel,omitempty"`
	GoVersion     string `json:"go_version"`
	DockerVersion string `json:"docker_version,omitempty"`
	DockerAPI     string `json:"docker_api,omitempty"`
	DockerCLI     string `json:"docker_cli,omitempty"`
	LoadBefore    string `json:"loadavg_before"`
	LoadAfter     string `json:"loadavg_after"`
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// loadOne is the 1-minute load average (0 when unknown).
func loadOne() float64 {
	f := strings.Fields(loadavg())
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func machine(ctx context.Context, cli *client.Client) Machine {
	m := Machine{
		CPUs:       runtime.NumCPU(),
		CPUModel:   procField("/proc/cpuinfo", "model name"),
		MemTotal:   procField("/proc/meminfo", "MemTotal"),
		GoVersion:  runtime.Version(),
		LoadBefore: loadavg(),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if cli != nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if v, err := cli.ServerVersion(cctx, client.ServerVersionOptions{}); err == nil {
			m.DockerVersion, m.DockerAPI = v.Version, v.APIVersion
		}
	}
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Client.Version}}").Output(); err == nil {
		m.DockerCLI = strings.TrimSpace(string(out))
	}
	return m
}
