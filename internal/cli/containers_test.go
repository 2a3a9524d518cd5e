package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/poll"
)

// TestContainerCommands drives spawn, ps, logs, kill and audit end to end against a
// real server and Docker.
func TestContainerCommands(t *testing.T) {
	env, port, image := dockerServe(t)
	ctx := context.Background()

	r := clawbox(t, ctx, env, "spawn", "--port", port, "--image", image, "--wait", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3")
	if r.code != ExitError || r.stdout != "hi\n" || !strings.Contains(r.stderr, "oops") || !strings.Contains(r.stderr, "failed (exit code 3)") {
		t.Errorf("spawn --wait of a failing command: %+v", r)
	}
	r = clawbox(t, ctx, env, "spawn", "--port", port, "--image", image, "--json", "--task", "sleeper", "--label", "team=infra", "--", "sh", "-c", "echo sleeping; exec sleep 300")
	var info struct {
		ContainerID string `json:"container_id"`
		Status      string `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info.Status != "running" {
		t.Fatalf("spawn --json: %+v %v", r, err)
	}
	id := info.ContainerID

	r = clawbox(t, ctx, env, "ps", "--port", port)
	if r.code != 0 || !strings.Contains(r.stdout, "CONTAINER ID") || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "sleeper") {
		t.Errorf("ps: %+v", r)
	}
	r = clawbox(t, ctx, env, "ps", "--port", port, "--status", "running", "--json")
	var list struct {
		Containers []struct {
			ContainerID string `json:"container_id"`
		} `json:"containers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Containers) != 1 || list.Containers[0].ContainerID != id {
		t.Errorf("ps --status running --json: %+v %v", r, err)
	}
	r = clawbox(t, ctx, env, "ps", "--port", port, "--filter", "label=team=infra", "--filter", "status=running")
	if r.code != 0 || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "team=infra") {
		t.Errorf("ps --filter label=team=infra: %+v", r)
	}
	r = clawbox(t, ctx, env, "ps", "--port", port, "--filter", "label=team=web")
	if r.code != 0 || strings.Contains(r.stdout, id) {
		t.Errorf("ps --filter label=team=web: %+v", r)
	}
	r = clawbox(t, ctx, env, "ps", "--port", port, "--filter", "color=red")
	if r.code != ExitUsage {
		t.Errorf("ps --filter color=red: %+v", r)
	}
	// Logs of the running sandbox: what it printed so far.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		r = clawbox(t, ctx, env, "logs", "--port", port, id)
		if r.code == 0 && strings.Contains(r.stdout, "sleeping") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of the running sandbox: %+v", r)
		}
	}
	r = clawbox(t, ctx, env, "extend", "--port", port, id, "10m")
	if r.code != 0 || !strings.HasPrefix(r.stdout, id+" deadline ") {
		t.Errorf("extend: %+v", r)
	}
	r = clawbox(t, ctx, env, "extend", "--port", port, id, "soon")
	if r.code != ExitUsage {
		t.Errorf("extend with a bad duration: %+v", r)
	}
	r = clawbox(t, ctx, env, "ps", "--port", port, "--status", "bogus")
	if r.code != ExitError || !strings.Contains(r.stderr, "invalid_request") {
		t.Errorf("ps with a bad status: %+v", r)
	}

	// Follow the audit log while the sandbox is killed.
	fctx, fcancel := context.WithCancel(ctx)
	followed := make(chan result, 1)
	go func() {
		var out, errb bytes.Buffer
		code := runWithEnv(fctx, []string{"audit", "-f", "--port", port, "--json", "--container", id}, env, &out, &errb)
		followed <- result{code, out.String(), errb.String()}
	}()
	r = clawbox(t, ctx, env, "kill", "--port", port, id)
	if r.code != 0 || r.stdout != id+" killed\n" {
		t.Errorf("kill: %+v", r)
	}
	var fr result
	poll.Until(t, poll.Server, "the killed audit record", func() (bool, error) {
		r = clawbox(t, ctx, env, "audit", "--port", port, "--container", id, "--kind", "lifecycle")
		return strings.Contains(r.stdout, "killed"), fmt.Errorf("audit: %+v", r)
	})
	fcancel()
	fr = <-followed
	if fr.code != 0 {
		t.Errorf("audit -f ended with %+v", fr)
	}
	r = clawbox(t, ctx, env, "logs", "--port", port, id)
	if r.code != 0 {
		t.Errorf("logs of a killed sandbox: %+v", r)
	}
	r = clawbox(t, ctx, env, "extend", "--port", port, id, "10m")
	if r.code != ExitError || !strings.Contains(r.stderr, "conflict") {
		t.Errorf("extend of a killed sandbox: %+v", r)
	}
	r = clawbox(t, ctx, env, "kill", "--port", port, "clawbox-nope")
	if r.code != ExitError || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("kill of an unknown id: %+v", r)
	}
	r = clawbox(t, ctx, env, "logs", "--port", port)
	if r.code != ExitUsage {
		t.Errorf("logs without an id: %+v", r)
	}
	r = clawbox(t, ctx, env, "spawn", "--port", port, "--image", "alpine:3", "--", "true")
	if r.code != ExitError || !strings.Contains(r.stderr, "image_not_allowed") {
		t.Errorf("spawn of a disallowed image: %+v", r)
	}
}

// TestNewToolAndBuild scaffolds a Go tool, builds it into a tool directory and checks
// the installed module and manifest.
func TestNewToolAndBuild(t *testing.T) {
	src := t.TempDir()
	tools := t.TempDir()
	env := map[string]string{"HOME": t.TempDir()}
	r := clawbox(t, context.Background(), env, "new-tool", "greet", "--out", src)
	if r.code != 0 || !strings.Contains(r.stdout, "clawbox build") {
		t.Fatalf("new-tool: %+v", r)
	}
	r = clawbox(t, context.Background(), env, "new-tool", "greet", "--out", src)
	if r.code != ExitError || !strings.Contains(r.stderr, "exists") {
		t.Errorf("new-tool over an existing directory: %+v", r)
	}
	r = clawbox(t, context.Background(), env, "new-tool", "bad/name", "--out", src)
	if r.code == 0 {
		t.Errorf("new-tool with a bad name: %+v", r)
	}
	r = clawbox(t, context.Background(), env, "build", "--tool-dir", tools, filepath.Join(src, "greet"))
	if r.code != 0 {
		t.Fatalf("build: %+v", r)
	}
	bin, err := os.ReadFile(filepath.Join(tools, "greet.wasm"))
	if err != nil || !bytes.HasPrefix(bin, []byte("\x00asm")) {
		t.Errorf("greet.wasm: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tools, "greet.json")); err != nil {
		t.Errorf("greet.json: %v", err)
	}
}
