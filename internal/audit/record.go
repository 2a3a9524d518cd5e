// Package audit records every network decision and every sandbox and tool event as one
// JSON line in <audit_dir>/audit.jsonl, written by a single goroutine, rotated by size,
// and indexed in the store for queries and live streaming.
package audit

import "time"

// Kind says what a record is about.
type Kind string

// Record kinds.
const (
	KindRequest   Kind = "request"   // an egress request, allowed or refused
	KindLifecycle Kind = "lifecycle" // a sandbox state change
	KindExecution Kind = "execution" // a WASM tool execution, errors included
	KindGap       Kind = "gap"       // records were dropped because the queue was full
)

// Decision is the outcome of an egress request.
type Decision string

// Egress decisions.
const (
	DecisionAllowed     Decision = "allowed"
	DecisionBlocked     Decision = "blocked"
	DecisionLeak        Decision = "leak"
	DecisionRateLimited Decision = "rate_limited"
	DecisionError       Decision = "error"
)

// Record is one audit event. It never holds a secret value: URLs have their query
// values redacted, and credentials appear by name only.
type Record struct {
	Time        time.Time `json:"time"`
	Kind        Kind      `json:"kind"`
	ContainerID string    `json:"container_id,omitempty"` // sandbox the event is about
	Tool        string    `json:"tool,omitempty"`         // tool the event is about
	RequestID   string    `json:"request_id,omitempty"`

	// Egress requests.
	Method      string   `json:"method,omitempty"`
	URL         string   `json:"url,omitempty"` // query values redacted
	Host        string   `json:"host,omitempty"`
	Decision    Decision `json:"decision,omitempty"`
	Rule        string   `json:"rule,omitempty"`   // the policy rule that decided
	Reason      string   `json:"reason,omitempty"` // why a request was refused or failed (safe text)
	Credentials []string `json:"credentials,omitempty"`
	Status      int      `json:"status,omitempty"` // upstream status
	BytesOut    int64    `json:"bytes_out,omitempty"`
	BytesIn     int64    `json:"bytes_in,omitempty"`
	LatencyMS   int64    `json:"latency_ms,omitempty"`

	// Lifecycle and execution events: spawned, adopted, completed, failed,
	// timed_out, killed, lost, reaped; executed for tools.
	Event    string `json:"event,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Error    string `json:"error,omitempty"` // safe error text (code and message)

	// Gap records: how many records were dropped before this one.
	Dropped int64 `json:"dropped,omitempty"`
}
