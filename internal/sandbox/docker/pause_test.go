package docker

import (
	"io"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/sandbox"
)

// TestPauseFreezesTheDeadline pauses a real container: its deadline clock
// stops (time passing while paused does not time it out), exec is refused,
// resume moves the deadline by the paused time, and a paused sandbox can still
// be killed.
func TestPauseFreezesTheDeadline(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{fakeClock: true})
	ctx := testCtx(t)
	req := spawnReq("sleep", "300")
	req.Capabilities = &api.ContainerCapabilities{Resources: &api.ContainerResources{TimeoutMS: ptr[int64](60_000)}}
	rec, err := e.m.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.clock.WaitTimers(ctx, 2); err != nil {
		t.Fatal(err)
	}
	_, err = e.m.Resume(ctx, rec.ID)
	wantCode(t, err, api.CodeConflict)
	p, err := e.m.Pause(ctx, rec.ID)
	if err != nil || p.PausedAt.IsZero() || !p.Info().Paused {
		t.Fatalf("pause: %+v, %v", p, err)
	}
	if c, err := e.backend.cli.ContainerInspect(ctx, p.ContainerID, client.ContainerInspectOptions{}); err != nil || !c.Container.State.Paused {
		t.Fatalf("the engine's view of the paused container: %v", err)
	}
	_, err = e.m.Pause(ctx, rec.ID)
	wantCode(t, err, api.CodeConflict)
	_, err = e.m.Pause(ctx, "clawbox-unknown")
	wantCode(t, err, api.CodeNotFound)
	_, err = e.svc.Exec(ctx, rec.ID, api.ExecRequest{Cmd: []string{"true"}}, sandbox.ExecOptions{}, io.Discard, io.Discard)
	wantCode(t, err, api.CodeConflict)

	e.clock.Advance(2 * time.Minute) // past the deadline, paused
	if got, _ := e.m.Get(ctx, rec.ID); got.Status != sandbox.StatusRunning {
		t.Fatalf("a paused sandbox timed out: %s", got.Status)
	}
	r, err := e.m.Resume(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := rec.Deadline.Add(2 * time.Minute); !r.Deadline.Equal(want) || !r.PausedAt.IsZero() {
		t.Fatalf("deadline after resume %v, want %v", r.Deadline, want)
	}
	stored, err := e.db.GetSandbox(ctx, rec.ID)
	if err != nil || !stored.Deadline.Equal(r.Deadline) || !stored.PausedAt.IsZero() {
		t.Fatalf("stored: %+v, %v", stored, err)
	}
	e.clock.Advance(59 * time.Second)
	if got, _ := e.m.Get(ctx, rec.ID); got.Status != sandbox.StatusRunning {
		t.Fatalf("status before the moved deadline: %s", got.Status)
	}
	e.clock.Advance(time.Second)
	if final, err := e.m.Wait(ctx, rec.ID); err != nil || final.Status != sandbox.StatusTimedOut {
		t.Fatalf("after the moved deadline: %+v, %v", final, err)
	}

	// A paused sandbox is killed (thawed first, so that the stop is delivered).
	rec2, err := e.m.Spawn(ctx, spawnReq("sleep", "300"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Pause(ctx, rec2.ID); err != nil {
		t.Fatal(err)
	}
	k, err := e.m.Kill(ctx, rec2.ID)
	if err != nil || k.Status != sandbox.StatusKilled || !k.PausedAt.IsZero() || k.Info().Paused {
		t.Fatalf("kill paused: %+v, %v", k, err)
	}
	assertGone(t, e, k)
}
