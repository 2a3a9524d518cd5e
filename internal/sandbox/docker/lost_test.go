package docker

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/internal/poll"
	"github.com/clawbox/clawbox/internal/sandbox"
)

// TestRemovedWhileRunningIsLost: a running sandbox whose container is force-removed
// behind clawbox's back (docker rm -f kills it, then removes it) ends as lost, not as
// failed with the kill's exit code, and its token, door and socket dir are gone.
func TestRemovedWhileRunningIsLost(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{})
	ctx := testCtx(t)
	rec, err := e.m.Spawn(ctx, spawnReq("sleep", "300"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(e.proxiesDir, rec.ID, "token"))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.ContainerRemove(ctx, rec.ContainerID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	var got *sandbox.Record
	poll.Until(t, poll.Server, "the removed sandbox to leave running", func() (bool, error) {
		got, err = e.m.Get(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status != sandbox.StatusRunning, nil
	})
	if got.Status != sandbox.StatusLost || got.ExitCode != nil {
		t.Fatalf("status %s exit %v, want lost without an exit code", got.Status, got.ExitCode)
	}
	if e.m.Authenticate(rec.ID, string(token)) {
		t.Error("the lost sandbox's token is still valid")
	}
	assertGone(t, e, got)
	if ev := e.audit.events(rec.ID); !slices.Equal(ev, []string{"spawned", "lost"}) {
		t.Errorf("audit events %v", ev)
	}
}
