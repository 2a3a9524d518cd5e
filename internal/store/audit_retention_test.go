package store

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/audit"
)

func indexed(t *testing.T, db *DB) map[string]bool {
	t.Helper()
	recs, err := db.QueryAudit(context.Background(), audit.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, r := range recs {
		out[r.RequestID] = true
	}
	return out
}

// TestPruneAuditRefusalsFirst: past the size bound, the oldest refusals go before
// any allowed request or lifecycle record, even older ones.
func TestPruneAuditRefusalsFirst(t *testing.T) {
	ctx := context.Background()
	db := auditTestDB(t)
	pad := strings.Repeat("p", 1000)
	recs := []audit.Record{
		{Time: auditBase, Kind: audit.KindRequest, ContainerID: "a", RequestID: "allowed-old", Decision: audit.DecisionAllowed, URL: pad},
		{Time: auditBase, Kind: audit.KindLifecycle, ContainerID: "a", RequestID: "spawned", Event: "spawned", Reason: pad},
	}
	for i := range 20 {
		recs = append(recs, audit.Record{Time: auditBase.Add(time.Duration(i+1) * time.Second), Kind: audit.KindRequest,
			ContainerID: "h", RequestID: "refused-" + strconv.Itoa(i), Decision: audit.DecisionBlocked, URL: pad})
	}
	if err := db.InsertAudit(ctx, recs); err != nil {
		t.Fatal(err)
	}
	n, err := db.PruneAudit(ctx, time.Time{}, 8000)
	if err != nil {
		t.Fatal(err)
	}
	have := indexed(t, db)
	if !have["allowed-old"] || !have["spawned"] {
		t.Fatalf("pruned %d, kept %v: an allowed or lifecycle record went before the refusals", n, have)
	}
	if have["refused-0"] || !have["refused-19"] || n < 14 {
		t.Fatalf("pruned %d, kept %v: want the oldest refusals gone", n, have)
	}
	// Once only allowed records are left, they go too, oldest first.
	if _, err := db.PruneAudit(ctx, time.Time{}, 1); err != nil {
		t.Fatal(err)
	}
	if len(indexed(t, db)) != 0 {
		t.Fatalf("left %v", indexed(t, db))
	}
}

func TestPruneAuditByAge(t *testing.T) {
	ctx := context.Background()
	db := auditTestDB(t)
	if err := db.InsertAudit(ctx, []audit.Record{
		{Time: auditBase, Kind: audit.KindLifecycle, RequestID: "old"},
		{Time: auditBase.Add(time.Hour), Kind: audit.KindLifecycle, RequestID: "new"},
	}); err != nil {
		t.Fatal(err)
	}
	n, err := db.PruneAudit(ctx, auditBase.Add(time.Minute), 0)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	if have := indexed(t, db); have["old"] || !have["new"] {
		t.Fatalf("kept %v", have)
	}
}
