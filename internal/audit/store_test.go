package audit_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/store"
)

// TestWriterIndexesIntoStore runs the writer against a real SQLite store: what is in
// the file is in the index, gap records included.
func TestWriterIndexesIntoStore(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	w, _ := newWriter(t, audit.Config{BatchSize: 3}, audit.Deps{Index: db})
	for i := range 10 {
		d := audit.DecisionAllowed
		if i%2 == 1 {
			d = audit.DecisionBlocked
		}
		w.Record(audit.Record{Kind: audit.KindRequest, ContainerID: "c1", Tool: toolName(i), Decision: d})
	}
	closeWriter(t, w)

	file := readRecords(t, w.Path())
	got, err := db.QueryAudit(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(file) || len(got) != 10 {
		t.Fatalf("index has %d records, file %d, want 10", len(got), len(file))
	}
	for i, r := range got {
		want := file[len(file)-1-i]
		if r.Tool != want.Tool || !r.Time.Equal(want.Time) || r.Decision != want.Decision {
			t.Errorf("index[%d] = %+v, want %+v", i, r, want)
		}
	}
	blocked, err := db.QueryAudit(ctx, audit.Filter{Decision: audit.DecisionBlocked, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(blocked) != 2 || blocked[0].Tool != toolName(9) || blocked[1].Tool != toolName(7) {
		t.Errorf("newest blocked = %+v", blocked)
	}
}
