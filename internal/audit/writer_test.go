package audit_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/audit"
	"github.com/prometheus/client_golang/prometheus"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestWriterCreatesPrivateFilesAndStampsTime(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "audit")
	w, _ := newWriter(t, audit.Config{Dir: dir}, audit.Deps{})
	explicit := base.Add(-time.Hour).In(time.FixedZone("X", 3600))
	w.Record(audit.Record{Kind: audit.KindLifecycle, ContainerID: "c1", Event: "spawned"})
	w.Record(audit.Record{Time: explicit, Kind: audit.KindLifecycle, ContainerID: "c1", Event: "reaped"})
	closeWriter(t, w)

	if st, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	} else if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %v, want 0700", st.Mode().Perm())
	}
	if st, err := os.Stat(w.Path()); err != nil {
		t.Fatal(err)
	} else if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, want 0600", st.Mode().Perm())
	}
	got := readRecords(t, w.Path())
	if len(got) != 2 {
		t.Fatalf("got %d records, want 2: %+v", len(got), got)
	}
	if !got[0].Time.Equal(base) || got[0].Time.Location() != time.UTC {
		t.Errorf("defaulted time = %v, want the clock's %v in UTC", got[0].Time, base)
	}
	if !got[1].Time.Equal(explicit) || got[1].Time.Location() != time.UTC {
		t.Errorf("explicit time = %v, want %v in UTC", got[1].Time, explicit)
	}
	if got[0].Event != "spawned" || got[1].Event != "reaped" {
		t.Errorf("events = %q, %q", got[0].Event, got[1].Event)
	}
}

