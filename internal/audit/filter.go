package audit

import (
	"time"

	"github.com/clawbox/clawbox/api"
)

// Query limits.
const (
	DefaultLimit = 100  // records returned when Filter.Limit is 0
	MaxLimit     = 1000 // larger limits are lowered to this
)

// Filter selects records, for queries of the index (GET /audit) and for live
// subscriptions (GET /audit/stream). Empty fields match everything.
//
// A gap record matches every filter except one whose Kind names another kind or whose
// Since is after the gap: the records it stands for may have matched, so a reader
// filtering by sandbox, tool or decision still learns that something is missing.
type Filter struct {
	ContainerID string
	Tool        string
	Decision    Decision
	Kind        Kind
	Since       time.Time // records at or after this time; zero means no bound
	Limit       int       // queries only: 0 means DefaultLimit, above MaxLimit means MaxLimit
}

// Validate reports an invalid filter as an *api.Error with code invalid_request naming
// the field.
func (f Filter) Validate() error {
	switch f.Decision {
	case "", DecisionAllowed, DecisionBlocked, DecisionLeak, DecisionRateLimited, DecisionError:
	default:
		return invalidField("decision", "decision must be one of allowed, blocked, leak, rate_limited, error")
	}
	switch f.Kind {
	case "", KindRequest, KindLifecycle, KindExecution, KindGap:
	default:
		return invalidField("kind", "kind must be one of request, lifecycle, execution, gap")
	}
	if f.Limit < 0 {
		return invalidField("limit", "limit must not be negative")
	}
	return nil
}

func invalidField(field, msg string) error {
	e := api.Errorf(api.CodeInvalidRequest, "%s", msg)
	e.Details = map[string]string{"field": field}
	return e
}

// EffectiveLimit returns the number of records a query with this filter returns at
// most: Limit, or DefaultLimit when it is 0 or negative, capped at MaxLimit.
func (f Filter) EffectiveLimit() int {
	switch {
	case f.Limit <= 0:
		return DefaultLimit
	case f.Limit > MaxLimit:
		return MaxLimit
	default:
		return f.Limit
	}
}

// Match reports whether r passes the filter (Limit is ignored). The store's queries
// apply the same rules in SQL.
func (f Filter) Match(r Record) bool {
	if f.Kind != "" && r.Kind != f.Kind {
		return false
	}
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	if r.Kind == KindGap {
		return true
	}
	if f.ContainerID != "" && r.ContainerID != f.ContainerID {
		return false
	}
	if f.Tool != "" && r.Tool != f.Tool {
		return false
	}
	if f.Decision != "" && r.Decision != f.Decision {
		return false
	}
	return true
}
