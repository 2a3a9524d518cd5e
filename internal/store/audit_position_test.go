package store

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/audit"
)

// entries returns the records as the writer hands them over: each with its line.
func entries(t *testing.T, recs ...audit.Record) []audit.Entry {
	t.Helper()
	out := make([]audit.Entry, len(recs))
	for i, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = audit.Entry{Record: r, Line: b}
	}
	return out
}

func TestAuditLinesStoreLineAndPosition(t *testing.T) {
	ctx := context.Background()
	db := auditTestDB(t)
	if p, err := db.AuditPosition(ctx); err != nil || p != (audit.Position{}) {
		t.Fatalf("a new index's position = %+v, %v; want the zero Position", p, err)
	}
	recs := auditFixture()[0]
	pos := audit.Position{File: "f1", Offset: 1234}
	if err := db.InsertAuditLines(ctx, entries(t, recs...), pos); err != nil {
		t.Fatal(err)
	}
	if p, err := db.AuditPosition(ctx); err != nil || p != pos {
		t.Errorf("position = %+v, %v; want %+v", p, err, pos)
	}
	got, err := db.QueryAudit(ctx, audit.Filter{Kind: audit.KindRequest})
	if err != nil {
		t.Fatal(err)
	}
	if want := []audit.Record{recs[2], recs[1]}; !reflect.DeepEqual(got, want) {
		t.Errorf("request records = %+v\nwant %+v", got, want)
	}

	// The line is stored as it is, not encoded again from the record.
	odd := recs[0]
	odd.Time = auditBase.Add(time.Hour)
	odd.Event = "stored as written"
	line, _ := json.Marshal(odd)
	e := audit.Entry{Record: recs[0], Line: line}
	if err := db.InsertAuditLines(ctx, []audit.Entry{e}, audit.Position{File: "f1", Offset: 2000}); err != nil {
		t.Fatal(err)
	}
	got, err = db.QueryAudit(ctx, audit.Filter{Kind: audit.KindLifecycle, Limit: 1}) // recs[0]'s time and kind, inserted last
	if err != nil || len(got) != 1 || got[0].Event != "stored as written" {
		t.Errorf("newest record = %+v, %v; want the line's", got, err)
	}

	// Only the position moves (lines that were not records).
	if err := db.InsertAuditLines(ctx, nil, audit.Position{File: "f2", Offset: 10}); err != nil {
		t.Fatal(err)
	}
	if p, _ := db.AuditPosition(ctx); p != (audit.Position{File: "f2", Offset: 10}) {
		t.Errorf("position = %+v after a batch of no lines", p)
	}
}

func TestAuditLinesAllOrNothing(t *testing.T) {
	ctx := context.Background()
	db := auditTestDB(t)
	start := audit.Position{File: "f", Offset: 5}
	if err := db.InsertAuditLines(ctx, nil, start); err != nil {
		t.Fatal(err)
	}
	for name, batch := range map[string][]audit.Entry{
		"a record without a time": append(entries(t, audit.Record{Time: auditBase, Kind: audit.KindLifecycle}),
			entries(t, audit.Record{Kind: audit.KindLifecycle})...),
		"a record without its line": {{Record: audit.Record{Time: auditBase, Kind: audit.KindLifecycle}}},
	} {
		if err := db.InsertAuditLines(ctx, batch, audit.Position{File: "f", Offset: 99}); err == nil {
			t.Errorf("%s was accepted", name)
		}
	}
	if err := db.InsertAuditLines(ctx, nil, audit.Position{File: "f", Offset: -1}); err == nil {
		t.Error("a negative position was accepted")
	}
	if p, _ := db.AuditPosition(ctx); p != start {
		t.Errorf("position = %+v after failed batches, want %+v", p, start)
	}
	if got, _ := db.QueryAudit(ctx, audit.Filter{}); len(got) != 0 {
		t.Errorf("failed batches left %d records", len(got))
	}
}

// TestAuditPositionOfAnOlderIndex: an index that an older clawbox filled (records,
// no position) gets the position that says "the files are indexed"; an empty one
// starts at the beginning of the files.
func TestAuditPositionOfAnOlderIndex(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		records int
		want    audit.Position
	}{
		{"with records", 2, audit.Position{Offset: -1}},
		{"empty", 0, audit.Position{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "state.db")
			old, err := open(ctx, p, 7) // the schema before audit positions
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.records {
				if err := old.InsertAudit(ctx, []audit.Record{{Time: auditBase.Add(time.Duration(i)), Kind: audit.KindLifecycle}}); err != nil {
					t.Fatal(err)
				}
			}
			old.Close()
			db, err := Open(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if got, err := db.AuditPosition(ctx); err != nil || got != tc.want {
				t.Errorf("position = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestAuditLinesLargeBatch: a batch of several multi-row statements and single
// rows keeps every record, in order.
func TestAuditLinesLargeBatch(t *testing.T) {
	ctx := context.Background()
	db := auditTestDB(t)
	const n = 2*auditRowsPerInsert + 7
	recs := make([]audit.Record, n)
	for i := range recs {
		// Equal times: the order comes from the insertion.
		recs[i] = audit.Record{Time: auditBase, Kind: audit.KindExecution, Tool: "t", RequestID: "r" + strconv.Itoa(i)}
	}
	if err := db.InsertAuditLines(ctx, entries(t, recs...), audit.Position{File: "f", Offset: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := db.QueryAudit(ctx, audit.Filter{Tool: "t", Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(got)
	if !reflect.DeepEqual(got, recs) {
		t.Errorf("got %v, want %v", requestIDs(got), requestIDs(recs))
	}
}
