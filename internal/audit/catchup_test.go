package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/store"
)

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// clockAt is stepClock starting at base+offset, so that each writer of a test
// writes records later than the one before.
func clockAt(offset time.Duration) func() time.Time {
	c := stepClock()
	return func() time.Time { return c().Add(offset) }
}

// writeFileOnly appends records to dir's audit file with a writer that has no index
// (its clock at base+1h): what a crash between the file write and the index insert
// leaves behind.
func writeFileOnly(t *testing.T, cfg audit.Config, tools ...string) {
	t.Helper()
	w, err := audit.New(cfg, audit.Deps{Now: clockAt(time.Hour), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools {
		w.Record(audit.Record{Kind: audit.KindExecution, Tool: tool, Event: "executed"})
	}
	closeWriter(t, w)
}

// indexedTools returns the tools of every indexed record, oldest first, failing the
// test on a duplicate.
func indexedTools(t *testing.T, db *store.DB) []string {
	t.Helper()
	recs, err := db.QueryAudit(context.Background(), audit.Filter{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var tools []string
	for i := len(recs) - 1; i >= 0; i-- {
		tools = append(tools, recs[i].Tool)
	}
	return tools
}

func tools(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// TestCatchUpIndexesWhatTheIndexMissed: records in the file past the index's
// position (written, then a crash before the insert) and a torn last line (a crash
// in the middle of a write). The next writer indexes exactly the complete records,
// once each, skips the torn line with a count, and starts its own records on a line
// of their own.
func TestCatchUpIndexesWhatTheIndexMissed(t *testing.T) {
	dir := t.TempDir()
	db := openStore(t)

	w1, _ := newWriter(t, audit.Config{Dir: dir}, audit.Deps{Index: db})
	for _, tool := range tools("indexed", 5) {
		w1.Record(audit.Record{Kind: audit.KindExecution, Tool: tool, Event: "executed"})
	}
	closeWriter(t, w1)
	writeFileOnly(t, audit.Config{Dir: dir}, tools("missed", 3)...)

	path := filepath.Join(dir, audit.FileName)
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lastLine := whole[bytes.LastIndexByte(whole[:len(whole)-1], '\n')+1:]
	torn := lastLine[:len(lastLine)/2] // half a record, no newline
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
	f.Close()

	w2, reg := newWriter(t, audit.Config{Dir: dir}, audit.Deps{Index: db, Now: clockAt(2 * time.Hour)})
	w2.Record(audit.Record{Kind: audit.KindExecution, Tool: "after", Event: "executed"})
	closeWriter(t, w2)

	want := append(append(tools("indexed", 5), tools("missed", 3)...), "after")
	if got := indexedTools(t, db); !slices.Equal(got, want) {
		t.Errorf("indexed = %v\nwant      %v", got, want)
	}
	if got := counter(t, reg, "clawbox_audit_skipped_lines_total"); got != 1 {
		t.Errorf("clawbox_audit_skipped_lines_total = %v, want 1 (the torn line)", got)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wantTail := string(torn) + "\n"
	rest := b[len(whole):]
	if len(rest) < len(wantTail) || string(rest[:len(wantTail)]) != wantTail {
		t.Fatalf("after the torn line the file holds %q, want the torn line ended by a newline", rest)
	}
	if got := readRecordsSkipping(t, rest[len(wantTail):]); len(got) != 1 || got[0].Tool != "after" {
		t.Errorf("the next record did not start a line of its own: %q", rest[len(wantTail):])
	}

	// A third start finds nothing new: nothing is indexed twice.
	w3, _ := newWriter(t, audit.Config{Dir: dir}, audit.Deps{Index: db})
	closeWriter(t, w3)
	if got := indexedTools(t, db); !slices.Equal(got, want) {
		t.Errorf("after another start, indexed = %v", got)
	}
}

// readRecordsSkipping decodes JSONL bytes.
func readRecordsSkipping(t *testing.T, b []byte) []audit.Record {
	t.Helper()
	p := filepath.Join(t.TempDir(), "part.jsonl")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return readRecords(t, p)
}

// TestCatchUpAcrossRotation: the index's position is in a file that has since been
// rotated (audit.jsonl is now audit.jsonl.2): catch-up goes on from there through
// the newer files. When the file it had reached has been rotated out, every file
// left is newer, and all of them are indexed.
func TestCatchUpAcrossRotation(t *testing.T) {
	// Every line the same length, so that a file takes exactly 3.
	line := func(tool string) audit.Record {
		return audit.Record{Time: base, Kind: audit.KindExecution, Tool: tool, Event: "executed"}
	}
	lineLen := func() int64 {
		dir := t.TempDir()
		w, err := audit.New(audit.Config{Dir: dir}, audit.Deps{Now: stepClock(), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		w.Record(line("a0"))
		closeWriter(t, w)
		st, err := os.Stat(w.Path())
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}()
	for _, tc := range []struct {
		name     string
		maxFiles int
		missed   int
		want     []string
	}{
		// 3 lines a file. The indexed a0-a3 leave the position after a3, the
		// first line of the live file; the missed b0-b6 rotate it twice: .3 holds
		// a0-a2, .2 a3 b0 b1 (the position), .1 b2-b4, the live file b5 b6.
		{name: "position in a rotated file", maxFiles: 5, missed: 7, want: append(tools("a", 4), tools("b", 7)...)},
		// With one rotated file kept, the file holding a3 (and b0, b1) is gone:
		// what is left is b2-b6.
		{name: "position rotated out", maxFiles: 1, missed: 7, want: append(tools("a", 4), tools("b", 7)[2:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := audit.Config{Dir: dir, MaxBytes: 3 * lineLen, MaxFiles: tc.maxFiles}
			db := openStore(t)
			w1, _ := newWriter(t, cfg, audit.Deps{Index: db})
			for _, tool := range tools("a", 4) {
				w1.Record(line(tool))
			}
			closeWriter(t, w1)
			fileOnly, err := audit.New(cfg, audit.Deps{Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			for _, tool := range tools("b", tc.missed) {
				fileOnly.Record(line(tool))
			}
			closeWriter(t, fileOnly)

			w2, _ := newWriter(t, cfg, audit.Deps{Index: db})
			closeWriter(t, w2)
			if got := indexedTools(t, db); !slices.Equal(got, tc.want) {
				t.Errorf("indexed = %v\nwant      %v", got, tc.want)
			}
		})
	}
}

// memIndex is a LineIndex in memory whose inserts can be made to fail.
type memIndex struct {
	mu    sync.Mutex
	pos   audit.Position
	lines []string
	fail  int // inserts still to fail
	tries chan struct{}
	delay time.Duration // each insert takes this long (a slow disk)
}

func (m *memIndex) InsertAudit(context.Context, []audit.Record) error {
	return errors.New("memIndex: InsertAudit is not the line index's method")
}

func (m *memIndex) InsertAuditLines(_ context.Context, entries []audit.Entry, pos audit.Position) error {
	m.mu.Lock()
	defer func() {
		m.mu.Unlock()
		select {
		case m.tries <- struct{}{}:
		default:
		}
	}()
	if m.fail > 0 {
		m.fail--
		return errors.New("database is locked")
	}
	time.Sleep(m.delay)
	for _, e := range entries {
		m.lines = append(m.lines, string(e.Line))
	}
	m.pos = pos
	return nil
}

func (m *memIndex) AuditPosition(context.Context) (audit.Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pos, nil
}

// TestFailedInsertIsCaughtUpFromTheFile: a batch whose insert fails is indexed from
// the file with the next batch, and the index ends where the file ends.
func TestFailedInsertIsCaughtUpFromTheFile(t *testing.T) {
	idx := &memIndex{fail: 1, tries: make(chan struct{}, 1)}
	w, reg := newWriter(t, audit.Config{}, audit.Deps{Index: idx})
	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "r0"})
	<-idx.tries // failed
	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "r1"})
	closeWriter(t, w)

	b, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	lines := splitLines(b)
	if !slices.Equal(idx.lines, lines) || len(lines) != 2 {
		t.Errorf("indexed lines = %q\nfile lines    %q", idx.lines, lines)
	}
	if idx.pos.Offset != int64(len(b)) || idx.pos.File == "" {
		t.Errorf("position = %+v, want the end of the file (%d)", idx.pos, len(b))
	}
	if got := counter(t, reg, "clawbox_audit_index_errors_total"); got != 1 {
		t.Errorf("clawbox_audit_index_errors_total = %v, want 1", got)
	}
}

// TestCatchUpOfAnIndexWithoutPosition: an index kept by an older clawbox (records,
// no position) is taken as holding what the files hold: nothing is indexed twice,
// and the records written from then on are indexed.
func TestCatchUpOfAnIndexWithoutPosition(t *testing.T) {
	dir := t.TempDir()
	writeFileOnly(t, audit.Config{Dir: dir}, "old0", "old1")
	idx := &memIndex{pos: audit.Position{Offset: -1}, tries: make(chan struct{}, 1)}
	w, _ := newWriter(t, audit.Config{Dir: dir}, audit.Deps{Index: idx})
	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "new"})
	closeWriter(t, w)
	recs := readRecords(t, w.Path())
	if len(recs) != 3 || len(idx.lines) != 1 {
		t.Fatalf("file has %d records, index %q; want 3 and the new one", len(recs), idx.lines)
	}
	var r audit.Record
	if err := json.Unmarshal([]byte(idx.lines[0]), &r); err != nil || r.Tool != "new" {
		t.Errorf("indexed %q, want the new record", idx.lines[0])
	}
}

func splitLines(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, string(b))
			break
		}
		out = append(out, string(b[:i]))
		b = b[i+1:]
	}
	return out
}

// waitLines polls the writer's file until it holds n lines, failing the test after a
// deadline.
func waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if lines := splitLines(b); len(lines) >= n || time.Now().After(deadline) {
			if len(lines) != n {
				t.Fatalf("the file holds %d lines, want %d", len(lines), n)
			}
			return lines
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIndexLingerAndSync: records are in the file at once but wait for the linger
// before the index; Sync inserts them (every line, byte for byte, across batches
// written one at a time), a full batch does not wait, and Close indexes what
// lingers.
func TestIndexLingerAndSync(t *testing.T) {
	idx := &memIndex{tries: make(chan struct{}, 1)}
	w, _ := newWriter(t, audit.Config{IndexLinger: time.Hour, BatchSize: 64}, audit.Deps{Index: idx})
	for i := range 40 { // one batch each: the file is written before the next record
		w.Record(audit.Record{Kind: audit.KindExecution, Tool: toolName(i), Event: strings.Repeat("e", i*50)})
		waitLines(t, w.Path(), i+1)
	}
	idx.mu.Lock()
	if len(idx.lines) != 0 {
		t.Errorf("indexed %d lines before the linger ended, want none", len(idx.lines))
	}
	idx.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	idx.mu.Lock()
	if lines := splitLines(b); !slices.Equal(idx.lines, lines) {
		t.Errorf("after Sync, indexed lines = %q\nfile lines = %q", idx.lines, lines)
	}
	if idx.pos.Offset != int64(len(b)) {
		t.Errorf("position = %+v, want the end of the file (%d)", idx.pos, len(b))
	}
	idx.mu.Unlock()

	// A full batch is inserted without waiting for the linger.
	for i := range 64 {
		w.Record(audit.Record{Kind: audit.KindExecution, Tool: toolName(100 + i)})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		idx.mu.Lock()
		n := len(idx.lines)
		idx.mu.Unlock()
		if n >= 40+64 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a full batch was not indexed before the linger: %d lines indexed", n)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// What lingers at Close is indexed by Close.
	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "last"})
	waitLines(t, w.Path(), 40+64+1)
	closeWriter(t, w)
	if err := w.Sync(ctx); err != nil {
		t.Errorf("Sync after Close = %v, want nil", err)
	}
	b, err = os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if lines := splitLines(b); !slices.Equal(idx.lines, lines) {
		t.Errorf("after Close, %d lines indexed, the file holds %d", len(idx.lines), len(lines))
	}
}

// TestSyncIsBoundedByContext: a Sync waiting for an index that does not answer
// returns its context's error.
func TestSyncIsBoundedByContext(t *testing.T) {
	g := newGateIndex()
	w, _ := newWriter(t, audit.Config{}, audit.Deps{Index: g})
	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "held"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Sync = %v, want context.DeadlineExceeded", err)
	}
	close(g.release)
	closeWriter(t, w)
}

// count returns how many lines are indexed.
func (m *memIndex) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.lines)
}

