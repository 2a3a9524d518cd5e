package audit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/audit"
	"github.com/prometheus/client_golang/prometheus"
)

// quiet discards the writer's warnings, which tests provoke on purpose.
var quiet = slog.New(slog.DiscardHandler)

// base is the fixed start of every test clock.
var base = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// stepClock returns base, base+1ms, base+2ms, … on successive calls.
func stepClock() func() time.Time {
	var n atomic.Int64
	return func() time.Time { return base.Add(time.Duration(n.Add(1)-1) * time.Millisecond) }
}

// newWriter starts a writer on a fresh registry and closes it at the end of the test.
func newWriter(t *testing.T, cfg audit.Config, deps audit.Deps) (*audit.Writer, *prometheus.Registry) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	reg := prometheus.NewRegistry()
	deps.Registerer = reg
	if deps.Now == nil {
		deps.Now = stepClock()
	}
	if deps.Logger == nil {
		deps.Logger = quiet
	}
	w, err := audit.New(cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w, reg
}

func closeWriter(t *testing.T, w *audit.Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// readRecords decodes every line of a JSONL file.
func readRecords(t *testing.T, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// counter returns the value of a counter registered on reg (0 when absent).
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var v float64
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
			return v
		}
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}

// chanIndex passes every inserted batch to a channel, so tests know when the writer
// has finished a batch (fan-out happens before the index insert).
type chanIndex chan []audit.Record

func (c chanIndex) InsertAudit(ctx context.Context, recs []audit.Record) error {
	select {
	case c <- slices.Clone(recs):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gateIndex blocks every insert until release is closed (or the context ends),
// announcing on entered that the writer is inside an insert.
type gateIndex struct {
	entered chan struct{}
	release chan struct{}
	got     chan []audit.Record
}

func newGateIndex() *gateIndex {
	return &gateIndex{entered: make(chan struct{}, 1), release: make(chan struct{}), got: make(chan []audit.Record, 100)}
}

func (g *gateIndex) InsertAudit(ctx context.Context, recs []audit.Record) error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case g.got <- slices.Clone(recs):
	default:
	}
	return nil
}

// nonGap returns the tools of the records that are not gap records, and the sum of
// the gap records' Dropped.
func nonGap(recs []audit.Record) (tools []string, dropped int64) {
	for _, r := range recs {
		if r.Kind == audit.KindGap {
			dropped += r.Dropped
			continue
		}
		tools = append(tools, r.Tool)
	}
	return tools, dropped
}

func toolName(i int) string { return fmt.Sprintf("t%04d", i) }

// syncWriter waits until what was recorded so far has been written (or failed).
func syncWriter(t *testing.T, w *audit.Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}
