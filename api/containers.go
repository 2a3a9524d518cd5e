package api

import "time"

// Sandbox policies (the wire values of ContainerSpawnRequest.Policy and
// ContainerInfo.Policy).
const (
	SandboxPolicyWasmOnly        = "wasm_only"
	SandboxPolicyContainer       = "container"        // network "none", egress only through the door
	SandboxPolicyContainerDirect = "container_direct" // a dedicated bridge network, no door
)

// Container sandbox statuses. A sandbox goes creating → running → exactly one of
// the final statuses.
const (
	ContainerStatusCreating  = "creating"
	ContainerStatusRunning   = "running"
	ContainerStatusCompleted = "completed" // exited 0
	ContainerStatusFailed    = "failed"    // exited non-zero (see exit_code, oom_killed)
	ContainerStatusTimedOut  = "timed_out" // outlived its timeout and was stopped
	ContainerStatusKilled    = "killed"    // stopped through the API or at shutdown
	ContainerStatusLost      = "lost"      // its container vanished behind clawbox's back
)

// ContainerSpawnRequest is the body of POST /containers/spawn.
type ContainerSpawnRequest struct {
	// Task describes the work; it is optional, recorded and shown, never executed.
	Task string `json:"task,omitempty"`
	// Labels are the caller's own key/value tags, shown in ContainerInfo and
	// matched by GET /containers?label=k=v. At most 32; keys are 1-63 bytes of
	// [A-Za-z0-9._/-] starting and ending with a letter or digit, never starting
	// with "clawbox." (clawbox's own labels); values at most 255 bytes of printable
	// UTF-8.
	Labels map[string]string `json:"labels,omitempty"`
	// Image to run; empty means the server's containers.default_image.
	Image string `json:"image,omitempty"`
	// Policy is "container" (default) or "container_direct".
	Policy string `json:"policy,omitempty"`
	// Capabilities may narrow the network, request credentials and set resources.
	Capabilities *ContainerCapabilities `json:"capabilities,omitempty"`
	// Env is added to the container's environment (keys are validated, reserved
	// keys are refused).
	Env map[string]string `json:"env,omitempty"`
	// Command overrides the image CMD (the ENTRYPOINT is kept).
	Command []string `json:"command,omitempty"`
}

// ContainerCapabilities is what a spawn asks for.
type ContainerCapabilities struct {
	// Network narrows the server's container network allowlist (never widens it).
	Network *ContainerNetwork `json:"network,omitempty"`
	// Credentials names the credentials the sandbox may use through its door; each
	// must be in [container_policy].allowed_credentials.
	Credentials []string `json:"credentials,omitempty"`
	// Resources sets limits; every field is optional and defaults from the config.
	Resources *ContainerResources `json:"resources,omitempty"`
	// Workspace mounts a quota-bounded directory read-write at /workspace
	// (containers.max_workspace_mb), kept after the sandbox ends until
	// DELETE /containers/{id}?workspace=true or retention removes it.
	Workspace bool `json:"workspace,omitempty"`
}

// ContainerWorkspace is a sandbox's workspace as ContainerInfo reports it.
type ContainerWorkspace struct {
	// Path is where the sandbox sees it ("/workspace").
	Path string `json:"path"`
	// QuotaBytes is its size limit; UsedBytes what its file system uses (known
	// while it is mounted).
	QuotaBytes int64 `json:"quota_bytes"`
	UsedBytes  int64 `json:"used_bytes,omitempty"`
}

// ContainerNetwork is the network part of ContainerCapabilities.
type ContainerNetwork struct {
	// Allowlist narrows the server allowlist; absent means "the server's list".
	Allowlist []string `json:"allowlist"`
	// MaxConcurrent is accepted for compatibility.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
}