func TestWriterAppendsToExistingFile(t *testing.T) {
	dir := t.TempDir()
	for _, ev := range []string{"first", "second"} {
		w, err := audit.New(audit.Config{Dir: dir}, audit.Deps{Now: stepClock(), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		w.Record(audit.Record{Kind: audit.KindLifecycle, Event: ev})
		closeWriter(t, w)
	}
	got := readRecords(t, filepath.Join(dir, audit.FileName))
	if len(got) != 2 || got[0].Event != "first" || got[1].Event != "second" {
		t.Fatalf("records = %+v", got)
	}
}

func TestWriterRecordCopiesCallerSlices(t *testing.T) {
	idx := make(chanIndex, 10)
	w, _ := newWriter(t, audit.Config{}, audit.Deps{Index: idx})
	creds := []string{"github"}
	code := 3
	w.Record(audit.Record{Kind: audit.KindExecution, Credentials: creds, ExitCode: &code})
	creds[0], code = "changed", 4
	closeWriter(t, w)
	got := readRecords(t, w.Path())
	if len(got) != 1 || got[0].Credentials[0] != "github" || *got[0].ExitCode != 3 {
		t.Fatalf("record = %+v", got)
	}
}

func TestWriterGoldenLines(t *testing.T) {
	w, _ := newWriter(t, audit.Config{}, audit.Deps{})
	exit := 0
	for _, r := range []audit.Record{
		{Time: base, Kind: audit.KindRequest, ContainerID: "c-1", RequestID: "req-1", Method: "GET",
			URL: "https://api.github.com/repos?token=REDACTED", Host: "api.github.com",
			Decision: audit.DecisionAllowed, Rule: "api.github.com", Credentials: []string{"github"},
			Status: 200, BytesOut: 12, BytesIn: 3456, LatencyMS: 42},
		{Time: base.Add(time.Millisecond), Kind: audit.KindRequest, Tool: "web_fetch", Method: "POST",
			URL: "http://169.254.169.254/latest", Host: "169.254.169.254", Decision: audit.DecisionBlocked,
			Reason: "private_address"},
		{Time: base.Add(2 * time.Millisecond), Kind: audit.KindLifecycle, ContainerID: "c-1", Event: "completed", ExitCode: &exit},
		{Time: base.Add(3 * time.Millisecond), Kind: audit.KindExecution, Tool: "echo", Event: "executed", Error: "timeout: tool ran past 30s"},
		{Time: base.Add(4 * time.Millisecond), Kind: audit.KindGap, Dropped: 7},
	} {
		w.Record(r)
	}
	closeWriter(t, w)
	got, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "audit.jsonl.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("audit lines differ from %s (run with -update if intended)\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

func TestWriterRotation(t *testing.T) {
	// Every line of this test is the same length, so the number of lines per file is
	// known: a file takes linesPerFile lines before it rotates.
	line := func(i int) audit.Record {
		return audit.Record{Time: base, Kind: audit.KindExecution, Tool: toolName(i), Event: "executed"}
	}
	lineLen := func() int64 {
		dir := t.TempDir()
		w, err := audit.New(audit.Config{Dir: dir}, audit.Deps{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		w.Record(line(0))
		closeWriter(t, w)
		st, err := os.Stat(w.Path())
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}()
	const linesPerFile = 4

	for _, tc := range []struct {
		name     string
		maxFiles int
		records  int
		wantKept int // records left in the files, the newest ones
	}{
		{name: "all kept", maxFiles: 5, records: 22, wantKept: 22},
		{name: "exactly full", maxFiles: 2, records: 12, wantKept: 12},
		{name: "oldest dropped", maxFiles: 2, records: 23, wantKept: 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Small batches, so that rotation also happens between batches.
			w, _ := newWriter(t, audit.Config{MaxBytes: linesPerFile * lineLen, MaxFiles: tc.maxFiles, BatchSize: 3}, audit.Deps{})
			for i := range tc.records {
				w.Record(line(i))
			}
			closeWriter(t, w)

			var all []string
			for i := tc.maxFiles + 1; i >= 0; i-- {
				p := w.Path()
				if i > 0 {
					p += "." + strconv.Itoa(i)
				}
				st, err := os.Stat(p)
				if i > tc.maxFiles {
					if err == nil {
						t.Errorf("%s exists, want at most %d rotated files", p, tc.maxFiles)
					}
					continue
				}
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if st.Size() > linesPerFile*lineLen {
					t.Errorf("%s is %d bytes, over MaxBytes %d", p, st.Size(), linesPerFile*lineLen)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("%s mode = %v, want 0600", p, st.Mode().Perm())
				}
				tools, _ := nonGap(readRecords(t, p))
				all = append(all, tools...)
			}
			var want []string
			for i := tc.records - tc.wantKept; i < tc.records; i++ {
				want = append(want, toolName(i))
			}
			if !slices.Equal(all, want) {
				t.Errorf("records across files (oldest first) =\n%v\nwant\n%v", all, want)
			}
		})
	}
}

func TestWriterQueueFullWritesGapRecord(t *testing.T) {
	idx := newGateIndex()
	w, reg := newWriter(t, audit.Config{QueueSize: 1}, audit.Deps{Index: idx})

	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "r0"})
	<-idx.entered                                                 // the writer holds r0 and is stuck in the index
	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "r1"}) // fills the queue
	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "r2"}) // dropped
	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "r3"}) // dropped
	if got := counter(t, reg, "clawbox_audit_dropped_total"); got != 2 {
		t.Errorf("clawbox_audit_dropped_total = %v, want 2", got)
	}
	close(idx.release)
	closeWriter(t, w)

	got := readRecords(t, w.Path())
	if len(got) != 3 || got[0].Tool != "r0" || got[1].Tool != "r1" || got[2].Kind != audit.KindGap || got[2].Dropped != 2 {
		t.Fatalf("records = %+v, want r0, r1, gap of 2", got)
	}
	if got[2].Time.IsZero() {
		t.Error("gap record has no time")
	}
	var indexed []audit.Record
	for len(idx.got) > 0 {
		indexed = append(indexed, <-idx.got...)
	}
	if len(indexed) != 3 || indexed[2].Kind != audit.KindGap {
		t.Errorf("indexed = %+v, want the same three records", indexed)
	}
	if got := counter(t, reg, "clawbox_audit_records_total"); got != 3 {
		t.Errorf("clawbox_audit_records_total = %v, want 3", got)
	}
}

