package cli

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestSpawnWorkspace asks for a workspace with --workspace and through a template's
// workspace key: the spawn request carries capabilities.workspace; without either
// it does not.
func TestSpawnWorkspace(t *testing.T) {
	fake, env, conn := fakeAPI(t)
	dir := filepath.Join(env["HOME"], ".clawbox")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := "[images.templates.dev]\nimage = \"clawbox/busybox\"\nworkspace = true\n"
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	runs := [][]string{
		{"spawn", "--image", "clawbox/busybox", "--workspace", "--", "true"},
		{"spawn", "dev"},
		{"spawn", "--image", "clawbox/busybox", "--", "true"},
	}
	for _, args := range runs {
		if r := clawbox(t, context.Background(), env, append(append(args[:1:1], conn...), args[1:]...)...); r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
	}
	got := fake.Spawns()
	if len(got) != 3 {
		t.Fatalf("%d spawns recorded, want 3", len(got))
	}
	for i, want := range []bool{true, true, false} {
		has := got[i].Capabilities != nil && got[i].Capabilities.Workspace
		if has != want {
			t.Errorf("%v: capabilities.workspace = %v, want %v (%+v)", runs[i], has, want, got[i].Capabilities)
		}
	}
}