// ContainerResources are a spawn's resource limits. A nil field takes the server's
// default; a value above the server's maximum is refused (400 invalid_request).
type ContainerResources struct {
	TimeoutMS *int64 `json:"timeout_ms,omitempty"` // lifetime, from start
	MemoryMB  *int64 `json:"memory_mb,omitempty"`  // memory limit; swap is not added
	CPUShares *int64 `json:"cpu_shares,omitempty"` // relative CPU weight
	// CPUs is a hard CPU quota (e.g. 0.5); absent or 0 means no quota.
	CPUs *float64 `json:"cpus,omitempty"`
	// MaxOutputBytes caps each of stdout and stderr kept (at most the server's
	// containers.max_log_bytes).
	MaxOutputBytes *int64 `json:"max_output_bytes,omitempty"`
}

// ContainerInfo describes one container sandbox (spawn, list, get).
type ContainerInfo struct {
	ContainerID string    `json:"container_id"` // "clawbox-<uuid>", also the Docker name
	Status      string    `json:"status"`
	Policy      string    `json:"policy"`
	Image       string    `json:"image"`
	CreatedAt   time.Time `json:"created_at"`
	TaskSummary string    `json:"task_summary"`
	// Labels are the labels given at spawn.
	Labels map[string]string `json:"labels,omitempty"`
	// ProxySocket is the door's path inside the container ("" for container_direct).
	ProxySocket string     `json:"proxy_socket,omitempty"`
	Deadline    *time.Time `json:"deadline,omitempty"` // when a running sandbox times out
	ExitCode    *int       `json:"exit_code,omitempty"`
	OOMKilled   bool       `json:"oom_killed,omitempty"`
	// Paused is true while a running sandbox is paused (its processes frozen,
	// its deadline clock stopped; see POST /agents/{id}/pause).
	Paused bool `json:"paused,omitempty"`
	// Warm is true when the spawn claimed a started sandbox from a warm pool
	// ([[containers.warm_pool]]) instead of starting a container.
	Warm       bool       `json:"warm"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"` // when a finished record is removed
	// Workspace is the sandbox's workspace, when it has one.
	Workspace *ContainerWorkspace `json:"workspace,omitempty"`
}

// ContainerLogs is the body of GET /containers/{id}/logs (without follow).
type ContainerLogs struct {
	ContainerID string `json:"container_id"`
	Stdout      string `json:"stdout"`
	Stderr      string `json:"stderr"`
	// Truncated is true when either stream went over the log cap.
	Truncated bool `json:"truncated"`
}

// KillResponse is the body of DELETE /containers/{id}.
type KillResponse struct {
	ContainerID string `json:"container_id"`
	Status      string `json:"status"`
	ExitCode    *int   `json:"exit_code,omitempty"`
	// Output is the sandbox's stdout followed by its stderr, as kept (capped).
	Output *string `json:"output"`
}

// LogFrame is one line of a followed log stream (GET /containers/{id}/logs?follow=true),
// sent as newline-delimited JSON. Stream is "stdout" or "stderr" with Data, and the
// last frame is "status" with the sandbox's status (and exit code) once it stopped,
// or "error" with Error if the stream broke.
type LogFrame struct {
	Stream   string `json:"stream"`
	Data     string `json:"data,omitempty"`
	Status   string `json:"status,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Error    string `json:"error,omitempty"`
}

// ContainerList is the body of GET /containers: newest first.
type ContainerList struct {
	Containers []ContainerInfo `json:"containers"`
}

// ContainerUpdateRequest is the body of PATCH /containers/{id}.
type ContainerUpdateRequest struct {
	// TimeoutMS sets a running sandbox's deadline to this many milliseconds from
	// now (positive, at most the server's containers.max_timeout_ms); it may
	// shorten or extend the lifetime.
	TimeoutMS *int64 `json:"timeout_ms"`
}

// ContainerFilter selects sandboxes in GET /containers.
type ContainerFilter struct {
	// Status, when not empty, keeps only sandboxes in that status.
	Status string
	// Labels keeps only sandboxes carrying every one of these labels (AND).
	Labels map[string]string
}