// TestWriterNeverLosesSilently hammers a tiny queue from many goroutines: every record
// is either in the file or counted by a gap record.
func TestWriterNeverLosesSilently(t *testing.T) {
	w, reg := newWriter(t, audit.Config{QueueSize: 2, BatchSize: 2, MaxBytes: 4096, MaxFiles: 100}, audit.Deps{})
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				w.Record(audit.Record{Kind: audit.KindExecution, Tool: fmt.Sprintf("g%d-%d", g, i)})
			}
		})
	}
	wg.Wait()
	closeWriter(t, w)

	var written []string
	var gaps int64
	for i := 100; i >= 0; i-- {
		p := w.Path()
		if i > 0 {
			p += "." + strconv.Itoa(i)
		}
		if _, err := os.Stat(p); err != nil {
			continue
		}
		tools, dropped := nonGap(readRecords(t, p))
		written = append(written, tools...)
		gaps += dropped
	}
	if int64(len(written))+gaps != goroutines*each {
		t.Errorf("written %d + gap-counted %d = %d, want %d", len(written), gaps, int64(len(written))+gaps, goroutines*each)
	}
	if got := counter(t, reg, "clawbox_audit_dropped_total"); got != float64(gaps) {
		t.Errorf("clawbox_audit_dropped_total = %v, gap records count %d", got, gaps)
	}
	// Each goroutine's records keep their order.
	last := map[string]int{}
	for _, tool := range written {
		var g, i int
		if _, err := fmt.Sscanf(tool, "g%d-%d", &g, &i); err != nil {
			t.Fatal(err)
		}
		key := strconv.Itoa(g)
		if prev, ok := last[key]; ok && i <= prev {
			t.Fatalf("goroutine %d: record %d written after %d", g, i, prev)
		}
		last[key] = i
	}
}

func TestWriterCloseDrainsAndIsIdempotent(t *testing.T) {
	idx := newGateIndex()
	w, reg := newWriter(t, audit.Config{QueueSize: 100, BatchSize: 10}, audit.Deps{Index: idx})
	w.Record(audit.Record{Kind: audit.KindExecution, Tool: toolName(0)})
	<-idx.entered // the writer is busy, so the next records stay queued
	for i := 1; i < 50; i++ {
		w.Record(audit.Record{Kind: audit.KindExecution, Tool: toolName(i)})
	}
	close(idx.release)
	closeWriter(t, w)
	closeWriter(t, w) // again: same result, no panic

	tools, dropped := nonGap(readRecords(t, w.Path()))
	if len(tools) != 50 || dropped != 0 {
		t.Fatalf("after Close: %d records and %d dropped, want 50 and 0", len(tools), dropped)
	}
	for i, tool := range tools {
		if tool != toolName(i) {
			t.Fatalf("record %d is %s, want %s", i, tool, toolName(i))
		}
	}

	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "late"})
	if got := counter(t, reg, "clawbox_audit_dropped_total"); got != 1 {
		t.Errorf("record after Close: clawbox_audit_dropped_total = %v, want 1", got)
	}
	if tools, _ := nonGap(readRecords(t, w.Path())); len(tools) != 50 {
		t.Errorf("a record after Close was written")
	}
}

func TestWriterCloseIsBoundedByContext(t *testing.T) {
	idx := newGateIndex() // never released: only the context frees the writer
	w, reg := newWriter(t, audit.Config{QueueSize: 10}, audit.Deps{Index: idx})
	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "r0"})
	<-idx.entered
	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "r1"})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a cancelled context = %v, want context.Canceled", err)
	}
	got := readRecords(t, w.Path())
	if len(got) != 1 || got[0].Tool != "r0" {
		t.Errorf("file = %+v, want r0 only (written before the index blocked)", got)
	}
	if got := counter(t, reg, "clawbox_audit_dropped_total"); got != 1 {
		t.Errorf("clawbox_audit_dropped_total = %v, want 1 (r1 abandoned)", got)
	}
	if got := counter(t, reg, "clawbox_audit_index_errors_total"); got != 1 {
		t.Errorf("clawbox_audit_index_errors_total = %v, want 1", got)
	}
}

type failingIndex struct{}

func (failingIndex) InsertAudit(context.Context, []audit.Record) error {
	return errors.New("disk I/O error")
}

