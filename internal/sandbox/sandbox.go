// Package sandbox runs untrusted workloads in container sandboxes: it owns the
// sandbox record and its state machine, the per-sandbox token and socket directory,
// the lifecycle monitor, the reaper and start-up reconciliation. It talks to a
// container engine only through the small Backend interface (internal/sandbox/docker
// implements it), to the egress gateway through DoorOpener, and to persistence
// through RecordStore, so each can be replaced or faked independently.
package sandbox

import (
	"fmt"
	"maps"
	"time"

	"github.com/clawbox/clawbox/api"
)

// Status is a sandbox's lifecycle state.
type Status string

// The states. creating → running → one of the final states; creating may also end
// as lost when the server died in the middle of a spawn.
const (
	StatusCreating  Status = api.ContainerStatusCreating
	StatusRunning   Status = api.ContainerStatusRunning
	StatusCompleted Status = api.ContainerStatusCompleted
	StatusFailed    Status = api.ContainerStatusFailed
	StatusTimedOut  Status = api.ContainerStatusTimedOut
	StatusKilled    Status = api.ContainerStatusKilled
	StatusLost      Status = api.ContainerStatusLost
)

// ParseStatus checks a status name from a client (for list filters).
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusCreating, StatusRunning, StatusCompleted, StatusFailed, StatusTimedOut, StatusKilled, StatusLost:
		return st, nil
	}
	return "", api.Errorf(api.CodeInvalidRequest, "unknown status %q", s)
}

// Final reports whether s is a final state.
func (s Status) Final() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusTimedOut, StatusKilled, StatusLost:
		return true
	}
	return false
}

// Active reports whether s counts against max_containers.
func (s Status) Active() bool { return s == StatusCreating || s == StatusRunning }

// CanTransition reports whether from → to is an allowed transition.
func CanTransition(from, to Status) bool {
	switch from {
	case StatusCreating:
		return to == StatusRunning || to == StatusLost
	case StatusRunning:
		return to.Final()
	}
	return false
}

// Policy is a container sandbox policy.
type Policy string

// The container policies.
const (
	PolicyContainer       Policy = api.SandboxPolicyContainer
	PolicyContainerDirect Policy = api.SandboxPolicyContainerDirect
)

// Logs are a finished sandbox's output, each stream capped.
type Logs struct {
	Stdout    []byte
	Stderr    []byte
	Truncated bool
}

// Record is the persisted state of one sandbox.
type Record struct {
	ID          string // "clawbox-<uuid>", also the container name
	Task        string
	Image       string // as requested (after defaulting)
	Policy      Policy
	Status      Status
	ContainerID string // the engine's id, once created
	ExitCode    *int
	OOMKilled   bool
	CreatedAt   time.Time
	Deadline    time.Time // zero until running
	FinishedAt  time.Time // zero until final
	ExpiresAt   time.Time // zero until final: FinishedAt + retention
	// TokenHash is the SHA-256 of the sandbox's door token; the token itself is
	// never stored.
	TokenHash []byte
	Logs      Logs
	// Allowlist is the network allowlist the spawn asked for (nil: the server's).
	Allowlist []string
	// Credentials are the credential names granted to the sandbox.
	Credentials []string
	// LogLimit caps each log stream, in bytes.
	LogLimit int64
	// Labels are the caller's labels (nil when none).
	Labels map[string]string
	// Workspace is the id of the kept workspace mounted at /workspace when it is
	// not the sandbox's own (an agent's, the same at every start); "" otherwise.
	Workspace string
	// PausedAt is when the sandbox was paused (its container frozen and its
	// deadline clock stopped); zero while it is not paused.
	PausedAt time.Time
	// Warm is true when the spawn claimed a pooled sandbox (a warm start)
	// instead of starting a container.
	Warm bool
}

// transition moves r to status to, or reports why it cannot.
func (r *Record) transition(to Status) error {
	if !CanTransition(r.Status, to) {
		return fmt.Errorf("sandbox %s: invalid transition %s → %s", r.ID, r.Status, to)
	}
	r.Status = to
	return nil
}

// Info returns the record as the API shows it.
func (r *Record) Info() api.ContainerInfo {
	info := api.ContainerInfo{
		ContainerID: r.ID,
		Status:      string(r.Status),
		Policy:      string(r.Policy),
		Image:       r.Image,
		CreatedAt:   r.CreatedAt.UTC(),
		TaskSummary: r.Task,
		Labels:      maps.Clone(r.Labels),
		ExitCode:    r.ExitCode,
		OOMKilled:   r.OOMKilled,
		Paused:      !r.PausedAt.IsZero(),
		Warm:        r.Warm,
	}
	if r.Policy != PolicyContainerDirect {
		info.ProxySocket = ContainerSocketPath
	}
	if r.Status == StatusRunning && !r.Deadline.IsZero() {
		d := r.Deadline.UTC()
		info.Deadline = &d
	}
	if !r.FinishedAt.IsZero() {
		f := r.FinishedAt.UTC()
		info.FinishedAt = &f
	}
	if !r.ExpiresAt.IsZero() {
		e := r.ExpiresAt.UTC()
		info.ExpiresAt = &e
	}
	return info
}

// LogsInfo returns the record's kept logs as the API shows them.
func (r *Record) LogsInfo() api.ContainerLogs {
	return api.ContainerLogs{
		ContainerID: r.ID,
		Stdout:      string(r.Logs.Stdout),
		Stderr:      string(r.Logs.Stderr),
		Truncated:   r.Logs.Truncated,
	}
}

// KillResponse returns the record as DELETE /containers/{id} answers it.
func (r *Record) KillResponse() api.KillResponse {
	resp := api.KillResponse{ContainerID: r.ID, Status: string(r.Status), ExitCode: r.ExitCode}
	if r.Status.Final() {
		out := string(r.Logs.Stdout) + string(r.Logs.Stderr)
		resp.Output = &out
	}
	return resp
}

// clone returns a deep copy of r.
func (r *Record) clone() *Record {
	c := *r
	if r.ExitCode != nil {
		v := *r.ExitCode
		c.ExitCode = &v
	}
	c.TokenHash = append([]byte(nil), r.TokenHash...)
	c.Logs.Stdout = append([]byte(nil), r.Logs.Stdout...)
	c.Logs.Stderr = append([]byte(nil), r.Logs.Stderr...)
	if r.Allowlist != nil {
		c.Allowlist = append([]string{}, r.Allowlist...)
	}
	c.Credentials = append([]string(nil), r.Credentials...)
	c.Labels = maps.Clone(r.Labels)
	return &c
}
