package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FileName is the name of the live audit file inside Config.Dir. Rotated files are
// FileName.1 (the newest) to FileName.N.
const FileName = "audit.jsonl"

// Defaults of Config.
const (
	DefaultMaxBytes         = 10 << 20 // 10 MiB
	DefaultMaxFiles         = 5
	DefaultQueueSize        = 4096
	DefaultBatchSize        = 256
	DefaultSubscriberBuffer = 256
	DefaultIndexTimeout     = 5 * time.Second
	DefaultRefusalBudget    = 20
	DefaultAggregateWindow  = time.Minute
	DefaultMaxAge           = 30 * 24 * time.Hour
	DefaultIndexMaxBytes    = 256 << 20
	DefaultRetentionEvery   = 10 * time.Minute
	DefaultIndexLinger      = 20 * time.Millisecond
)

// Config says where and how the audit log is written. Zero values mean the defaults.
type Config struct {
	// Dir holds audit.jsonl and its rotated files. Required. It is created 0700 when
	// missing; the files are created 0600.
	Dir string
	// MaxBytes is the size at which audit.jsonl is rotated (default 10 MiB). A file
	// never grows past it unless a single record is larger.
	MaxBytes int64
	// MaxFiles is how many rotated files are kept, audit.jsonl.1 to .N (default 5).
	MaxFiles int
	// QueueSize bounds the records waiting for the writer (default 4096). When the
	// queue is full, records are dropped, counted and replaced by a gap record.
	QueueSize int
	// BatchSize is the most records written and indexed together (default 256).
	BatchSize int
	// SubscriberBuffer bounds each live subscription (default 256). A subscriber
	// that falls behind gets a gap record instead of the records it missed.
	SubscriberBuffer int
	// IndexTimeout bounds each insert of a batch into the index (default 5s).
	IndexTimeout time.Duration
	// IndexLinger is how long records written to the file may wait for more before
	// they are inserted into a LineIndex together (default 20ms; negative: each
	// batch is inserted as soon as it is written). One commit costs the same for one
	// record as for a hundred, so at light load a linger turns one commit a request
	// into one per many. The file is written at once all the same, and Sync (which
	// GET /audit calls) inserts what lingers before it answers.
	IndexLinger time.Duration
	// RefusalBudget is how many records of refused requests one sandbox or tool may
	// have written per AggregateWindow (default 20; negative: no budget). The
	// refusals past it are counted and written as one record per decision, with
	// Count set, when the window ends.
	RefusalBudget   int
	AggregateWindow time.Duration // default 1 minute
	// MaxAge is how long records are kept: rotated files last modified earlier, and
	// indexed records older than that, are deleted (default 30 days; negative: kept
	// until rotated out by size).
	MaxAge time.Duration
	// IndexMaxBytes bounds the records in the index (their JSON size); past it the
	// oldest refusals are deleted first, then the oldest records of any kind
	// (default 256 MiB; negative: no bound).
	IndexMaxBytes int64
	// RetentionEvery is how often the writer applies MaxAge and IndexMaxBytes
	// (default 10 minutes, the first time one interval after New).
	RetentionEvery time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxFiles <= 0 {
		c.MaxFiles = DefaultMaxFiles
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.SubscriberBuffer <= 0 {
		c.SubscriberBuffer = DefaultSubscriberBuffer
	}
	if c.IndexTimeout <= 0 {
		c.IndexTimeout = DefaultIndexTimeout
	}
	if c.RefusalBudget == 0 {
		c.RefusalBudget = DefaultRefusalBudget
	}
	if c.AggregateWindow <= 0 {
		c.AggregateWindow = DefaultAggregateWindow
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.IndexMaxBytes == 0 {
		c.IndexMaxBytes = DefaultIndexMaxBytes
	}
	if c.RetentionEvery <= 0 {
		c.RetentionEvery = DefaultRetentionEvery
	}
	if c.IndexLinger == 0 {
		c.IndexLinger = DefaultIndexLinger
	}
	return c
}

// Index stores written records for queries. *store.DB implements it, and LineIndex
// too, which the writer uses instead when it can.
type Index interface {
	// InsertAudit stores the records, in order, or none of them.
	InsertAudit(ctx context.Context, recs []Record) error
}

// Pruner is an Index that can apply retention; *store.DB implements it. The writer
// calls it every Config.RetentionEvery.
type Pruner interface {
	// PruneAudit deletes the records older than before, then, while the records
	// take more than maxBytes (when maxBytes > 0), the oldest refusals, then the
	// oldest records. It returns how many it deleted.
	PruneAudit(ctx context.Context, before time.Time, maxBytes int64) (int64, error)
}

// Deps are the Writer's collaborators; nil fields mean the default.
type Deps struct {
	Index      Index                 // nil: the file only; a LineIndex is also caught up from the file
	Now        func() time.Time      // nil: time.Now
	Logger     *slog.Logger          // nil: slog.Default()
	Registerer prometheus.Registerer // nil: metrics are kept but not registered
}

// Writer appends records to the audit log. One goroutine owns the file: Record hands
// records to it through a bounded queue and never blocks. The writer rotates the file
// by size, indexes each written batch, and fans records out to live subscribers.
//
// With a LineIndex, the index is caught up from the files when the writer starts:
// the lines past the index's position (written before a crash, or while the index
// failed) are indexed before the new records.
type Writer struct {
	cfg   Config
	index Index
	lines LineIndex // index as a LineIndex, or nil
	now   func() time.Time
	log   *slog.Logger
	m     metrics

	// intake guards closed against Record: once Close has set it, no record enters
	// the queue, so the writer's final drain sees everything that was accepted.
	intake sync.RWMutex
	closed bool

	queue     chan Record
	dropped   atomic.Int64  // records dropped since the last gap record
	gapSignal chan struct{} // wakes the writer to write a gap record (capacity 1)

	syncReq   chan chan struct{} // Sync's requests: write and index what is queued, then close the reply
	stop      chan struct{}      // closed by Close: drain and exit
	abort     chan struct{}      // closed when Close's ctx ends: stop draining
	runCtx    context.Context
	runCancel context.CancelFunc
	done      chan struct{} // closed when the writer goroutine has exited
	closeOnce sync.Once
	abortOnce sync.Once
	closeErr  error // set by the writer goroutine before done is closed

	subs subscribers
	agg  *aggregator

	// Owned by the writer goroutine.
	file    *os.File
	size    int64
	fileID  string        // the live file's identity (see Position.File), "" while it is empty
	behind  bool          // an insert into lines failed: catch up from the files next
	more    bool          // a catch-up step stopped with more to index: take the next one
	enc     *json.Encoder // encodes a batch into encoded
	encoded bytes.Buffer
	ends    []int   // where each record of the batch ends in encoded, -1 if it was not encoded
	entries []Entry // records in the file not yet in lines (their lines are in encoded)
	linger  *time.Timer
	lingerC <-chan time.Time // linger's channel while entries wait for it, else nil
}

type metrics struct {
	written       prometheus.Counter
	dropped       prometheus.Counter
	writeErrors   prometheus.Counter
	indexErrors   prometheus.Counter
	aggregated    prometheus.Counter
	pruned        prometheus.Counter
	subscriberGap prometheus.Counter
	skipped       prometheus.Counter
}

func newMetrics() metrics {
	m := metrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clawbox_audit_records_total",
			Help: "Audit records written to the audit log, gap records included.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clawbox_audit_dropped_total",
			Help: "Audit records dropped because the queue was full or the writer was closed.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clawbox_audit_write_errors_total",
			Help: "Failed writes, flushes or rotations of the audit log file.",
		}),
		indexErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clawbox_audit_index_errors_total",
			Help: "Batches of audit records that could not be inserted into the index.",
		}),
		aggregated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clawbox_audit_aggregated_total",
			Help: "Refusal records past a caller's budget, counted into an aggregate record instead of written.",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clawbox_audit_pruned_total",
			Help: "Audit files and indexed records deleted by retention.",
		}),
		subscriberGap: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clawbox_audit_subscriber_dropped_total",
			Help: "Audit records a slow live subscriber missed (replaced by a gap record).",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clawbox_audit_skipped_lines_total",
			Help: "Lines of the audit files that are not records (torn by a crash during a write) and were not indexed.",
		}),
	}
	return m
}

