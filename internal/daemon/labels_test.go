package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/poll"
)

// TestContainerLogsRedactedAtRest: a sandbox prints a stored credential's value;
// the value is redacted in the logs the API returns and is nowhere in the raw
// state.db (or its WAL) once the sandbox has ended and the server has stopped.
func TestContainerLogsRedactedAtRest(t *testing.T) {
	requireDocker(t)
	cfg := dockerConfig(t)
	addrs, stop := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	const secret = "atrest-Zq8Xw3Vb7Nm2Lk5Jh9Gf4Ds6"
	if _, err := c.PutCredential(ctx, "ATREST", api.PutCredentialRequest{Value: secret, Host: "example.com"}); err != nil {
		t.Fatal(err)
	}
	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Command: []string{"sh", "-c", "echo value=" + secret + "; echo err=" + secret + " >&2"}})
	if err != nil {
		t.Fatal(err)
	}
	fin := waitFinal(t, c, info.ContainerID)
	if fin.Status != api.ContainerStatusCompleted {
		t.Fatalf("sandbox ended %s", fin.Status)
	}
	logs, err := c.Logs(ctx, info.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.Stdout+logs.Stderr, secret) || !strings.Contains(logs.Stdout, "value=[REDACTED]") {
		t.Errorf("logs = %+v", logs)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(cfg.Store.Path + "*")
	if len(files) == 0 {
		t.Fatalf("no state.db at %s", cfg.Store.Path)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the credential's value in plain text", filepath.Base(f))
		}
	}
}

// TestContainerLogsWhileRunning: a sandbox that prints a line and then sleeps shows
// that line through GET /containers/{id}/logs while it still runs.
func TestContainerLogsWhileRunning(t *testing.T) {
	requireDocker(t)
	cfg := dockerConfig(t)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Command: []string{"sh", "-c", "echo started; echo warn >&2; exec sleep 600"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(context.Background(), info.ContainerID) })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		logs, err := c.Logs(ctx, info.ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		if logs.Stdout == "started\n" && logs.Stderr == "warn\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of the running sandbox = %+v", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got, err := c.Container(ctx, info.ContainerID)
	if err != nil || got.Status != api.ContainerStatusRunning {
		t.Errorf("sandbox is %+v %v, want still running", got, err)
	}
}

func apiCode(err error) string {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// TestContainerLabelsAndExtend drives labels and PATCH /containers/{id} against a
// real server and real containers: the label filter ANDs, a bad selector is 400
// naming label, a running sandbox's deadline moves (audited as deadline_set), above
// containers.max_timeout_ms is 400 naming timeout_ms, unknown is 404 and a finished
// sandbox is 409 conflict.
func TestContainerLabelsAndExtend(t *testing.T) {
	requireDocker(t)
	cfg := dockerConfig(t)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	five := int64(5000)
	long, err := c.Spawn(ctx, api.ContainerSpawnRequest{Command: []string{"sleep", "600"}, Labels: map[string]string{"team": "infra", "run": "1"},
		Capabilities: &api.ContainerCapabilities{Resources: &api.ContainerResources{TimeoutMS: &five}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(context.Background(), long.ContainerID) })
	short, err := c.Spawn(ctx, api.ContainerSpawnRequest{Command: []string{"true"}, Labels: map[string]string{"team": "infra", "run": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	both, err := c.ListContainers(ctx, api.ContainerFilter{Labels: map[string]string{"team": "infra"}})
	if err != nil || len(both) != 2 {
		t.Errorf("label team=infra = %d %v", len(both), err)
	}
	one, err := c.ListContainers(ctx, api.ContainerFilter{Labels: map[string]string{"team": "infra", "run": "1"}})
	if err != nil || len(one) != 1 || one[0].ContainerID != long.ContainerID || one[0].Labels["run"] != "1" {
		t.Errorf("label team=infra AND run=1 = %+v %v", one, err)
	}
	if none, err := c.ListContainers(ctx, api.ContainerFilter{Labels: map[string]string{"team": "web"}}); err != nil || len(none) != 0 {
		t.Errorf("label team=web = %+v %v", none, err)
	}
	_, err = c.ListContainers(ctx, api.ContainerFilter{Labels: map[string]string{"": "x"}})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeInvalidRequest || !strings.Contains(fmt.Sprint(ae.Details), "label") {
		t.Errorf("bad selector = %v", err)
	}

	before := long.Deadline
	got, err := c.Extend(ctx, long.ContainerID, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != api.ContainerStatusRunning || got.Deadline == nil || before == nil || !got.Deadline.After(before.Add(9*time.Minute)) {
		t.Errorf("extend: before %v after %+v", before, got)
	}
	again, err := c.Container(ctx, long.ContainerID)
	if err != nil || again.Deadline == nil || !again.Deadline.Equal(*got.Deadline) {
		t.Errorf("GET after extend = %+v %v", again, err)
	}
	// The audit writer indexes records asynchronously: wait for it.
	poll.Until(t, poll.Server, "a deadline_set audit record", func() (bool, error) {
		recs, err := c.Audit(ctx, client.AuditQuery{ContainerID: long.ContainerID, Kind: "lifecycle"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Event == "deadline_set" {
				return true, nil
			}
		}
		return false, fmt.Errorf("lifecycle records so far: %+v", recs)
	})
	_, err = c.Extend(ctx, long.ContainerID, time.Duration(cfg.Containers.MaxTimeoutMS+1)*time.Millisecond)
	if !errors.As(err, &ae) || ae.Code != api.CodeInvalidRequest || !strings.Contains(fmt.Sprint(ae.Details), "timeout_ms") {
		t.Errorf("extend above the maximum = %v", err)
	}
	if _, err := c.Extend(ctx, "clawbox-nosuch", time.Minute); apiCode(err) != api.CodeNotFound {
		t.Errorf("extend unknown = %v", err)
	}
	waitFinal(t, c, short.ContainerID)
	if _, err := c.Extend(ctx, short.ContainerID, time.Minute); apiCode(err) != api.CodeConflict {
		t.Errorf("extend finished = %v", err)
	}
	// Still running past its original 5 s: the reaper honours the new deadline.
	if info, err := c.Container(ctx, long.ContainerID); err != nil || info.Status != api.ContainerStatusRunning {
		t.Errorf("after extend: %+v %v", info, err)
	}
}
