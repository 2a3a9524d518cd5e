package server

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/store"
)

type testAuditLog struct {
	db   *store.DB
	w    *audit.Writer
	subs *atomic.Int64 // subscriptions opened
}

func (a testAuditLog) QueryAudit(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
	return a.db.QueryAudit(ctx, f)
}
func (a testAuditLog) Subscribe(ctx context.Context, f audit.Filter) (<-chan audit.Record, func()) {
	a.subs.Add(1)
	return a.w.Subscribe(ctx, f)
}

func newAuditServer(t *testing.T) (*Server, *audit.Writer, *atomic.Int64) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w, err := audit.New(audit.Config{Dir: filepath.Join(dir, "audit")}, audit.Deps{Index: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	s, _ := newTestServer(t, Config{})
	subs := new(atomic.Int64)
	s.RegisterAudit(testAuditLog{db: db, w: w, subs: subs})
	return s, w, subs
}

func TestAuditQueryRoute(t *testing.T) {
	s, w, _ := newAuditServer(t)
	ts := start(t, s)
	w.Record(audit.Record{Kind: audit.KindRequest, ContainerID: "clawbox-a", Decision: audit.DecisionAllowed, Method: "GET", URL: "https://x/"})
	w.Record(audit.Record{Kind: audit.KindRequest, ContainerID: "clawbox-b", Decision: audit.DecisionBlocked, Method: "GET", URL: "https://y/"})
	w.Record(audit.Record{Kind: audit.KindLifecycle, ContainerID: "clawbox-a", Event: "spawned"})

	c, _ := client.New(ts.URL, client.Options{Token: testToken})
	var recs []api.AuditRecord
	waitFor(t, func() bool {
		var err error
		recs, err = c.Audit(context.Background(), client.AuditQuery{})
		return err == nil && len(recs) == 3
	})
	if recs[0].Event != "spawned" {
		t.Errorf("not newest first: %+v", recs[0])
	}
	got, err := c.Audit(context.Background(), client.AuditQuery{ContainerID: "clawbox-a", Kind: "request"})
	if err != nil || len(got) != 1 || got[0].URL != "https://x/" {
		t.Errorf("filtered query = %+v, %v", got, err)
	}
	got, err = c.Audit(context.Background(), client.AuditQuery{Decision: "blocked", Since: "1h", Limit: 5})
	if err != nil || len(got) != 1 || got[0].ContainerID != "clawbox-b" {
		t.Errorf("decision+since query = %+v, %v", got, err)
	}
	got, _ = c.Audit(context.Background(), client.AuditQuery{Since: time.Now().Add(time.Hour).Format(time.RFC3339)})
	if len(got) != 0 {
		t.Errorf("since in the future returned %d records", len(got))
	}

	for _, tc := range []struct{ query, field string }{
		{"decision=maybe", "decision"},
		{"kind=weird", "kind"},
		{"since=yesterday", "since"},
		{"limit=-1", "limit"},
		{"limit=x", "limit"},
	} {
		r := do(t, ts, "GET", "/audit?"+tc.query, testToken, "", "")
		d, _ := r.err.Details.(map[string]any)
		if r.status != 400 || r.err.Code != "invalid_request" || d["field"] != tc.field {
			t.Errorf("GET /audit?%s = %d %s", tc.query, r.status, r.body)
		}
	}
	if r := do(t, ts, "GET", "/audit", "", "", ""); r.status != 401 {
		t.Errorf("GET /audit without token = %d", r.status)
	}
}

func TestAuditStreamRoute(t *testing.T) {
	s, w, _ := newAuditServer(t)
	ts := start(t, s)
	c, _ := client.New(ts.URL, client.Options{Token: testToken})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan api.AuditRecord, 4)
	done := make(chan error, 1)
	go func() {
		done <- c.AuditStream(ctx, client.AuditQuery{ContainerID: "clawbox-s"}, func(r api.AuditRecord) error {
			got <- r
			return nil
		})
	}()
	// Records are written until the subscription is in place and one arrives.
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var first api.AuditRecord
wait:
	for {
		select {
		case first = <-got:
			break wait
		case <-tick.C:
			w.Record(audit.Record{Kind: audit.KindLifecycle, ContainerID: "clawbox-other", Event: "spawned"})
			w.Record(audit.Record{Kind: audit.KindLifecycle, ContainerID: "clawbox-s", Event: "spawned"})
		case <-deadline:
			t.Fatal("no record arrived on the stream")
		}
	}
	if first.ContainerID != "clawbox-s" {
		b, _ := json.Marshal(first)
		t.Errorf("stream delivered a record outside its filter: %s", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("AuditStream after cancel: %v", err)
	}
}

func TestAuditStreamEndsOnShutdown(t *testing.T) {
	s, _, subs := newAuditServer(t)
	ts := start(t, s)
	c, _ := client.New(ts.URL, client.Options{Token: testToken})
	done := make(chan error, 1)
	go func() {
		done <- c.AuditStream(context.Background(), client.AuditQuery{}, func(api.AuditRecord) error { return nil })
	}()
	waitFor(t, func() bool { return subs.Load() > 0 })
	s.stoppingOnce.Do(func() { close(s.stopping) })
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("stream did not end when the server began to stop")
	}
}
