package api

import (
	"encoding/json"
	"time"
)

// ExecuteRequest is the body of POST /execute: run the WASM tool Tool with Params on
// its stdin.
type ExecuteRequest struct {
	// Tool is the tool's name (the <name>.wasm stem in the tool directory).
	Tool string `json:"tool"`
	// Params is any JSON; it reaches the tool on stdin. Absent means null.
	Params json.RawMessage `json:"params,omitempty"`
	// Capabilities may narrow what the tool's manifest grants; it never widens it.
	Capabilities *ExecuteCapabilities `json:"capabilities,omitempty"`
}

// ExecuteCapabilities is what one execution asks for. Every field may only narrow
// the tool manifest (and the server's maxima), never widen it.
type ExecuteCapabilities struct {
	// Network narrows the manifest's network.allowlist for this call.
	Network *ExecuteNetwork `json:"network,omitempty"`
	// Credentials names the credentials this call wants injected; only names the
	// manifest lists in credentials.available are honoured.
	Credentials []string `json:"credentials,omitempty"`
	// Resources narrows the per-call limits.
	Resources *ExecuteResources `json:"resources,omitempty"`
}

// ExecuteNetwork narrows a tool's network policy for one call.
type ExecuteNetwork struct {
	// Allowlist, when present, is intersected with the manifest's allowlist.
	Allowlist []string `json:"allowlist"`
	// MaxConcurrent is accepted for compatibility and not used.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
}

// ExecuteResources narrows the limits of one call. Each field is optional. The
// fields are those of the reference clawbox, so its clients keep working; only
// TimeoutMS changes anything.
type ExecuteResources struct {
	// TimeoutMS is the call's wall-time limit in milliseconds, clamped to the
	// manifest's max_timeout_ms and the server's sandbox.max_timeout_ms.
	TimeoutMS *int64 `json:"timeout_ms,omitempty"`
	// MemoryMB is accepted and ignored: an instance's linear memory is fixed when
	// its module is compiled, at the manifest's default_memory_mb bounded by the
	// server's sandbox.max_memory_mb, and a call cannot change it.
	MemoryMB *int64 `json:"memory_mb,omitempty"`
	// Fuel is accepted and ignored: wazero has no fuel metering; wall time and
	// memory bound a call (metadata.fuel_consumed is always 0).
	Fuel *uint64 `json:"fuel,omitempty"`
}

// ExecutionStatus is the status of an ExecuteResponse.
type ExecutionStatus string

// Execution statuses. The server answers a successful call with ExecutionOK; failed
// calls are answered with an *Error body (tool_not_found, timeout, output_too_large,
// tool_failed, …) instead. The other values are kept for wire compatibility.
const (
	ExecutionOK      ExecutionStatus = "ok"
	ExecutionError   ExecutionStatus = "error"
	ExecutionTimeout ExecutionStatus = "timeout"
	ExecutionBlocked ExecutionStatus = "blocked"
)

// ExecuteResponse is the 200 body of POST /execute.
type ExecuteResponse struct {
	RequestID string          `json:"request_id,omitempty"`
	Status    ExecutionStatus `json:"status"`
	// Output is what the tool wrote to stdout, parsed as JSON; output that is not
	// JSON is returned as a JSON string of the text (empty output gives "").
	Output   json.RawMessage   `json:"output,omitempty"`
	Error    string            `json:"error,omitempty"`
	Metadata ExecutionMetadata `json:"metadata"`
}

// ExecutionMetadata describes how a call ran.
type ExecutionMetadata struct {
	// ExecutionTimeMS is the wall time of the call, in milliseconds.
	ExecutionTimeMS int64 `json:"execution_time_ms"`
	// FuelConsumed is always 0: wazero has no fuel metering; calls are bounded by wall
	// time, memory, output size and host-call count instead. Kept for compatibility.
	FuelConsumed uint64 `json:"fuel_consumed"`
	// Logs are the entries the tool sent through the "log" host call, capped.
	Logs []LogEntry `json:"logs"`
	// Sanitization reports what output redaction found and did.
	Sanitization SanitizationReport `json:"sanitization"`
}

// LogEntry is one "log" host call.
type LogEntry struct {
	Level   string `json:"level"`
	Message string `json:"message"`
}

// SanitizationReport says what the output scan found.
type SanitizationReport struct {
	IssuesFound  int      `json:"issues_found"`
	ActionsTaken []string `json:"actions_taken"`
}

// ToolManifest describes a tool: what it is, what it may reach, and its limits. It
// is read from <name>.json beside <name>.wasm, or registered with POST /tools/register.
type ToolManifest struct {
	Tool ToolMeta `json:"tool"`
	// Network is the tool's network policy; null means no network.
	Network *ToolNetworkConfig `json:"network"`
	// Credentials lists the credentials the tool may use; null means none.
	Credentials *ToolCredentialConfig `json:"credentials"`
	// Resources are the tool's limits, each clamped by the server's maxima.
	Resources *ToolResourceConfig `json:"resources"`
	// InputSchema is the JSON Schema of the params (used by MCP tools/list).
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
	// OutputSchema is the JSON Schema of the output (informational).
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
}

