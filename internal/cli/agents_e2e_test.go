package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestAgentCommandsEndToEnd drives clawbox agent create|ls|exec|pause|resume|stop|start|rm
// against a real server and real containers, with the exit codes scripts rely on.
func TestAgentCommandsEndToEnd(t *testing.T) {
	env, port, image := dockerServe(t)
	ctx := context.Background()
	cli := func(args ...string) result {
		return clawbox(t, ctx, env, append([]string{args[0], "--port", port}, args[1:]...)...)
	}
	t.Cleanup(func() {
		clawbox(t, context.Background(), env, "agent", "--port", port, "rm", "--workspace", "cli-agent")
	})

	if r := cli("agent", "create", "bad_id", "--image", image); r.code != 1 || !strings.Contains(r.stderr, "alphanumeric + hyphens only") {
		t.Fatalf("create bad id: %+v", r)
	}
	if r := cli("agent", "create", "cli-agent", "--image", image, "--start", "--json"); r.code != 0 {
		t.Fatalf("create --start: %+v", r)
	} else {
		var info struct {
			Status      string  `json:"status"`
			ContainerID *string `json:"container_id"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info.Status != "running" || info.ContainerID == nil {
			t.Fatalf("create --start --json: %q %v", r.stdout, err)
		}
	}
	if r := cli("agent", "create", "cli-agent", "--image", image); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("duplicate: %+v", r)
	}
	if r := cli("agent", "exec", "cli-agent", "--", "sh", "-c", "echo kept > /workspace/f; cat /workspace/f; exit 4"); r.code != 4 || r.stdout != "kept\n" {
		t.Fatalf("agent exec: %+v", r)
	}
	if r := cli("agent", "ls"); r.code != 0 || !strings.Contains(r.stdout, "cli-agent") || !strings.Contains(r.stdout, "running") {
		t.Fatalf("agent ls: %+v", r)
	}
	if r := cli("agent", "pause", "cli-agent"); r.code != 0 || !strings.Contains(r.stdout, "paused") {
		t.Fatalf("pause: %+v", r)
	}
	if r := cli("agent", "exec", "cli-agent", "--", "true"); r.code != 1 || !strings.Contains(r.stderr, "resume it first") {
		t.Fatalf("exec paused: %+v", r)
	}
	if r := cli("agent", "resume", "cli-agent"); r.code != 0 || !strings.Contains(r.stdout, "running") {
		t.Fatalf("resume: %+v", r)
	}
	if r := cli("agent", "stop", "cli-agent"); r.code != 0 || !strings.Contains(r.stdout, "idle") {
		t.Fatalf("stop: %+v", r)
	}
	if r := cli("agent", "stop", "cli-agent"); r.code != 1 || !strings.Contains(r.stderr, "conflict") {
		t.Fatalf("stop idle: %+v", r)
	}
	if r := cli("agent", "start", "cli-agent"); r.code != 0 {
		t.Fatalf("start: %+v", r)
	}
	if r := cli("agent", "exec", "cli-agent", "--", "cat", "/workspace/f"); r.code != 0 || r.stdout != "kept\n" {
		t.Fatalf("workspace after stop and start: %+v", r)
	}
	if r := cli("agent", "rm", "--workspace", "cli-agent"); r.code != 0 {
		t.Fatalf("rm: %+v", r)
	}
	if r := cli("agent", "start", "cli-agent"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("start removed: %+v", r)
	}
}