// TestCatchUpGoesOnBetweenNewRecords: a long catch-up (a backlog of 300 lines in
// batches of 2, each insert slow) does not hold new records back until it ends: a
// record made at the start is in the file (Sync returns) while most of the backlog
// still waits for the index, and the index then ends as the file does, every line
// once, in order.
func TestCatchUpGoesOnBetweenNewRecords(t *testing.T) {
	dir := t.TempDir()
	cfg := audit.Config{Dir: dir, BatchSize: 2}
	const backlog = 300
	writeFileOnly(t, cfg, tools("backlog", backlog)...)
	idx := &memIndex{delay: time.Millisecond}
	w, _ := newWriter(t, cfg, audit.Deps{Index: idx, Now: clockAt(2 * time.Hour)})
	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "new", Event: "executed"})
	syncWriter(t, w)
	if n := idx.count(); n >= backlog {
		t.Errorf("the new record reached the file only after the whole catch-up (%d lines indexed before Sync returned)", n)
	}
	recs := readRecords(t, w.Path())
	if len(recs) != backlog+1 || recs[backlog].Tool != "new" {
		t.Fatalf("the file holds %d records, last %q; want the backlog, then the new record", len(recs), recs[len(recs)-1].Tool)
	}
	deadline := time.Now().Add(30 * time.Second)
	for idx.count() < backlog+1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	closeWriter(t, w)
	b, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	idx.mu.Lock()
	defer idx.mu.Unlock()
	if lines := splitLines(b); !slices.Equal(idx.lines, lines) {
		t.Errorf("indexed %d lines, the file holds %d: not the same lines in the same order", len(idx.lines), len(lines))
	}
}
