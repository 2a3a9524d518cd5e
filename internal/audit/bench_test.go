package audit_test

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/store"
)

// benchRecord is the record of one allowed GET through a door, the most common
// record of a busy server.
func benchRecord(i int) audit.Record {
	return audit.Record{
		Kind: audit.KindRequest, ContainerID: "c-0123456789abcdef", RequestID: "req-" + toolName(i),
		Method: "GET", URL: "https://api.github.com/repos/clawbox/clawbox/issues?per_page=100&token=REDACTED",
		Host: "api.github.com", Decision: audit.DecisionAllowed, Rule: "api.github.com",
		Credentials: []string{"github"}, Status: 200, BytesOut: 120, BytesIn: 34567, LatencyMS: 42,
	}
}

// signalIndex is the real store, announcing each batch it has committed.
type signalIndex struct {
	*store.DB
	done chan int
}

func (s signalIndex) InsertAudit(ctx context.Context, recs []audit.Record) error {
	err := s.DB.InsertAudit(ctx, recs)
	s.done <- len(recs)
	return err
}

func (s signalIndex) InsertAuditLines(ctx context.Context, entries []audit.Entry, pos audit.Position) error {
	err := s.DB.InsertAuditLines(ctx, entries, pos)
	s.done <- len(entries)
	return err
}

func benchStore(b *testing.B) *store.DB {
	b.Helper()
	db, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func benchWriter(b *testing.B, cfg audit.Config, idx audit.Index) *audit.Writer {
	b.Helper()
	cfg.Dir = b.TempDir()
	w, err := audit.New(cfg, audit.Deps{Index: idx, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		w.Close(ctx)
	})
	return w
}

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per op since start (every goroutine's:
// the writer's, SQLite's and the benchmark's own), which a loaded machine disturbs
// less than the wall-clock ns/op.
func reportCPU(b *testing.B, start time.Duration, n int) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(n), "cpu-ns/op")
}

// BenchmarkWriterIndexed records audit records through the writer into a real
// SQLite index (WAL, in b.TempDir()). serial waits for each record's insert before
// the next, without a linger, so every record is a batch of its own; trickle sends
// one record every 250µs (a c=1 stream of requests) with the default linger, so the
// records that arrive within one are indexed together; burst queues every record at
// once, so they are written and indexed in batches of DefaultBatchSize. An op is one
// record, from Record to committed in the index.
func BenchmarkWriterIndexed(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		idx := signalIndex{DB: benchStore(b), done: make(chan int, 1)}
		w := benchWriter(b, audit.Config{IndexLinger: -1}, idx)
		b.ReportAllocs()
		b.ResetTimer()
		start := cpuTime(b)
		for i := range b.N {
			w.Record(benchRecord(i))
			<-idx.done
		}
		reportCPU(b, start, b.N)
	})
	b.Run("trickle", func(b *testing.B) {
		idx := signalIndex{DB: benchStore(b), done: make(chan int, 64)}
		w := benchWriter(b, audit.Config{QueueSize: b.N}, idx)
		b.ReportAllocs()
		b.ResetTimer()
		start := cpuTime(b)
		next := time.Now()
		for i := range b.N {
			w.Record(benchRecord(i))
			next = next.Add(250 * time.Microsecond)
			time.Sleep(time.Until(next))
		}
		if err := w.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
		for n := 0; n < b.N; n += <-idx.done {
		}
		reportCPU(b, start, b.N)
	})
	b.Run("burst", func(b *testing.B) {
		idx := signalIndex{DB: benchStore(b), done: make(chan int, 64)}
		// The queue holds every record: none is dropped.
		w := benchWriter(b, audit.Config{QueueSize: b.N}, idx)
		b.ReportAllocs()
		b.ResetTimer()
		start := cpuTime(b)
		for i := range b.N {
			w.Record(benchRecord(i))
		}
		for n := 0; n < b.N; n += <-idx.done {
		}
		reportCPU(b, start, b.N)
	})
}

// BenchmarkCatchUp indexes, from the audit file, catchUpRecords records that the
// index does not hold (written by a writer without one), as a start after a crash
// does: an op is the whole catch-up, from New to the last batch committed, into a
// new SQLite index each time.
func BenchmarkCatchUp(b *testing.B) {
	const catchUpRecords = 10000
	dir := b.TempDir()
	w, err := audit.New(audit.Config{Dir: dir, QueueSize: catchUpRecords, MaxBytes: 1 << 30}, audit.Deps{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	for i := range catchUpRecords {
		w.Record(benchRecord(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		db, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "state.db"))
		if err != nil {
			b.Fatal(err)
		}
		idx := signalIndex{DB: db, done: make(chan int, 64)}
		start := cpuTime(b)
		b.StartTimer()
		w, err := audit.New(audit.Config{Dir: dir, MaxBytes: 1 << 30}, audit.Deps{Index: idx, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < catchUpRecords; n += <-idx.done {
		}
		b.StopTimer()
		cpu += cpuTime(b) - start
		if err := w.Close(ctx); err != nil {
			b.Fatal(err)
		}
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu)/float64(b.N*catchUpRecords), "cpu-ns/record")
}
