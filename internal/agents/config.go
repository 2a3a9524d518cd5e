package agents

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/sandbox"
)

// Defaults of AgentLifecycle.
const (
	DefaultMaxIdleMS        = int64(3600000)
	DefaultMaxRestarts      = 3
	DefaultRestartBackoffMS = int64(1000)
	// MaxRestartBackoffMS caps the doubled back-off.
	MaxRestartBackoffMS = int64(60000)
)

// DefaultCommand is an agent's main process when its config names none: it
// waits, and the agent is driven through exec and files.
var DefaultCommand = []string{"sleep", "infinity"}

func invalid(field, format string, args ...any) error {
	return &api.Error{Code: api.CodeInvalidRequest, Message: fmt.Sprintf(format, args...), Details: map[string]string{"field": field}}
}

// CheckID validates an agent id with the reference's rules and messages: 1 to 64
// characters; no "..", "/" or "\"; only ASCII letters, digits and '-'.
func CheckID(id string) error {
	if len(id) < 1 || len(id) > 64 {
		return invalid("agent_id", "agent error: agent_id must be 1-64 characters")
	}
	if strings.Contains(id, "..") || strings.ContainsAny(id, `/\`) {
		return invalid("agent_id", "agent error: agent_id contains invalid characters (path traversal)")
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return invalid("agent_id", "agent error: agent_id must be alphanumeric + hyphens only")
		}
	}
	return nil
}

// normalize checks cfg's shape and returns it with every default filled in (a
// copy: cfg is not changed).
func normalize(cfg api.AgentConfig) (api.AgentConfig, error) {
	if err := CheckID(cfg.AgentID); err != nil {
		return cfg, err
	}
	if strings.TrimSpace(cfg.Name) == "" {
		return cfg, invalid("name", "name is required")
	}
	if len(cfg.Name) > 256 {
		return cfg, invalid("name", "name is longer than 256 bytes")
	}
	switch p := strings.ToLower(cfg.Policy); p {
	case "", api.SandboxPolicyWasmOnly, api.SandboxPolicyContainer:
		cfg.Policy = api.SandboxPolicyContainer
	case api.SandboxPolicyContainerDirect:
		cfg.Policy = p
	default:
		return cfg, invalid("policy", "unknown policy %q: want container or container_direct", cfg.Policy)
	}
	if w := cfg.Workspace; w != nil {
		if w.HostPath != nil {
			return cfg, invalid("workspace.host_path", "workspace.host_path cannot be chosen: every agent has its own workspace under containers.workspace_root")
		}
		if w.MountPoint != "" && w.MountPoint != sandbox.ContainerWorkspacePath {
			return cfg, invalid("workspace.mount_point", "workspace.mount_point must be %q", sandbox.ContainerWorkspacePath)
		}
		if w.ReadOnly {
			return cfg, invalid("workspace.read_only", "a read-only workspace is not supported")
		}
	}
	cfg.Workspace = &api.AgentWorkspace{MountPoint: sandbox.ContainerWorkspacePath}
	lc := api.AgentLifecycle{}
	if cfg.Lifecycle != nil {
		lc = *cfg.Lifecycle
	}
	if lc.MaxIdleMS == nil {
		v := DefaultMaxIdleMS
		lc.MaxIdleMS = &v
	} else if *lc.MaxIdleMS < 0 {
		return cfg, invalid("lifecycle.max_idle_ms", "lifecycle.max_idle_ms must not be negative")
	}
	if lc.MaxLifetimeMS != nil && *lc.MaxLifetimeMS <= 0 {
		return cfg, invalid("lifecycle.max_lifetime_ms", "lifecycle.max_lifetime_ms must be positive (or null for the server's containers.max_timeout_ms)")
	}
	if lc.MaxRestarts == nil {
		v := DefaultMaxRestarts
		lc.MaxRestarts = &v
	} else if *lc.MaxRestarts < 0 || *lc.MaxRestarts > 100 {
		return cfg, invalid("lifecycle.max_restarts", "lifecycle.max_restarts must be 0 to 100")
	}
	if lc.RestartBackoffMS == nil {
		v := DefaultRestartBackoffMS
		lc.RestartBackoffMS = &v
	} else if *lc.RestartBackoffMS < 0 || *lc.RestartBackoffMS > MaxRestartBackoffMS {
		return cfg, invalid("lifecycle.restart_backoff_ms", "lifecycle.restart_backoff_ms must be 0 to %d", MaxRestartBackoffMS)
	}
	switch lc.IdleAction {
	case "":
		lc.IdleAction = api.AgentIdleStop
	case api.AgentIdleStop, api.AgentIdlePause:
	default:
		return cfg, invalid("lifecycle.idle_action", "lifecycle.idle_action must be %q or %q", api.AgentIdleStop, api.AgentIdlePause)
	}
	cfg.Lifecycle = &lc
	if len(cfg.Command) == 0 {
		cfg.Command = slices.Clone(DefaultCommand)
	}
	if caps := cfg.Capabilities; caps != nil && caps.Workspace {
		// Every agent has its workspace; the flag says nothing more.
		c := *caps
		c.Workspace = false
		cfg.Capabilities = &c
	}
	cfg.Env = maps.Clone(cfg.Env)
	cfg.Labels = maps.Clone(cfg.Labels)
	return cfg, nil
}

// spawnRequest is the spawn of one start of agent cfg (normalized).
func spawnRequest(cfg api.AgentConfig) api.ContainerSpawnRequest {
	req := api.ContainerSpawnRequest{
		Task:    "agent:" + cfg.AgentID,
		Labels:  maps.Clone(cfg.Labels),
		Image:   cfg.Image,
		Policy:  cfg.Policy,
		Env:     maps.Clone(cfg.Env),
		Command: slices.Clone(cfg.Command),
	}
	caps := api.ContainerCapabilities{}
	if cfg.Capabilities != nil {
		caps = *cfg.Capabilities
	}
	res := api.ContainerResources{}
	if caps.Resources != nil {
		res = *caps.Resources
	}
	// The start's deadline: the shorter of resources.timeout_ms and
	// max_lifetime_ms; with neither, the server's maximum.
	if lt := cfg.Lifecycle.MaxLifetimeMS; lt != nil && (res.TimeoutMS == nil || *lt < *res.TimeoutMS) {
		v := *lt
		res.TimeoutMS = &v
	}
	caps.Resources = &res
	req.Capabilities = &caps
	return req
}

// withMaxTimeout fills an unset timeout with max (the server's maximum).
func withMaxTimeout(req api.ContainerSpawnRequest, maxMS int64) api.ContainerSpawnRequest {
	if req.Capabilities.Resources.TimeoutMS == nil && maxMS > 0 {
		r := *req.Capabilities.Resources
		r.TimeoutMS = &maxMS
		c := *req.Capabilities
		c.Resources = &r
		req.Capabilities = &c
	}
	return req
}

// backoff is the delay before crash restart n (1-based).
func backoff(lc *api.AgentLifecycle, n int) int64 {
	d := *lc.RestartBackoffMS
	for i := 1; i < n && d < MaxRestartBackoffMS; i++ {
		d *= 2
	}
	return min(d, MaxRestartBackoffMS)
}

func describeEnd(rec *sandbox.Record) string {
	switch {
	case rec.OOMKilled:
		return "its sandbox was killed for exceeding its memory limit"
	case rec.ExitCode != nil:
		return fmt.Sprintf("its sandbox %s (exit code %d)", rec.Status, *rec.ExitCode)
	}
	return fmt.Sprintf("its sandbox %s", rec.Status)
}
