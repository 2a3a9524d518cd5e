package audit_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/poll"
)

// allFiles reads audit.jsonl and every rotated file, oldest first.
func allFiles(t *testing.T, w *audit.Writer, maxFiles int) []audit.Record {
	t.Helper()
	var out []audit.Record
	for i := maxFiles; i >= 0; i-- {
		p := w.Path()
		if i > 0 {
			p += "." + strconv.Itoa(i)
		}
		if _, err := os.Stat(p); err != nil {
			continue
		}
		out = append(out, readRecords(t, p)...)
	}
	return out
}

func TestWriterCapsFields(t *testing.T) {
	w, _ := newWriter(t, audit.Config{}, audit.Deps{})
	huge := "https://x.example/" + strings.Repeat("é", 1<<19)
	w.Record(audit.Record{Kind: audit.KindRequest, ContainerID: "c", Method: strings.Repeat("M", 1000), URL: huge,
		Host: strings.Repeat("h", 1000), Decision: audit.DecisionBlocked, Reason: strings.Repeat("r", 1<<20), Error: strings.Repeat("e", 1<<20)})
	closeWriter(t, w)
	st, err := os.Stat(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 8<<10 {
		t.Fatalf("one record took %d bytes", st.Size())
	}
	r := readRecords(t, w.Path())[0]
	for name, f := range map[string]string{"url": r.URL, "method": r.Method, "host": r.Host, "reason": r.Reason, "error": r.Error} {
		if !strings.HasSuffix(f, audit.TruncationMarker) {
			t.Errorf("%s %q… has no truncation marker", name, f[:min(len(f), 20)])
		}
	}
	if !strings.HasPrefix(r.URL, "https://x.example/é") || len(r.URL) > audit.MaxURLBytes {
		t.Errorf("url cut badly: %d bytes", len(r.URL))
	}
}

// TestWriterFloodKeepsOtherRecords is issue 14 item 5 with the real writer and files:
// 70 refused requests with a 1 MiB URL from one sandbox used to rotate an earlier
// allowed request's record (and every other record) out of every audit.jsonl* file.
func TestWriterFloodKeepsOtherRecords(t *testing.T) {
	const maxFiles = 2
	w, reg := newWriter(t, audit.Config{MaxBytes: 256 << 10, MaxFiles: maxFiles, RefusalBudget: 5}, audit.Deps{})
	w.Record(audit.Record{Kind: audit.KindRequest, ContainerID: "hostile", RequestID: "allowed-1", Method: "GET",
		URL: "https://ok.example/", Decision: audit.DecisionAllowed, Status: 200})
	w.Record(audit.Record{Kind: audit.KindRequest, ContainerID: "other", RequestID: "other-refused", Method: "GET",
		URL: "https://no.example/", Decision: audit.DecisionBlocked})
	long := "https://refused.example/" + strings.Repeat("a", 1<<20)
	const flood = 70
	for i := range flood {
		w.Record(audit.Record{Kind: audit.KindRequest, ContainerID: "hostile", RequestID: "flood-" + strconv.Itoa(i),
			Method: "GET", URL: long, Decision: audit.DecisionBlocked, Error: "blocked_by_policy: no rule"})
	}
	closeWriter(t, w)
	recs := allFiles(t, w, maxFiles)
	have := map[string]bool{}
	var floodWritten, aggregated int64
	for _, r := range recs {
		have[r.RequestID] = true
		if r.ContainerID == "hostile" && r.Decision == audit.DecisionBlocked {
			if r.Count > 0 {
				aggregated += r.Count
			} else {
				floodWritten++
			}
		}
	}
	if !have["allowed-1"] || !have["other-refused"] {
		t.Fatalf("the flood evicted records: allowed %v, other sandbox %v", have["allowed-1"], have["other-refused"])
	}
	if floodWritten != 5 || aggregated != flood-5 {
		t.Fatalf("flood: %d written on their own, %d aggregated; want 5 and %d", floodWritten, aggregated, flood-5)
	}
	if got := counter(t, reg, "clawbox_audit_aggregated_total"); got != flood-5 {
		t.Errorf("clawbox_audit_aggregated_total = %v", got)
	}
}

// TestWriterAggregatesPerWindow: a new window gives the caller a new budget, and the
// summary of the ended window is written before the first record of the new one.
func TestWriterAggregatesPerWindow(t *testing.T) {
	var mu sync.Mutex
	now := base
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w, _ := newWriter(t, audit.Config{RefusalBudget: 1, AggregateWindow: time.Hour}, audit.Deps{Now: clock})
	refusal := func(id string) audit.Record {
		return audit.Record{Time: clock(), Kind: audit.KindRequest, Tool: "t", RequestID: id, Decision: audit.DecisionRateLimited}
	}
	w.Record(refusal("a"))
	w.Record(refusal("b"))
	w.Record(refusal("c"))
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	w.Record(refusal("d"))
	closeWriter(t, w)
	recs := readRecords(t, w.Path())
	var got []string
	for _, r := range recs {
		got = append(got, r.RequestID+":"+strconv.FormatInt(r.Count, 10))
	}
	if strings.Join(got, " ") != "a:0 :2 d:0" {
		t.Fatalf("records %v, want a, a summary of 2, d", got)
	}
}

func TestWriterRetentionRemovesOldFiles(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, audit.FileName+".2")
	fresh := filepath.Join(dir, audit.FileName+".1")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(old, base.Add(-48*time.Hour), base.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(fresh, base, base); err != nil {
		t.Fatal(err)
	}
	w, reg := newWriter(t, audit.Config{Dir: dir, MaxAge: 24 * time.Hour, RetentionEvery: 10 * time.Millisecond}, audit.Deps{Now: func() time.Time { return base }})
	poll.Until(t, poll.Short, "retention to remove the old rotated file", func() (bool, error) {
		_, err := os.Stat(old)
		return os.IsNotExist(err), err
	})
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("the fresh rotated file was removed: %v", err)
	}
	closeWriter(t, w)
	if got := counter(t, reg, "clawbox_audit_pruned_total"); got != 1 {
		t.Errorf("clawbox_audit_pruned_total = %v", got)
	}
}
