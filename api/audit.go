package api

import "time"

// AuditKind says what an audit record is about.
type AuditKind string

// Audit record kinds.
const (
	AuditKindRequest   AuditKind = "request"   // an egress request, allowed or refused
	AuditKindLifecycle AuditKind = "lifecycle" // a sandbox state change
	AuditKindExecution AuditKind = "execution" // a WASM tool execution, errors included
	AuditKindGap       AuditKind = "gap"       // records were dropped because a queue was full
)

// AuditDecision is the outcome of an egress request.
type AuditDecision string

// Egress decisions.
const (
	DecisionAllowed     AuditDecision = "allowed"
	DecisionBlocked     AuditDecision = "blocked"
	DecisionLeak        AuditDecision = "leak"
	DecisionRateLimited AuditDecision = "rate_limited"
	DecisionError       AuditDecision = "error"
)

// AuditRecord is one audit event, as written to audit.jsonl and returned by GET /audit
// and GET /audit/stream. It never holds a secret value: URLs have their query values
// redacted, and credentials appear by name only.
type AuditRecord struct {
	Time        time.Time `json:"time"`
	Kind        AuditKind `json:"kind"`
	ContainerID string    `json:"container_id,omitempty"` // sandbox the event is about
	Tool        string    `json:"tool,omitempty"`         // tool the event is about
	Agent       string    `json:"agent,omitempty"`        // agent the event is about
	RequestID   string    `json:"request_id,omitempty"`

	// Egress requests. Door is the way the request came: "proxy" (POST /proxy),
	// "forward" (an absolute-form proxy request) or "connect" (a CONNECT tunnel and
	// the requests inside it); empty for a tool's request. Passthrough marks a
	// CONNECT tunnel spliced to the upstream without interception.
	Door        string        `json:"door,omitempty"`
	Passthrough bool          `json:"passthrough,omitempty"`
	Method      string        `json:"method,omitempty"`
	URL         string        `json:"url,omitempty"` // query values redacted
	Host        string        `json:"host,omitempty"`
	Decision    AuditDecision `json:"decision,omitempty"`
	Rule        string        `json:"rule,omitempty"`   // the policy rule that decided
	Reason      string        `json:"reason,omitempty"` // why a request was refused or failed (safe text)
	Credentials []string      `json:"credentials,omitempty"`
	Status      int           `json:"status,omitempty"` // upstream status
	BytesOut    int64         `json:"bytes_out,omitempty"`
	BytesIn     int64         `json:"bytes_in,omitempty"`
	LatencyMS   int64         `json:"latency_ms,omitempty"`

	// Lifecycle and execution events: spawned, adopted, completed, failed,
	// timed_out, killed, lost, reaped; executed for tools.
	Event    string `json:"event,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Error    string `json:"error,omitempty"` // safe error text (code and message)

	// Gap records: how many records were dropped before this one.
	Dropped int64 `json:"dropped,omitempty"`

	// Aggregated refusals: a refusal record with Count set stands for Count refused
	// requests of its sandbox or tool with this decision, past the audit's refusal
	// budget in one window; its other fields are those of the last of them.
	Count int64 `json:"count,omitempty"`
}

// AuditList is the body of GET /audit: newest first.
type AuditList struct {
	Records []AuditRecord `json:"records"`
}
