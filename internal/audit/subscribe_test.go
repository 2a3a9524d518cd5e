package audit_test

import (
	"context"
	"slices"
	"testing"

	"github.com/clawbox/clawbox/internal/audit"
)

// waitIndexed reads batches from idx until it has seen a record with the given tool.
func waitIndexed(t *testing.T, idx chanIndex, tool string) {
	t.Helper()
	for batch := range idx {
		if slices.ContainsFunc(batch, func(r audit.Record) bool { return r.Tool == tool }) {
			return
		}
	}
}

func recv(t *testing.T, ch <-chan audit.Record) audit.Record {
	t.Helper()
	r, ok := <-ch
	if !ok {
		t.Fatal("subscription closed early")
	}
	return r
}

func TestSubscribeReceivesMatchingRecords(t *testing.T) {
	idx := make(chanIndex, 100)
	w, _ := newWriter(t, audit.Config{}, audit.Deps{Index: idx})
	all, cancelAll := w.Subscribe(context.Background(), audit.Filter{})
	defer cancelAll()
	c1, cancelC1 := w.Subscribe(context.Background(), audit.Filter{ContainerID: "c1", Decision: audit.DecisionBlocked})
	defer cancelC1()

	w.Record(audit.Record{Kind: audit.KindRequest, ContainerID: "c1", Decision: audit.DecisionAllowed, Tool: "a"})
	w.Record(audit.Record{Kind: audit.KindRequest, ContainerID: "c1", Decision: audit.DecisionBlocked, Tool: "b"})
	w.Record(audit.Record{Kind: audit.KindRequest, ContainerID: "c2", Decision: audit.DecisionBlocked, Tool: "c"})
	w.Record(audit.Record{Kind: audit.KindLifecycle, ContainerID: "c1", Event: "spawned", Tool: "d"})
	waitIndexed(t, idx, "d")

	for _, want := range []string{"a", "b", "c", "d"} {
		if got := recv(t, all); got.Tool != want {
			t.Errorf("unfiltered subscriber got %q, want %q", got.Tool, want)
		}
	}
	if got := recv(t, c1); got.Tool != "b" {
		t.Errorf("filtered subscriber got %q, want b", got.Tool)
	}
	closeWriter(t, w)
	if r, ok := <-c1; ok {
		t.Errorf("filtered subscriber got %+v after its only match", r)
	}
}

func TestSubscribeSlowSubscriberGetsGap(t *testing.T) {
	idx := make(chanIndex, 100)
	w, reg := newWriter(t, audit.Config{SubscriberBuffer: 2}, audit.Deps{Index: idx})
	slow, cancel := w.Subscribe(context.Background(), audit.Filter{})
	defer cancel()

	for i := range 5 {
		w.Record(audit.Record{Kind: audit.KindExecution, Tool: toolName(i)})
	}
	// The writer got past all five records although nobody reads the subscription.
	waitIndexed(t, idx, toolName(4))
	if got := counter(t, reg, "clawbox_audit_subscriber_dropped_total"); got != 3 {
		t.Errorf("clawbox_audit_subscriber_dropped_total = %v, want 3", got)
	}

	if got := recv(t, slow); got.Tool != toolName(0) {
		t.Errorf("first = %q, want %q", got.Tool, toolName(0))
	}
	if got := recv(t, slow); got.Tool != toolName(1) {
		t.Errorf("second = %q, want %q", got.Tool, toolName(1))
	}
	w.Record(audit.Record{Kind: audit.KindExecution, Tool: "next"})
	waitIndexed(t, idx, "next")
	if got := recv(t, slow); got.Kind != audit.KindGap || got.Dropped != 3 || got.Time.IsZero() {
		t.Errorf("after catching up got %+v, want a gap of 3", got)
	}
	if got := recv(t, slow); got.Tool != "next" {
		t.Errorf("after the gap got %q, want next", got.Tool)
	}
	tools, dropped := nonGap(readRecords(t, w.Path()))
	if len(tools) != 6 || dropped != 0 {
		t.Errorf("file has %d records and %d dropped: a slow subscriber cost records", len(tools), dropped)
	}
}

func TestSubscribeWriterGapReachesFilteredSubscribers(t *testing.T) {
	idx := newGateIndex()
	w, _ := newWriter(t, audit.Config{QueueSize: 1}, audit.Deps{Index: idx})
	sub, cancel := w.Subscribe(context.Background(), audit.Filter{ContainerID: "c1"})
	defer cancel()

	w.Record(audit.Record{Kind: audit.KindRequest, ContainerID: "c1", Tool: "r0"})
	<-idx.entered
	w.Record(audit.Record{Kind: audit.KindRequest, ContainerID: "c2", Tool: "r1"})
	w.Record(audit.Record{Kind: audit.KindRequest, ContainerID: "c1", Tool: "dropped"})
	close(idx.release)
	closeWriter(t, w)

	var got []audit.Record
	for r := range sub {
		got = append(got, r)
	}
	if len(got) != 2 || got[0].Tool != "r0" || got[1].Kind != audit.KindGap || got[1].Dropped != 1 {
		t.Errorf("subscriber of c1 got %+v, want r0 then a gap of 1", got)
	}
}

func TestSubscribeEnds(t *testing.T) {
	tests := []struct {
		name string
		end  func(w *audit.Writer, cancelCtx, cancelSub func())
	}{
		{name: "cancel func", end: func(_ *audit.Writer, _, cancelSub func()) { cancelSub(); cancelSub() }},
		{name: "context done", end: func(_ *audit.Writer, cancelCtx, _ func()) { cancelCtx() }},
		{name: "writer closed", end: func(w *audit.Writer, _, _ func()) {
			if err := w.Close(context.Background()); err != nil {
				panic(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idx := make(chanIndex, 100)
			w, _ := newWriter(t, audit.Config{}, audit.Deps{Index: idx})
			ctx, cancelCtx := context.WithCancel(context.Background())
			defer cancelCtx()
			ch, cancelSub := w.Subscribe(ctx, audit.Filter{})
			defer cancelSub()
			tc.end(w, cancelCtx, cancelSub)
			for r := range ch { // must end
				t.Errorf("unexpected record %+v", r)
			}
			// The writer still works for others (unless closed).
			w.Record(audit.Record{Kind: audit.KindLifecycle, Tool: "after"})
		})
	}
}

func TestSubscribeAfterClose(t *testing.T) {
	w, _ := newWriter(t, audit.Config{}, audit.Deps{})
	closeWriter(t, w)
	ch, cancel := w.Subscribe(context.Background(), audit.Filter{})
	defer cancel()
	if _, ok := <-ch; ok {
		t.Error("subscription after Close delivered a record")
	}
}
