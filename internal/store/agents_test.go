package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/agents"
)

func TestAgentsRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	idle := int64(5000)
	mk := func(id string, at time.Time) *agents.Agent {
		return &agents.Agent{Config: api.AgentConfig{AgentID: id, Name: "n-" + id, Lifecycle: &api.AgentLifecycle{MaxIdleMS: &idle}},
			Status: agents.StatusIdle, WorkspaceID: "clawbox-ws-" + id, CreatedAt: at.UTC()}
	}
	t0 := time.Now()
	if err := db.CreateAgent(ctx, mk("b", t0)); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAgent(ctx, mk("a", t0.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAgent(ctx, mk("a", t0)); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("duplicate: %v, want ErrAlreadyExists", err)
	}
	a := mk("a", t0.Add(time.Second))
	a.Status, a.ContainerID, a.Restarts = agents.StatusRunning, "clawbox-x", 2
	if err := db.UpdateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateAgent(ctx, mk("nope", t0)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	db.Close()

	db, err = Open(ctx, path) // persisted across a reopen
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.GetAgent(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != agents.StatusRunning || got.ContainerID != "clawbox-x" || got.Restarts != 2 || *got.Config.Lifecycle.MaxIdleMS != 5000 {
		t.Fatalf("got %+v", got)
	}
	list, err := db.ListAgents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Config.AgentID != "b" || list[1].Config.AgentID != "a" {
		t.Fatalf("list order: %+v", list)
	}
	if err := db.DeleteAgent(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetAgent(ctx, "a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}
