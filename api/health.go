package api

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
