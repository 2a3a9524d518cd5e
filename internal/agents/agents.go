// Package agents runs named, long-lived sandboxes ("agents", SPEC 2.8): each has
// a lifecycle policy (max idle time with stop or pause, max lifetime, restart on
// crash with back-off), its own workspace that is the same directory at every
// start, and a record in the store, so a restarted server knows every agent,
// keeps watching the running ones and restarts those whose policy says so.
//
// An agent's sandbox is spawned by the sandbox manager's one spawn path (the same
// as POST /containers/spawn: image, env and network policy, limits, socket dir,
// token, door, supervisor), reached through the small Sandboxes interface. The
// Manager owns one watcher goroutine per running agent and one timer goroutine
// per due restart; Close cancels and waits for them.
package agents

import (
	"context"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/sandbox"
)

// Sandboxes is what agents need of the sandbox manager (*sandbox.Manager
// implements it).
type Sandboxes interface {
	// Check validates a spawn request against the server's policy, as a spawn
	// would, without spawning.
	Check(req api.ContainerSpawnRequest) error
	// Config is the sandbox configuration (for containers.max_timeout_ms).
	Config() sandbox.Config
	SpawnWith(ctx context.Context, req api.ContainerSpawnRequest, o sandbox.SpawnOptions) (*sandbox.Record, error)
	Get(ctx context.Context, id string) (*sandbox.Record, error)
	Kill(ctx context.Context, id string) (*sandbox.Record, error)
	Wait(ctx context.Context, id string) (*sandbox.Record, error)
	Pause(ctx context.Context, id string) (*sandbox.Record, error)
	Resume(ctx context.Context, id string) (*sandbox.Record, error)
	LastActivity(id string) (time.Time, bool)
	RemoveKeptWorkspace(id string) error
}

var _ Sandboxes = (*sandbox.Manager)(nil)

// Store persists agents (internal/store implements it). Not-found errors
// satisfy errors.Is(err, errdefs.ErrNotFound); a duplicate id at CreateAgent
// satisfies errors.Is(err, errdefs.ErrAlreadyExists).
type Store interface {
	CreateAgent(ctx context.Context, a *Agent) error
	UpdateAgent(ctx context.Context, a *Agent) error
	GetAgent(ctx context.Context, id string) (*Agent, error)
	// ListAgents returns every agent, oldest first (ties by id).
	ListAgents(ctx context.Context) ([]*Agent, error)
	DeleteAgent(ctx context.Context, id string) error
}

// AuditSink receives the agents' lifecycle records.
type AuditSink interface {
	Record(audit.Record)
}

// Status is an agent's state (api.AgentStatus*).
type Status string

// The statuses.
const (
	StatusIdle       Status = api.AgentStatusIdle
	StatusStarting   Status = api.AgentStatusStarting
	StatusRunning    Status = api.AgentStatusRunning
	StatusPaused     Status = api.AgentStatusPaused
	StatusStopping   Status = api.AgentStatusStopping
	StatusFailed     Status = api.AgentStatusFailed
	StatusTerminated Status = api.AgentStatusTerminated
)

// Agent is the persisted state of one agent.
type Agent struct {
	// Config is the normalized configuration (defaults filled in).
	Config api.AgentConfig `json:"config"`
	Status Status          `json:"status"`
	Reason string          `json:"reason,omitempty"`
	// ContainerID is the current sandbox ("" when idle, failed, terminated).
	ContainerID string `json:"container_id,omitempty"`
	// LastContainerID is the sandbox it ran in last.
	LastContainerID string `json:"last_container_id,omitempty"`
	// WorkspaceID names the agent's kept workspace ("clawbox-<uuid>").
	WorkspaceID    string    `json:"workspace_id"`
	CreatedAt      time.Time `json:"created_at"`
	LastActivity   time.Time `json:"last_activity"`
	StartedAt      time.Time `json:"started_at,omitzero"`
	ExecutionCount uint64    `json:"execution_count"`
	// Restarts counts crash restarts since the last explicit start.
	Restarts int `json:"restarts"`
	// NextRestart is when a due crash restart runs (status starting).
	NextRestart time.Time `json:"next_restart,omitzero"`
}

func (a *Agent) clone() *Agent {
	c := *a
	return &c
}