// ToolMeta names and describes a tool.
type ToolMeta struct {
	// Name must equal the module's file stem and match [A-Za-z0-9_-]{1,64}.
	Name        string `json:"name"`
	Description string `json:"description"`
	// Version defaults to "0.1.0".
	Version string `json:"version"`
}

// ToolNetworkConfig is a tool's network policy.
type ToolNetworkConfig struct {
	// Allowlist holds the egress policy rules; empty means no network.
	Allowlist []string `json:"allowlist"`
	// MaxConcurrent is accepted for compatibility (default 5).
	MaxConcurrent int `json:"max_concurrent,omitempty"`
}

// ToolCredentialConfig lists the credential names a tool may use.
type ToolCredentialConfig struct {
	Available []string `json:"available"`
}

// ToolResourceConfig holds a tool's limits. Zero fields take the server's defaults;
// every value is clamped by the server's maxima.
type ToolResourceConfig struct {
	// DefaultTimeoutMS is a call's wall-time limit when the request sets none.
	DefaultTimeoutMS int64 `json:"default_timeout_ms,omitempty"`
	// MaxTimeoutMS is the largest wall-time limit a request may ask for.
	MaxTimeoutMS int64 `json:"max_timeout_ms,omitempty"`
	// DefaultMemoryMB is the instance's linear-memory limit.
	DefaultMemoryMB int64 `json:"default_memory_mb,omitempty"`
	// MaxMemoryMB is accepted for compatibility; the limit is DefaultMemoryMB.
	MaxMemoryMB int64 `json:"max_memory_mb,omitempty"`
}

// Tool sources, as reported in ToolInfo.Source.
const (
	ToolSourceFile       = "file"       // manifest from <name>.json
	ToolSourceRegistered = "registered" // manifest from POST /tools/register (persisted)
	ToolSourceDefault    = "default"    // no manifest: deny-all network, no credentials
)

// ToolInfo is one entry of GET /tools and the body of GET /tools/{name}: the tool's
// manifest (flattened, so a ToolInfo decodes as a ToolManifest) plus load facts.
type ToolInfo struct {
	ToolManifest
	// Source says where the manifest came from (file, registered or default).
	Source string `json:"source"`
	// SHA256 is the hex digest of the loaded module.
	SHA256 string `json:"sha256"`
	// Reactor is true for toolkit tools served from pre-initialised instances.
	Reactor bool `json:"reactor"`
	// LoadedAt is when this version of the module was loaded.
	LoadedAt time.Time `json:"loaded_at"`
}

// ToolRegisterResponse is the body of POST /tools/register (201 new, 200 replaced).
type ToolRegisterResponse struct {
	Status string `json:"status"` // "registered"
	Tool   string `json:"tool"`
}

// ToolReloadResponse is the body of POST /tools/reload.
type ToolReloadResponse struct {
	// Reloaded counts the modules seen in the tool directory.
	Reloaded int `json:"reloaded"`
	// Tools lists every loaded tool after the reload, sorted.
	Tools []string `json:"tools"`
	// Failed lists the files that could not be loaded, and why.
	Failed []ToolLoadError `json:"failed"`
}

// ToolLoadError says why a tool could not be loaded.
type ToolLoadError struct {
	Name  string `json:"name"`
	File  string `json:"file"`
	Error string `json:"error"`
	// Code is the stable code of the failure when it has one (module_limit_exceeded,
	// invalid_module).
	Code string `json:"code,omitempty"`
	// SHA256 is the hex digest of the module that failed, when it could be read.
	SHA256 string `json:"sha256,omitempty"`
}

// ToolStatus is the body of GET /tools/{name}/status: whether the module now in the
// server's tool directory is the one loaded, or why it is not. `clawbox build` polls
// it until the module it installed is loaded (SHA256 equals its digest) or failed
// (LoadError.SHA256 equals it).
type ToolStatus struct {
	Name string `json:"name"`
	// Loading is true while the server is loading tools: its initial load, a reload in
	// progress, or a change to the tool directory seen and not yet reloaded.
	Loading bool `json:"loading"`
	// Watching is true when the server reloads its tool directory on changes
	// (sandbox.watch_tools). Otherwise a new module loads with POST /tools/reload.
	Watching bool `json:"watching"`
	// FileSHA256 is the hex digest of <name>.wasm in the tool directory now; empty
	// when there is no such file.
	FileSHA256 string `json:"file_sha256,omitempty"`
	// SHA256 is the hex digest of the loaded module; empty when the tool is not loaded.
	SHA256 string `json:"sha256,omitempty"`
	// LoadedAt is when the loaded module was loaded.
	LoadedAt *time.Time `json:"loaded_at,omitempty"`
	// LoadError is why the last load of the tool failed, with the digest of the
	// module that failed; absent when its last load did not fail.
	LoadError *ToolLoadError `json:"load_error,omitempty"`
}
