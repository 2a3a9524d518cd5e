package store

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
)

// auditTestDB opens a fresh store in t.TempDir().
func auditTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var auditBase = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// auditFixture is inserted in two batches; records 1 and 2 share a time, so order
// between them comes from insertion.
func auditFixture() [][]audit.Record {
	exit := 137
	return [][]audit.Record{{
		{Time: auditBase, Kind: audit.KindLifecycle, ContainerID: "c1", Event: "spawned", RequestID: "r0"},
		{Time: auditBase.Add(time.Second), Kind: audit.KindRequest, ContainerID: "c1", Method: "GET",
			URL: "https://api.example.com/x?k=REDACTED", Host: "api.example.com", Decision: audit.DecisionAllowed,
			Rule: "api.example.com", Credentials: []string{"gh", "npm"}, Status: 200, BytesOut: 1, BytesIn: 2, LatencyMS: 3, RequestID: "r1"},
		{Time: auditBase.Add(time.Second), Kind: audit.KindRequest, ContainerID: "c1", Method: "GET",
			URL: "http://10.0.0.1/", Host: "10.0.0.1", Decision: audit.DecisionBlocked, Reason: "private_address", RequestID: "r2"},
	}, {
		{Time: auditBase.Add(2 * time.Second), Kind: audit.KindGap, Dropped: 4},
		{Time: auditBase.Add(3 * time.Second), Kind: audit.KindRequest, Tool: "fetch", Method: "POST",
			URL: "https://x.example/", Decision: audit.DecisionLeak, Reason: "credential in body", RequestID: "r4"},
		{Time: auditBase.Add(4 * time.Second), Kind: audit.KindExecution, Tool: "fetch", Event: "executed", Error: "tool_failed: exit 1", RequestID: "r5"},
		{Time: auditBase.Add(5 * time.Second), Kind: audit.KindLifecycle, ContainerID: "c2", Event: "killed", ExitCode: &exit, RequestID: "r6"},
	}}
}

func requestIDs(recs []audit.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.RequestID
		if r.Kind == audit.KindGap {
			out[i] = "gap"
		}
	}
	return out
}

