package api

import "time"

// Agent statuses (the wire values of AgentInfo.Status; the reference's words, plus
// paused).
const (
	AgentStatusIdle       = "idle"       // registered or stopped: no sandbox
	AgentStatusStarting   = "starting"   // a start is in progress, or a restart after a crash is due
	AgentStatusRunning    = "running"    // its sandbox runs
	AgentStatusPaused     = "paused"     // its sandbox is frozen, its lifetime clock stopped
	AgentStatusStopping   = "stopping"   // a stop is in progress
	AgentStatusFailed     = "failed"     // it crashed more often than max_restarts allows, or a restart failed
	AgentStatusTerminated = "terminated" // its sandbox reached max_lifetime_ms (or timeout_ms)
)

// Agent idle actions (AgentLifecycle.IdleAction).
const (
	AgentIdleStop  = "stop"
	AgentIdlePause = "pause"
)

// AgentConfig is the body of POST /agents (the reference's AgentConfig). An agent's
// sandbox is spawned exactly like POST /containers/spawn with image, policy,
// capabilities and env, under the same server policy, and always with its own
// workspace mounted at /workspace.
type AgentConfig struct {
	// AgentID is 1 to 64 ASCII letters, digits and '-'.
	AgentID string `json:"agent_id"`
	// Name is a display name (required, at most 256 bytes).
	Name string `json:"name"`
	// Policy is "container" (default) or "container_direct"; the reference's
	// default "wasm_only" is taken as "container" (an agent is a container).
	Policy string `json:"policy,omitempty"`
	// Capabilities are a spawn's: network narrowing, credentials, resources
	// (resources.timeout_ms bounds each start, like max_lifetime_ms).
	Capabilities *ContainerCapabilities `json:"capabilities,omitempty"`
	// Workspace is accepted for compatibility: every agent has its workspace at
	// /workspace; a mount_point other than "/workspace", a host_path or
	// read_only are refused.
	Workspace *AgentWorkspace `json:"workspace,omitempty"`
	// Lifecycle is the agent's policy; absent fields take their defaults.
	Lifecycle *AgentLifecycle   `json:"lifecycle,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	// Image to run; empty means the server's containers.default_image.
	Image string `json:"image,omitempty"`
	// Command is the agent's main process (the image's CMD replaced, its
	// ENTRYPOINT kept); absent: ["sleep", "infinity"], so the agent waits for
	// exec calls.
	Command []string `json:"command,omitempty"`
	// Labels are put on each of the agent's sandboxes (as for a spawn).
	Labels map[string]string `json:"labels,omitempty"`
}

// AgentWorkspace is the reference's WorkspaceConfig.
type AgentWorkspace struct {
	HostPath   *string `json:"host_path,omitempty"`
	MountPoint string  `json:"mount_point,omitempty"`
	ReadOnly   bool    `json:"read_only,omitempty"`
}

// AgentLifecycle is an agent's lifecycle policy (the reference's
// LifecycleConfig, enforced).
type AgentLifecycle struct {
	// MaxIdleMS stops (or pauses) a running agent that had no exec, no file
	// call and no egress request for this long. Default 3600000 (1 h); 0
	// disables it.
	MaxIdleMS *int64 `json:"max_idle_ms,omitempty"`
	// MaxLifetimeMS is the longest one start runs (paused time not counted);
	// then the agent is terminated. Null: containers.max_timeout_ms.
	MaxLifetimeMS *int64 `json:"max_lifetime_ms,omitempty"`
	// RestartOnCrash starts the agent again when its sandbox fails (a non-zero
	// exit, an OOM kill, a vanished container), at most MaxRestarts times in a
	// row, waiting RestartBackoffMS, doubled at each restart (at most 1 min).
	RestartOnCrash bool `json:"restart_on_crash,omitempty"`
	// MaxRestarts defaults to 3.
	MaxRestarts *int `json:"max_restarts,omitempty"`
	// RestartBackoffMS is the first restart's delay; default 1000.
	RestartBackoffMS *int64 `json:"restart_backoff_ms,omitempty"`
	// IdleAction is "stop" (default) or "pause".
	IdleAction string `json:"idle_action,omitempty"`
}

// AgentInfo describes one agent (the reference's AgentInfo, with the fields it
// never filled in now maintained).
type AgentInfo struct {
	AgentID string `json:"agent_id"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	// ContainerID is the current sandbox (running or paused), null otherwise.
	ContainerID *string   `json:"container_id"`
	CreatedAt   time.Time `json:"created_at"`
	// LastActivity is the last start, stop, exec, file call or egress request.
	LastActivity time.Time `json:"last_activity"`
	// ExecutionCount counts the execs run through the agent.
	ExecutionCount uint64 `json:"execution_count"`
	// WorkspacePath is the workspace's directory on the server's host (seen at
	// /workspace in the sandbox).
	WorkspacePath *string `json:"workspace_path"`

	// Reason says why the agent is in its status (the end of its last sandbox).
	Reason string `json:"reason,omitempty"`
	// RestartCount is how many crash restarts ran since the last explicit start.
	RestartCount int `json:"restart_count"`
	// NextRestartAt is when a due restart runs (status starting after a crash).
	NextRestartAt *time.Time `json:"next_restart_at,omitempty"`
	// LastContainerID is the sandbox the agent last ran in (its logs stay at
	// GET /containers/{id}/logs until retention).
	LastContainerID string `json:"last_container_id,omitempty"`
	Image           string `json:"image"`
	Policy          string `json:"policy"`
	// Lifecycle is the effective policy (defaults filled in).
	Lifecycle AgentLifecycle `json:"lifecycle"`
}

// AgentList is the body of GET /agents: a JSON array (as the reference's), oldest
// agent first.
type AgentList []AgentInfo
