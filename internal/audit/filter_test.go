package audit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/containerd/errdefs"
)

func TestFilterMatch(t *testing.T) {
	req := audit.Record{Time: base, Kind: audit.KindRequest, ContainerID: "c1", Tool: "fetch", Decision: audit.DecisionBlocked}
	gap := audit.Record{Time: base, Kind: audit.KindGap, Dropped: 3}
	tests := []struct {
		name string
		f    audit.Filter
		r    audit.Record
		want bool
	}{
		{"empty filter", audit.Filter{}, req, true},
		{"container match", audit.Filter{ContainerID: "c1"}, req, true},
		{"container mismatch", audit.Filter{ContainerID: "c2"}, req, false},
		{"tool match", audit.Filter{Tool: "fetch"}, req, true},
		{"tool mismatch", audit.Filter{Tool: "echo"}, req, false},
		{"decision match", audit.Filter{Decision: audit.DecisionBlocked}, req, true},
		{"decision mismatch", audit.Filter{Decision: audit.DecisionAllowed}, req, false},
		{"kind match", audit.Filter{Kind: audit.KindRequest}, req, true},
		{"kind mismatch", audit.Filter{Kind: audit.KindLifecycle}, req, false},
		{"since equal", audit.Filter{Since: base}, req, true},
		{"since after", audit.Filter{Since: base.Add(time.Nanosecond)}, req, false},
		{"all fields", audit.Filter{ContainerID: "c1", Tool: "fetch", Decision: audit.DecisionBlocked, Kind: audit.KindRequest, Since: base}, req, true},
		{"gap passes field filters", audit.Filter{ContainerID: "c2", Tool: "x", Decision: audit.DecisionAllowed}, gap, true},
		{"gap passes kind gap", audit.Filter{Kind: audit.KindGap}, gap, true},
		{"gap excluded by other kind", audit.Filter{Kind: audit.KindRequest}, gap, false},
		{"gap excluded by since", audit.Filter{Since: base.Add(time.Second)}, gap, false},
		{"kind gap excludes requests", audit.Filter{Kind: audit.KindGap}, req, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Match(tc.r); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFilterValidate(t *testing.T) {
	tests := []struct {
		name  string
		f     audit.Filter
		field string // "" = valid
	}{
		{"empty", audit.Filter{}, ""},
		{"every decision", audit.Filter{Decision: audit.DecisionRateLimited, Kind: audit.KindExecution, Limit: 5000}, ""},
		{"unknown decision", audit.Filter{Decision: "maybe"}, "decision"},
		{"unknown kind", audit.Filter{Kind: "other"}, "kind"},
		{"negative limit", audit.Filter{Limit: -1}, "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			e, ok := api.AsError(err)
			if !ok || e.Code != api.CodeInvalidRequest || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Validate = %v, want an invalid_request api error", err)
			}
			if d, _ := e.Details.(map[string]string); d["field"] != tc.field {
				t.Errorf("details = %v, want field %q", e.Details, tc.field)
			}
		})
	}
}

func TestFilterEffectiveLimit(t *testing.T) {
	for _, tc := range []struct {
		name        string
		limit, want int
	}{
		{"zero is default", 0, audit.DefaultLimit},
		{"negative is default", -5, audit.DefaultLimit},
		{"in range", 7, 7},
		{"max", audit.MaxLimit, audit.MaxLimit},
		{"over max", audit.MaxLimit + 1, audit.MaxLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (audit.Filter{Limit: tc.limit}).EffectiveLimit(); got != tc.want {
				t.Errorf("EffectiveLimit(%d) = %d, want %d", tc.limit, got, tc.want)
			}
		})
	}
}
