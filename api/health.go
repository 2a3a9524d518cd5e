package api

import (
	"encoding/json"
	"time"
)

// HealthResponse is the body of GET /health. Without a valid token (when /health is
// public) only Status is set; with one, the rest is filled in.
type HealthResponse struct {
	// Status is "ok", or "degraded" when a component is not ok.
	Status           string                     `json:"status"`
	Version          string                     `json:"version,omitempty"`
	UptimeSeconds    int64                      `json:"uptime_seconds,omitempty"`
	DockerAvailable  *bool                      `json:"docker_available,omitempty"`
	WasmEngineReady  *bool                      `json:"wasm_engine_ready,omitempty"`
	ActiveContainers *int                       `json:"active_containers,omitempty"`
	Components       map[string]ComponentHealth `json:"components,omitempty"`
}

// ComponentHealth is the state of one subsystem.
type ComponentHealth struct {
	// Status is "ok", "unavailable" or "error".
	Status string `json:"status"`
	Detail any    `json:"detail,omitempty"`
}

// Health statuses.
const (
	StatusOK          = "ok"
	StatusDegraded    = "degraded"
	StatusUnavailable = "unavailable"
)

// ContainersHealth is the detail of the "docker" component in a detailed
// GET /health.
type ContainersHealth struct {
	ActiveContainers int `json:"active_containers"`
	// Pools are the warm pools ([[containers.warm_pool]]), in configuration
	// order; absent when none is configured.
	Pools []WarmPoolHealth `json:"pools,omitempty"`
}

// WarmPoolHealth is one warm pool's state.
type WarmPoolHealth struct {
	Name  string `json:"name"`
	Image string `json:"image"`
	// Size is how many ready sandboxes the pool keeps; Ready how many it has
	// now, Filling how many are starting.
	Size    int `json:"size"`
	Ready   int `json:"ready"`
	Filling int `json:"filling"`
	// Hits are spawns that claimed a ready sandbox, Misses spawns that matched
	// the pool and started cold (empty pool or failed claim), Refilled the
	// sandboxes started for the pool, all since the server started.
	Hits     int64 `json:"hits"`
	Misses   int64 `json:"misses"`
	Refilled int64 `json:"refilled"`
	// Failures counts the consecutive failed fills; LastError is the last
	// one's, and RetryAt when the pool, backing off, tries again.
	Failures  int        `json:"consecutive_failures,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	RetryAt   *time.Time `json:"retry_at,omitempty"`
}

// Containers returns the "docker" component's detail as ContainersHealth (the
// warm pools among it); false when the response has none that reads as one.
func (h *HealthResponse) Containers() (ContainersHealth, bool) {
	var d ContainersHealth
	c, ok := h.Components["docker"]
	if !ok || c.Detail == nil {
		return d, false
	}
	if v, ok := c.Detail.(ContainersHealth); ok {
		return v, true
	}
	// Decoded by a client: a generic JSON value.
	b, err := json.Marshal(c.Detail)
	if err != nil || json.Unmarshal(b, &d) != nil {
		return ContainersHealth{}, false
	}
	return d, true
}