// register registers every metric on reg, or none of them.
func (m metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	cs := []prometheus.Collector{m.written, m.dropped, m.writeErrors, m.indexErrors, m.aggregated, m.pruned, m.subscriberGap, m.skipped}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return fmt.Errorf("audit metrics: %w", err)
		}
	}
	return nil
}

// New opens (creating if needed) <cfg.Dir>/audit.jsonl for appending, registers the
// metrics on deps.Registerer and starts the writer goroutine. Close stops it (the
// metrics stay registered). A last line left incomplete by a crash is ended with a
// newline, so that the next record starts a line of its own. When deps.Index is a
// LineIndex, the writer goroutine first catches the index up from the files.
func New(cfg Config, deps Deps) (*Writer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("audit: empty directory")
	}
	cfg = cfg.withDefaults()
	m := newMetrics()
	w := &Writer{
		cfg:       cfg,
		index:     deps.Index,
		now:       deps.Now,
		log:       deps.Logger,
		m:         m,
		queue:     make(chan Record, cfg.QueueSize),
		gapSignal: make(chan struct{}, 1),
		syncReq:   make(chan chan struct{}),
		stop:      make(chan struct{}),
		abort:     make(chan struct{}),
		done:      make(chan struct{}),
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.lines, _ = deps.Index.(LineIndex)
	w.enc = json.NewEncoder(&w.encoded)
	w.linger = time.NewTimer(time.Hour)
	w.linger.Stop()
	w.subs.init()
	w.agg = newAggregator(cfg.RefusalBudget, cfg.AggregateWindow)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := w.openFile(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := m.register(deps.Registerer); err != nil {
		w.file.Close()
		return nil, err
	}
	w.runCtx, w.runCancel = context.WithCancel(context.Background())
	go w.run()
	return w, nil
}

// Path returns the live audit file.
func (w *Writer) Path() string { return filepath.Join(w.cfg.Dir, FileName) }

// Record queues r for writing and returns at once. A zero Time is set to now. The
// writer keeps its own copy of Credentials and ExitCode. When the queue is full the
// record is dropped and counted, and a gap record saying how many were dropped is
// written as soon as the writer catches up. r.Time defaults to the injected clock. After Close, records are dropped and
// counted.
func (w *Writer) Record(r Record) {
	if r.Time.IsZero() {
		r.Time = w.now()
	}
	r.Time = r.Time.UTC()
	r.Credentials = slices.Clone(r.Credentials)
	if r.ExitCode != nil {
		c := *r.ExitCode
		r.ExitCode = &c
	}
	capFields(&r)

	w.intake.RLock()
	defer w.intake.RUnlock()
	if w.closed {
		w.m.dropped.Inc()
		return
	}
	summaries, write := w.agg.admit(r, r.Time)
	for _, s := range summaries {
		w.enqueueLocked(s)
	}
	if !write {
		w.m.aggregated.Inc()
		return
	}
	w.enqueueLocked(r)
}

// enqueueLocked queues r or counts it as dropped; w.intake is read-locked.
func (w *Writer) enqueueLocked(r Record) {
	select {
	case w.queue <- r:
	default:
		w.m.dropped.Inc()
		w.dropped.Add(1)
		select {
		case w.gapSignal <- struct{}{}:
		default:
		}
	}
}

// Sync returns once every record queued before it was called is in the file and,
// with an index, inserted into it (or the insert failed, in which case the index
// catches up from the file later), or when ctx ends (its error). After Close it
// returns nil at once: Close drains what was accepted.
func (w *Writer) Sync(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case w.syncReq <- reply:
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting records, writes what is queued (until ctx ends), flushes and
// closes the file, and ends every subscription. It returns the error closing the
// file, or else ctx's error when the drain was cut short (the abandoned records are
// counted as dropped). It is safe to call more than once and concurrently; every call
// waits for the writer to stop, bounded by its own ctx.
func (w *Writer) Close(ctx context.Context) error {
	w.closeOnce.Do(func() {
		w.intake.Lock()
		w.closed = true
		w.intake.Unlock()
		close(w.stop)
	})
	select {
	case <-w.done:
		return w.closeErr
	case <-ctx.Done():
	}
	// Stop draining: the writer abandons what is left, and an index insert in
	// progress sees its context cancelled.
	w.abortOnce.Do(func() {
		close(w.abort)
		w.runCancel()
	})
	<-w.done
	if w.closeErr != nil {
		return w.closeErr
	}
	return ctx.Err()
}

// run is the writer goroutine.
func (w *Writer) run() {
	defer close(w.done)
	defer w.runCancel()
	if w.lines != nil {
		// The first step before any new record: they go after what the files
		// already hold (the index follows the files in order, step by step).
		w.indexBehind()
	}
	batch := make([]Record, 0, w.cfg.BatchSize)
	aggTick := time.NewTicker(w.cfg.AggregateWindow)
	defer aggTick.Stop()
	retTick := time.NewTicker(w.cfg.RetentionEvery)
	defer retTick.Stop()
	defer w.linger.Stop()
	ready := make(chan struct{})
	close(ready)
	for {
		// Once Close has been called, only the drain remains.
		select {
		case <-w.stop:
			// Intake is closed: the summaries of every open window go last.
			w.requeue(w.agg.flush(w.now(), true))
			w.drain(batch)
			w.indexPending()
			w.closeErr = w.finish()
			return
		default:
		}
		var moreC <-chan struct{}
		if w.more {
			moreC = ready
		}
		select {
		case <-moreC:
			w.indexBehind()
		case r := <-w.queue:
			batch = w.fill(append(batch[:0], r))
			w.process(batch)
		case <-w.gapSignal:
			// Records queued before the drop go first, then the gap record.
			w.process(w.fill(batch[:0]))
		case <-aggTick.C:
			if s := w.agg.flush(w.now(), false); len(s) > 0 {
				w.process(append(w.fill(batch[:0]), s...))
			}
		case <-w.lingerC:
			w.lingerC = nil
			w.indexPending()
		case reply := <-w.syncReq:
			// What was queued when Sync was called, at most a queue's worth.
			for range w.cfg.QueueSize/w.cfg.BatchSize + 1 {
				batch = w.fill(batch[:0])
				if len(batch) == 0 {
					break
				}
				w.process(batch)
			}
			w.indexPending()
			close(reply)
		case <-retTick.C:
			w.retain()
		case <-w.stop:
			// Handled at the top of the loop.
		}
	}
}

// requeue queues summaries after Close has closed intake (the queue is drained
// next); what does not fit is counted as dropped.
func (w *Writer) requeue(recs []Record) {
	for _, r := range recs {
		select {
		case w.queue <- r:
		default:
			w.m.dropped.Inc()
			w.dropped.Add(1)
		}
	}
}

// retain applies MaxAge to the rotated files, and MaxAge and IndexMaxBytes to the
// index when it is a Pruner. Errors are logged and counted; retention runs again
// at the next tick.
func (w *Writer) retain() {
	now := w.now()
	if w.cfg.MaxAge > 0 {
		for i := 1; i <= w.cfg.MaxFiles; i++ {
			p := w.Path() + "." + strconv.Itoa(i)
			st, err := os.Stat(p)
			if err != nil || now.Sub(st.ModTime()) < w.cfg.MaxAge {
				continue
			}
			if err := os.Remove(p); err != nil {
				w.m.writeErrors.Inc()
				w.log.Warn("audit: retention", "file", p, "err", err)
				continue
			}
			w.m.pruned.Inc()
		}
	}
	p, ok := w.index.(Pruner)
	if !ok {
		return
	}
	before := time.Time{}
	if w.cfg.MaxAge > 0 {
		before = now.Add(-w.cfg.MaxAge)
	}
	ctx, cancel := context.WithTimeout(w.runCtx, w.cfg.IndexTimeout*4)
	defer cancel()
	n, err := p.PruneAudit(ctx, before, max(w.cfg.IndexMaxBytes, 0))
	w.m.pruned.Add(float64(n))
	if err != nil {
		w.m.indexErrors.Inc()
		w.log.Warn("audit: index retention", "err", err)
	}
}

// fill appends queued records to batch without waiting, up to the batch size.
func (w *Writer) fill(batch []Record) []Record {
	for len(batch) < w.cfg.BatchSize {
		select {
		case r := <-w.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// drain writes everything still queued, unless Close's context ends first.
func (w *Writer) drain(batch []Record) {
	for {
		select {
		case <-w.abort:
			if n := len(w.queue); n > 0 {
				w.m.dropped.Add(float64(n))
				w.log.Warn("audit: close timed out, records not written", "records", n)
			}
			return
		default:
		}
		batch = w.fill(batch[:0])
		if len(batch) == 0 && w.dropped.Load() == 0 {
			return
		}
		w.process(batch)
	}
}

// process writes a batch (with a gap record after it if records were dropped), then
// fans it out to subscribers and inserts it into the index.
func (w *Writer) process(batch []Record) {
	if n := w.dropped.Swap(0); n > 0 {
		batch = append(batch, Record{Time: w.now().UTC(), Kind: KindGap, Dropped: n})
		w.log.Warn("audit: records dropped (a full queue or a failed write); a gap record counts them", "dropped", n)
	}
	if len(batch) == 0 {
		return
	}
	w.write(batch)
	w.subs.publish(batch, w.now, &w.m)
	switch {
	case w.lines != nil && w.behind:
		// The batch is in the file: catching up indexes it with what was missed.
		w.indexBehind()
	case w.lines != nil:
		switch {
		case len(w.entries) == 0:
		case len(w.entries) >= w.cfg.BatchSize || w.cfg.IndexLinger < 0:
			w.indexPending()
		case w.lingerC == nil:
			w.linger.Reset(w.cfg.IndexLinger)
			w.lingerC = w.linger.C
		}
		return // the entries wait for the linger
	case w.index != nil:
		ctx, cancel := context.WithTimeout(w.runCtx, w.cfg.IndexTimeout)
		err := w.index.InsertAudit(ctx, batch)
		cancel()
		if err != nil {
			w.m.indexErrors.Inc()
			w.log.Warn("audit: index insert failed; records are in the file only", "records", len(batch), "err", err)
		}
	}
	w.clearPending()
}

// indexPending inserts the records in the file that are not yet in lines, with the
// file's position after them.
func (w *Writer) indexPending() {
	if w.lines == nil || len(w.entries) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(w.runCtx, w.cfg.IndexTimeout)
	err := w.lines.InsertAuditLines(ctx, w.entries, Position{File: w.fileID, Offset: w.size})
	cancel()
	if err != nil {
		w.behind = true
		w.m.indexErrors.Inc()
		w.log.Warn("audit: index insert failed; the index will catch up from the file", "records", len(w.entries), "err", err)
	}
	w.clearPending()
}

// clearPending forgets the entries waiting for the index (indexed, or left to the
// catch-up) and stops the linger.
func (w *Writer) clearPending() {
	clear(w.entries) // their lines are in w.encoded, reused by the next batch
	w.entries = w.entries[:0]
	w.encoded.Reset()
	if w.lingerC != nil {
		w.linger.Stop()
		w.lingerC = nil
	}
}

// indexBehind catches the line index up from the files; until that succeeds, every
// batch tries again (and its records are indexed from the file).
// A catch-up goes in steps of catchUpStep batches; while more is left (w.more) the
// writer goroutine takes the next step whenever no record is waiting.
func (w *Writer) indexBehind() {
	done, err := w.catchUp(w.runCtx, catchUpStep)
	w.behind, w.more = !done || err != nil, err == nil && !done
	if err != nil {
		w.m.indexErrors.Inc()
		w.log.Warn("audit: catching the index up from the audit files failed; trying again with the next records", "err", err)
	}
}

// write appends the batch to the file, rotating before any record that would take
// the file past MaxBytes. Each record is encoded once, and the lines between two
// rotations go to the file in one write: w.entries gets the records that reached
// the file whole, with their lines. A record that did not (the file could not be
// opened, or a write failed: a full disk) is counted as dropped, so the next gap
// record reports it, and the file is closed: the next record opens it again, which
// ends a line the failed write left torn. Nothing of a failure sticks: writing
// resumes as soon as the file takes bytes again.
func (w *Writer) write(batch []Record) {
	// The lines of entries still waiting for the index stay where they are: new
	// lines are appended after them (a grown buffer leaves them in the old array).
	w.ends = w.ends[:0]
	first := w.encoded.Len()
	for _, r := range batch {
		if err := w.enc.Encode(r); err != nil { // cannot happen for Record; count it rather than panic
			w.m.writeErrors.Inc()
			w.log.Error("audit: encode record", "err", err)
			w.ends = append(w.ends, -1)
			continue
		}
		w.ends = append(w.ends, w.encoded.Len())
	}
	all := w.encoded.Bytes()
	var lost int64
	start := first // where record i's line starts in all
	for i := 0; i < len(batch); {
		if w.ends[i] < 0 {
			i++
			continue
		}
		if w.file != nil && w.size > 0 && w.size+int64(w.ends[i]-start) > w.cfg.MaxBytes {
			if err := w.rotate(); err != nil {
				w.m.writeErrors.Inc()
				w.log.Error("audit: rotate", "err", err)
			}
		}
		if w.file == nil {
			// A rotation, open or write failed (now or before): try again for every
			// record; the file may grow past MaxBytes until a rotation succeeds.
			if err := w.openFile(); err != nil {
				w.m.writeErrors.Inc()
				w.log.Error("audit: open audit file; record lost (counted in the next gap record)", "err", err, "kind", batch[i].Kind)
				lost++
				start = w.ends[i]
				i++
				continue
			}
		}
		// The run: record i and those after it that fit in the file before the next
		// rotation.
		j, end := i+1, w.ends[i]
		for ; j < len(batch); j++ {
			if w.ends[j] < 0 {
				continue
			}
			if w.size+int64(w.ends[j]-start) > w.cfg.MaxBytes {
				break
			}
			end = w.ends[j]
		}
		wasEmpty := w.size == 0
		n, err := w.file.Write(all[start:end])
		w.size += int64(n)
		if wasEmpty && n >= w.ends[i]-start {
			w.fileID = fileID(all[start : w.ends[i]-1])
		}
		from := start
		for k := i; k < j; k++ {
			if w.ends[k] < 0 {
				continue
			}
			if w.ends[k]-start > n {
				lost++
				continue
			}
			w.m.written.Inc()
			if w.lines != nil {
				w.entries = append(w.entries, Entry{Record: batch[k], Line: all[from : w.ends[k]-1]})
			}
			from = w.ends[k]
		}
		if err != nil {
			w.m.writeErrors.Inc()
			w.log.Error("audit: write records; the ones not written are counted in the next gap record", "err", err, "records", j-i)
			w.abandonFile()
		}
		start, i = end, j
	}
	if lost > 0 {
		w.m.dropped.Add(float64(lost))
		w.dropped.Add(lost)
	}
}

// abandonFile closes the live file after a failed write, without flushing: the
// next record opens it again.
func (w *Writer) abandonFile() {
	if w.file == nil {
		return
	}
	w.file.Close()
	w.file = nil
}

// openFile opens the live file for appending, 0600, and learns its size and
// identity. A last line without its newline (a crash in the middle of a write) is
// ended with one: the next record must not continue it. Catch-up then skips it,
// unless the newline was all it missed.
func (w *Writer) openFile() error {
	f, err := os.OpenFile(w.Path(), os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	size, id, err := w.endLastLine(f)
	if err != nil {
		f.Close()
		return err
	}
	w.file, w.size, w.fileID = f, size, id
	return nil
}

// endLastLine ends f's last line with a newline if it has none, and returns f's
// size and identity.
func (w *Writer) endLastLine(f *os.File) (int64, string, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	size := st.Size()
	if size == 0 {
		return 0, "", nil
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, size-1); err != nil {
		return 0, "", err
	}
	if last[0] != '\n' {
		w.log.Warn("audit: the last line of the audit file is incomplete (a crash during a write); ending it", "file", w.Path(), "size", size)
		if _, err := f.Write([]byte{'\n'}); err != nil {
			return 0, "", err
		}
		size++
	}
	id, err := readFileID(w.Path())
	return size, id, err
}

// closeFile syncs and closes the live file.
func (w *Writer) closeFile() error {
	if w.file == nil {
		return nil
	}
	err := w.file.Sync()
	if cerr := w.file.Close(); err == nil {
		err = cerr
	}
	w.file = nil
	return err
}

// rotate shifts audit.jsonl.i to .i+1 (dropping the oldest), moves the live file to
// .1 and opens a new one.
func (w *Writer) rotate() error {
	if err := w.closeFile(); err != nil {
		w.log.Error("audit: close before rotation", "err", err)
	}
	base := w.Path()
	name := func(i int) string { return base + "." + strconv.Itoa(i) }
	if err := os.Remove(name(w.cfg.MaxFiles)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for i := w.cfg.MaxFiles - 1; i >= 1; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(base, name(1)); err != nil {
		return err
	}
	return w.openFile()
}

// finish closes the file and ends every subscription.
func (w *Writer) finish() error {
	w.subs.closeAll()
	if err := w.closeFile(); err != nil {
		w.m.writeErrors.Inc()
		return fmt.Errorf("audit: close %s: %w", w.Path(), err)
	}
	return nil
}