func TestWriterIndexFailureKeepsFile(t *testing.T) {
	w, reg := newWriter(t, audit.Config{}, audit.Deps{Index: failingIndex{}})
	w.Record(audit.Record{Kind: audit.KindLifecycle, Event: "spawned"})
	closeWriter(t, w)
	if got := readRecords(t, w.Path()); len(got) != 1 {
		t.Errorf("file has %d records, want 1", len(got))
	}
	if got := counter(t, reg, "clawbox_audit_index_errors_total"); got != 1 {
		t.Errorf("clawbox_audit_index_errors_total = %v, want 1", got)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := audit.New(audit.Config{}, audit.Deps{}); err == nil {
		t.Error("New with no directory succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.New(audit.Config{Dir: file}, audit.Deps{}); err == nil {
		t.Error("New with a file as directory succeeded")
	}
	// Registering twice on one registry is refused rather than silently unregistered.
	_, reg := newWriter(t, audit.Config{}, audit.Deps{})
	if _, err := audit.New(audit.Config{Dir: t.TempDir()}, audit.Deps{Registerer: reg}); err == nil {
		t.Error("second writer on the same registry succeeded")
	}
}

func TestNewFailureLeavesRegistryUsable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if _, err := audit.New(audit.Config{Dir: file}, audit.Deps{Registerer: reg, Logger: quiet}); err == nil {
		t.Fatal("New with a file as directory succeeded")
	}
	w, err := audit.New(audit.Config{Dir: t.TempDir()}, audit.Deps{Registerer: reg, Logger: quiet})
	if err != nil {
		t.Fatalf("New after a failed New on the same registry: %v", err)
	}
	closeWriter(t, w)
	if got := counter(t, reg, "clawbox_audit_dropped_total"); got != 0 {
		t.Errorf("clawbox_audit_dropped_total = %v", got)
	}
}

// TestWriterRotationFailureLosesNothing makes rotation fail (the oldest rotated name is
// a non-empty directory, which cannot be removed): the writer keeps appending to the
// live file and counts the errors.
func TestWriterRotationFailureLosesNothing(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, audit.FileName+".1")
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	w, reg := newWriter(t, audit.Config{Dir: dir, MaxBytes: 10, MaxFiles: 1}, audit.Deps{})
	for i := range 5 {
		w.Record(audit.Record{Kind: audit.KindExecution, Tool: toolName(i)})
	}
	closeWriter(t, w)
	tools, _ := nonGap(readRecords(t, w.Path()))
	if len(tools) != 5 {
		t.Errorf("live file has %d records, want all 5", len(tools))
	}
	if got := counter(t, reg, "clawbox_audit_write_errors_total"); got != 4 {
		t.Errorf("clawbox_audit_write_errors_total = %v, want 4 (one failed rotation per record after the first)", got)
	}
}

// TestWriterResumesAfterAFailedWrite: the audit file is a device that refuses every
// write (/dev/full: ENOSPC, a full disk) while the first records are written; once
// the path is a plain file again, writing resumes with the very next record, and a
// gap record counts the records the failure lost: none is silently lost, and the
// failure does not stick.
func TestWriterResumesAfterAFailedWrite(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this machine")
	}
	dir := t.TempDir()
	live := filepath.Join(dir, audit.FileName)
	if err := os.Symlink("/dev/full", live); err != nil {
		t.Fatal(err)
	}
	w, reg := newWriter(t, audit.Config{Dir: dir}, audit.Deps{})
	const lostN, keptN = 3, 4
	for i := range lostN {
		w.Record(audit.Record{Kind: audit.KindExecution, Tool: toolName(i)})
	}
	syncWriter(t, w)
	if got := counter(t, reg, "clawbox_audit_write_errors_total"); got == 0 {
		t.Fatal("writes to /dev/full were not counted as write errors")
	}
	if err := os.Remove(live); err != nil {
		t.Fatal(err)
	}
	for i := range keptN {
		w.Record(audit.Record{Kind: audit.KindExecution, Tool: toolName(lostN + i)})
	}
	closeWriter(t, w)

	st, err := os.Lstat(live)
	if err != nil || !st.Mode().IsRegular() {
		t.Fatalf("the audit file was not opened again as a plain file: %v, %v", st, err)
	}
	tools, dropped := nonGap(readRecords(t, live))
	want := []string{toolName(3), toolName(4), toolName(5), toolName(6)}
	if !slices.Equal(tools, want) {
		t.Errorf("records after the failure = %q, want %q", tools, want)
	}
	if dropped != lostN {
		t.Errorf("gap records count %d dropped records, want the %d the failed write lost", dropped, lostN)
	}
	if got := counter(t, reg, "clawbox_audit_dropped_total"); got != lostN {
		t.Errorf("clawbox_audit_dropped_total = %v, want %d", got, lostN)
	}
}
