// Package audit records every network decision and every sandbox and tool event as one
// JSON line in <audit_dir>/audit.jsonl, written by a single goroutine, rotated by size,
// and indexed in the store for queries and live streaming.
package audit

import "github.com/clawbox/clawbox/api"

// Record is one audit event; its wire form is api.AuditRecord.
type Record = api.AuditRecord

// Kind says what a record is about.
type Kind = api.AuditKind

// Decision is the outcome of an egress request.
type Decision = api.AuditDecision

// Record kinds.
const (
	KindRequest   = api.AuditKindRequest
	KindLifecycle = api.AuditKindLifecycle
	KindExecution = api.AuditKindExecution
	KindGap       = api.AuditKindGap
)

// Egress decisions.
const (
	DecisionAllowed     = api.DecisionAllowed
	DecisionBlocked     = api.DecisionBlocked
	DecisionLeak        = api.DecisionLeak
	DecisionRateLimited = api.DecisionRateLimited
	DecisionError       = api.DecisionError
)
