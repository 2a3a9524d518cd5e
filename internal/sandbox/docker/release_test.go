package docker

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/sandbox"
)

// TestEveryPathReleasesOnce drives each way a sandbox's life ends in a process
// (a failed spawn, an exit, a kill, a shutdown that detaches, an adoption that
// fails) and checks that its door was closed exactly once and its socket
// directory removed, or kept by the detach for the next process.
func TestEveryPathReleasesOnce(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	gone := func(t *testing.T, w world, id string) {
		t.Helper()
		if _, err := os.Stat(filepath.Join(w.proxiesDir, id)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket dir of %s: %v, want it removed", id, err)
		}
	}
	t.Run("spawn failure", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, newWorld(t), envOptions{})
		ctx := testCtx(t)
		req := spawnReq("true")
		req.Image = "clawbox-test/missing:" + randHex(4) // fails after the door opened
		_, err := e.m.Spawn(ctx, req)
		wantCode(t, err, api.CodeImageNotFound)
		counts := e.doors.CloseCounts()
		if len(counts) != 1 {
			t.Fatalf("doors closed %v, want one door closed once", counts)
		}
		for id, n := range counts {
			if n != 1 {
				t.Errorf("door of %s closed %d times", id, n)
			}
			gone(t, e.world, id)
		}
	})
	t.Run("exit and kill", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, newWorld(t), envOptions{})
		ctx := testCtx(t)
		exited, err := e.m.Spawn(ctx, spawnReq("true"))
		if err != nil {
			t.Fatal(err)
		}
		killed, err := e.m.Spawn(ctx, spawnReq("sleep", "300"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.Wait(ctx, exited.ID); err != nil {
			t.Fatal(err)
		}
		for range 3 { // a second and third kill find it finished
			if _, err := e.m.Kill(ctx, killed.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.m.Kill(ctx, exited.ID); err != nil {
			t.Fatal(err)
		}
		want := map[string]int{exited.ID: 1, killed.ID: 1}
		if got := e.doors.CloseCounts(); !maps.Equal(got, want) {
			t.Errorf("door closes %v, want %v", got, want)
		}
		gone(t, e.world, exited.ID)
		gone(t, e.world, killed.ID)
	})
	t.Run("shutdown detaches, failed adoption releases", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		e1 := newEnv(t, w, envOptions{})
		ctx := testCtx(t)
		rec, err := e1.m.Spawn(ctx, spawnReq("sleep", "300"))
		if err != nil {
			t.Fatal(err)
		}
		e1.close(t)
		e1.close(t)
		if n := e1.doors.Closes(rec.ID); n != 1 {
			t.Errorf("door closed %d times at shutdown, want 1", n)
		}
		if _, err := os.Stat(filepath.Join(w.proxiesDir, rec.ID, "token")); err != nil {
			t.Fatalf("shutdown removed what the next start adopts: %v", err)
		}
		// The next process cannot reopen the door: it kills the sandbox and
		// releases what is left.
		e2 := newEnv(t, w, envOptions{doorFail: errors.New("injected door failure")})
		got, err := e2.m.Get(ctx, rec.ID)
		if err != nil || got.Status != sandbox.StatusKilled {
			t.Fatalf("after failed adoption: %v %+v", err, got)
		}
		gone(t, w, rec.ID)
		if counts := e2.doors.CloseCounts(); len(counts) != 0 {
			t.Errorf("doors closed by the second process: %v (none opened)", counts)
		}
	})
}