func TestAuditQuery(t *testing.T) {
	ctx := context.Background()
	db := auditTestDB(t)
	var all []audit.Record
	for _, batch := range auditFixture() {
		if err := db.InsertAudit(ctx, batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}

	tests := []struct {
		name string
		f    audit.Filter
		want []string // request ids, newest first
	}{
		{"everything newest first", audit.Filter{}, []string{"r6", "r5", "r4", "gap", "r2", "r1", "r0"}},
		{"container", audit.Filter{ContainerID: "c1"}, []string{"gap", "r2", "r1", "r0"}},
		{"tool", audit.Filter{Tool: "fetch"}, []string{"r5", "r4", "gap"}},
		{"decision", audit.Filter{Decision: audit.DecisionBlocked}, []string{"gap", "r2"}},
		{"container and decision", audit.Filter{ContainerID: "c1", Decision: audit.DecisionAllowed}, []string{"gap", "r1"}},
		{"kind", audit.Filter{Kind: audit.KindLifecycle}, []string{"r6", "r0"}},
		{"kind gap", audit.Filter{Kind: audit.KindGap}, []string{"gap"}},
		{"kind and tool", audit.Filter{Kind: audit.KindExecution, Tool: "fetch"}, []string{"r5"}},
		{"since inclusive", audit.Filter{Since: auditBase.Add(3 * time.Second)}, []string{"r6", "r5", "r4"}},
		{"since excludes gap", audit.Filter{ContainerID: "c1", Since: auditBase.Add(3 * time.Second)}, []string{}},
		{"since in another zone", audit.Filter{Since: auditBase.Add(4 * time.Second).In(time.FixedZone("X", -7200))}, []string{"r6", "r5"}},
		{"limit", audit.Filter{Limit: 2}, []string{"r6", "r5"}},
		{"limit with equal times", audit.Filter{ContainerID: "c1", Kind: audit.KindRequest, Limit: 1}, []string{"r2"}},
		{"limit over max", audit.Filter{Limit: 5000}, []string{"r6", "r5", "r4", "gap", "r2", "r1", "r0"}},
		{"no match", audit.Filter{ContainerID: "nope", Kind: audit.KindRequest}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.QueryAudit(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if ids := requestIDs(got); !slices.Equal(ids, tc.want) {
				t.Errorf("QueryAudit = %v, want %v", ids, tc.want)
			}
			// The store applies the same rules as Filter.Match (used by live
			// subscriptions): the newest matching records, up to the limit.
			var viaMatch []audit.Record
			for i := len(all) - 1; i >= 0 && len(viaMatch) < tc.f.EffectiveLimit(); i-- {
				if tc.f.Match(all[i]) {
					viaMatch = append(viaMatch, all[i])
				}
			}
			if ids, want := requestIDs(got), requestIDs(viaMatch); !slices.Equal(ids, want) {
				t.Errorf("store selects %v, Filter.Match %v", ids, want)
			}
		})
	}

	t.Run("round trip of every field", func(t *testing.T) {
		got, err := db.QueryAudit(ctx, audit.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		slices.Reverse(got)
		slices.SortStableFunc(all, func(a, b audit.Record) int { return a.Time.Compare(b.Time) })
		if !reflect.DeepEqual(got, all) {
			t.Errorf("records changed in the store:\ngot  %+v\nwant %+v", got, all)
		}
	})
}

func TestAuditQueryDefaultLimitAndValidation(t *testing.T) {
	ctx := context.Background()
	db := auditTestDB(t)
	batch := make([]audit.Record, audit.DefaultLimit+5)
	for i := range batch {
		batch[i] = audit.Record{Time: auditBase.Add(time.Duration(i) * time.Millisecond), Kind: audit.KindExecution, Tool: "t"}
	}
	if err := db.InsertAudit(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got, err := db.QueryAudit(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != audit.DefaultLimit || !got[0].Time.Equal(batch[len(batch)-1].Time) {
		t.Errorf("default query returned %d records starting at %v", len(got), got[0].Time)
	}
	if _, err := db.QueryAudit(ctx, audit.Filter{Decision: "nope"}); err == nil {
		t.Error("invalid filter accepted")
	} else if e, ok := api.AsError(err); !ok || e.Code != api.CodeInvalidRequest {
		t.Errorf("invalid filter error = %v, want invalid_request", err)
	}
}

func TestAuditInsertIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	db := auditTestDB(t)
	err := db.InsertAudit(ctx, []audit.Record{
		{Time: auditBase, Kind: audit.KindLifecycle, Event: "spawned"},
		{Kind: audit.KindLifecycle, Event: "no time"},
	})
	if err == nil {
		t.Fatal("a record without a time was accepted")
	}
	got, err := db.QueryAudit(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("a failed batch left %d records", len(got))
	}
	if err := db.InsertAudit(ctx, nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

func TestAuditDeleteBefore(t *testing.T) {
	ctx := context.Background()
	db := auditTestDB(t)
	batch := make([]audit.Record, 20)
	for i := range batch {
		batch[i] = audit.Record{Time: auditBase.Add(time.Duration(i) * time.Second), Kind: audit.KindExecution, Tool: "t"}
	}
	if err := db.InsertAudit(ctx, batch); err != nil {
		t.Fatal(err)
	}
	cut := batch[15].Time
	// A small chunk, so that retention takes several statements.
	n, err := db.deleteAuditBefore(ctx, cut, 4)
	if err != nil {
		t.Fatal(err)
	}
	if n != 15 {
		t.Errorf("deleted %d, want 15", n)
	}
	got, err := db.QueryAudit(ctx, audit.Filter{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || !got[len(got)-1].Time.Equal(cut) {
		t.Errorf("after retention: %d records, oldest %v; want 5, oldest %v", len(got), got[len(got)-1].Time, cut)
	}
	if n, err := db.DeleteAuditBefore(ctx, cut); err != nil || n != 0 {
		t.Errorf("second retention = %d, %v; want 0, nil", n, err)
	}
}
