package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/internal/sandbox"
)

func openSandboxStore(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)

func newRec(id string, created time.Time) *sandbox.Record {
	return &sandbox.Record{ID: id, Task: "task " + id, Image: "docker.io/library/alpine:latest", Policy: sandbox.PolicyContainer,
		Status: sandbox.StatusCreating, CreatedAt: created, TokenHash: []byte("0123456789abcdef0123456789abcdef"), LogLimit: 1 << 20}
}

func TestSandboxRoundTrip(t *testing.T) {
	db := openSandboxStore(t)
	ctx := context.Background()
	rec := newRec("clawbox-a", t0)
	rec.Allowlist = []string{}
	rec.Credentials = []string{"github"}
	if err := db.CreateSandbox(ctx, rec, 10); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetSandbox(ctx, "clawbox-a")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != rec.ID || got.Task != rec.Task || got.Status != sandbox.StatusCreating || !got.CreatedAt.Equal(t0) ||
		string(got.TokenHash) != string(rec.TokenHash) || got.Allowlist == nil || len(got.Allowlist) != 0 ||
		len(got.Credentials) != 1 || got.ExitCode != nil || !got.Deadline.IsZero() || got.LogLimit != 1<<20 {
		t.Fatalf("round trip %+v", got)
	}
	// creating → running → failed, each a compare-and-set on the status.
	running := *got
	running.Status, running.ContainerID, running.Deadline = sandbox.StatusRunning, "docker123", t0.Add(time.Minute)
	if err := db.UpdateSandbox(ctx, &running, sandbox.StatusCreating); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateSandbox(ctx, &running, sandbox.StatusCreating); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	failed := running
	code := 3
	failed.Status, failed.ExitCode, failed.OOMKilled = sandbox.StatusFailed, &code, true
	failed.FinishedAt, failed.ExpiresAt = t0.Add(2*time.Minute), t0.Add(time.Hour)
	failed.Logs = sandbox.Logs{Stdout: []byte("out"), Stderr: []byte("err\x00bin"), Truncated: true}
	if err := db.UpdateSandbox(ctx, &failed, sandbox.StatusRunning); err != nil {
		t.Fatal(err)
	}
	got, err = db.GetSandbox(ctx, "clawbox-a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != sandbox.StatusFailed || got.ExitCode == nil || *got.ExitCode != 3 || !got.OOMKilled || got.ContainerID != "docker123" ||
		string(got.Logs.Stdout) != "out" || string(got.Logs.Stderr) != "err\x00bin" || !got.Logs.Truncated ||
		!got.Deadline.Equal(t0.Add(time.Minute)) || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("final %+v", got)
	}
	if _, err := db.GetSandbox(ctx, "clawbox-none"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if err := db.UpdateSandbox(ctx, newRec("clawbox-none", t0), sandbox.StatusCreating); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
}

func TestSandboxCapacityIsAtomic(t *testing.T) {
	db := openSandboxStore(t)
	ctx := context.Background()
	// A finished sandbox does not count.
	done := newRec("clawbox-done", t0)
	done.Status = sandbox.StatusKilled
	if err := db.CreateSandbox(ctx, done, 1); err != nil {
		t.Fatal(err)
	}
	const n, limit = 20, 3
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = db.CreateSandbox(ctx, newRec("clawbox-"+string(rune('a'+i)), t0.Add(time.Duration(i))), limit)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, errdefs.ErrResourceExhausted):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != limit {
		t.Fatalf("%d inserts succeeded, want %d", ok, limit)
	}
	counts, err := db.CountSandboxes(ctx)
	if err != nil || counts[sandbox.StatusCreating] != limit || counts[sandbox.StatusKilled] != 1 {
		t.Fatalf("counts %v %v", counts, err)
	}
}

func TestSandboxListAndExpiry(t *testing.T) {
	db := openSandboxStore(t)
	ctx := context.Background()
	mk := func(id string, created time.Time, st sandbox.Status, expires time.Time) {
		r := newRec(id, created)
		r.Status, r.ExpiresAt = st, expires
		if err := db.CreateSandbox(ctx, r, 100); err != nil {
			t.Fatal(err)
		}
	}
	mk("clawbox-1", t0, sandbox.StatusCompleted, t0.Add(time.Hour))
	mk("clawbox-2", t0.Add(time.Second), sandbox.StatusRunning, time.Time{})
	mk("clawbox-3", t0.Add(time.Second), sandbox.StatusKilled, t0.Add(2*time.Hour)) // same time as 2: ties by id
	mk("clawbox-4", t0.Add(-time.Second), sandbox.StatusCompleted, t0.Add(30*time.Minute))
	tests := []struct {
		name   string
		status sandbox.Status
		want   []string
	}{
		{"all", "", []string{"clawbox-3", "clawbox-2", "clawbox-1", "clawbox-4"}},
		{"completed", sandbox.StatusCompleted, []string{"clawbox-1", "clawbox-4"}},
		{"lost", sandbox.StatusLost, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := db.ListSandboxes(ctx, tc.status)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range recs {
				ids = append(ids, r.ID)
			}
			if len(ids) != len(tc.want) {
				t.Fatalf("ids %v, want %v", ids, tc.want)
			}
			for i := range ids {
				if ids[i] != tc.want[i] {
					t.Fatalf("ids %v, want %v", ids, tc.want)
				}
			}
		})
	}
	gone, err := db.DeleteExpiredSandboxes(ctx, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 2 {
		t.Fatalf("expired %v", gone)
	}
	left, _ := db.ListSandboxes(ctx, "")
	if len(left) != 2 || left[0].ID != "clawbox-3" || left[1].ID != "clawbox-2" {
		t.Fatalf("left %d", len(left))
	}
	if err := db.DeleteSandbox(ctx, "clawbox-2"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteSandbox(ctx, "clawbox-2"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

// TestSandboxLabelsAndDeadlinePersist checks that labels survive a round trip and
// that a running sandbox's new deadline (PATCH /containers/{id}) is written by a
// running → running update.
func TestSandboxLabelsAndDeadlinePersist(t *testing.T) {
	db := openSandboxStore(t)
	ctx := context.Background()
	rec := newRec("clawbox-l", t0)
	rec.Labels = map[string]string{"team": "infra", "run/id": "42"}
	if err := db.CreateSandbox(ctx, rec, 10); err != nil {
		t.Fatal(err)
	}
	plain := newRec("clawbox-p", t0)
	if err := db.CreateSandbox(ctx, plain, 10); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetSandbox(ctx, "clawbox-l")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Labels) != 2 || got.Labels["team"] != "infra" || got.Labels["run/id"] != "42" {
		t.Fatalf("labels %v", got.Labels)
	}
	if got, err := db.GetSandbox(ctx, "clawbox-p"); err != nil || got.Labels != nil {
		t.Fatalf("unlabelled: %v %v", got.Labels, err)
	}
	running := *got
	running.Status, running.Deadline = sandbox.StatusRunning, t0.Add(time.Minute)
	if err := db.UpdateSandbox(ctx, &running, sandbox.StatusCreating); err != nil {
		t.Fatal(err)
	}
	running.Deadline = t0.Add(time.Hour)
	if err := db.UpdateSandbox(ctx, &running, sandbox.StatusRunning); err != nil {
		t.Fatal(err)
	}
	if got, err := db.GetSandbox(ctx, "clawbox-l"); err != nil || !got.Deadline.Equal(t0.Add(time.Hour)) || got.Labels["team"] != "infra" {
		t.Fatalf("after deadline change: %+v %v", got, err)
	}
}
