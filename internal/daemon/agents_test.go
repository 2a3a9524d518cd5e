package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/poll"
)

func i64(v int64) *int64 { return &v }

// agentDaemon runs a daemon for agent tests and returns its config and client.
func agentDaemon(t *testing.T, tweak func(*config.Config)) (*config.Config, *client.Client, func() error) {
	t.Helper()
	requireDocker(t)
	cfg := dockerConfig(t)
	cfg.Containers.StopGrace = 0
	if tweak != nil {
		tweak(cfg)
	}
	addrs, stop := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	return cfg, c, stop
}

// removeAgents deletes every agent (and workspace) at cleanup.
func removeAgents(t *testing.T, c *client.Client, ids ...string) {
	t.Cleanup(func() {
		for _, id := range ids {
			c.RemoveAgent(context.Background(), id, true)
		}
	})
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := apiCode(err); got != code {
		t.Fatalf("%s: err %v (code %q), want code %q", what, err, got, code)
	}
}

// waitAgent polls agent id until cond holds.
func waitAgent(t *testing.T, c *client.Client, id string, what string, cond func(*api.AgentInfo) bool) *api.AgentInfo {
	t.Helper()
	var last *api.AgentInfo
	poll.Until(t, 2*time.Minute, "agent "+id+" "+what, func() (bool, error) {
		a, err := c.Agent(context.Background(), id)
		if err != nil {
			return false, err
		}
		last = a
		return cond(a), nil
	})
	return last
}

func status(s string) func(*api.AgentInfo) bool {
	return func(a *api.AgentInfo) bool { return a.Status == s }
}

// TestAgentRoutesAndStates walks an agent through every route and state
// transition against a real container, with the conflicts, and checks that the
// workspace survives stop and start and that every transition is audited.
func TestAgentRoutesAndStates(t *testing.T) {
	cfg, c, _ := agentDaemon(t, nil)
	ctx := context.Background()
	removeAgents(t, c, "worker-1")

	for id, msg := range map[string]string{
		"":                      "agent_id must be 1-64 characters",
		strings.Repeat("a", 65): "agent_id must be 1-64 characters",
		"a..b":                  "path traversal",
		"a/b":                   "path traversal",
		`a\b`:                   "path traversal",
		"under_score":           "alphanumeric + hyphens only",
		"sp ace":                "alphanumeric + hyphens only",
	} {
		_, err := c.CreateAgent(ctx, api.AgentConfig{AgentID: id, Name: "x"})
		wantCode(t, "create "+id, err, api.CodeInvalidRequest)
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("create %q: %v, want %q", id, err, msg)
		}
	}
	if _, err := c.Agent(ctx, "nobody"); apiCode(err) != api.CodeNotFound {
		t.Fatalf("unknown agent: %v", err)
	}
	for _, op := range []func(context.Context, string) (*api.AgentInfo, error){c.StartAgent, c.StopAgent, c.PauseAgent, c.ResumeAgent} {
		_, err := op(ctx, "nobody")
		wantCode(t, "op on unknown agent", err, api.CodeNotFound)
	}
	wantCode(t, "delete unknown", c.RemoveAgent(ctx, "nobody", false), api.CodeNotFound)

	a, err := c.CreateAgent(ctx, api.AgentConfig{AgentID: "worker-1", Name: "Worker"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != api.AgentStatusIdle || a.ContainerID != nil || a.WorkspacePath == nil ||
		!strings.HasPrefix(*a.WorkspacePath, cfg.Containers.WorkspaceRoot) {
		t.Fatalf("created: %+v", a)
	}
	_, err = c.CreateAgent(ctx, api.AgentConfig{AgentID: "worker-1", Name: "again"})
	wantCode(t, "duplicate", err, api.CodeConflict)
	for name, op := range map[string]func(context.Context, string) (*api.AgentInfo, error){"stop": c.StopAgent, "pause": c.PauseAgent, "resume": c.ResumeAgent} {
		_, err := op(ctx, "worker-1")
		wantCode(t, name+" idle", err, api.CodeConflict)
	}
	_, err = c.AgentExec(ctx, "worker-1", api.ExecRequest{Cmd: []string{"true"}})
	wantCode(t, "exec idle", err, api.CodeConflict)

	a, err = c.StartAgent(ctx, "worker-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != api.AgentStatusRunning || a.ContainerID == nil {
		t.Fatalf("started: %+v", a)
	}
	first := *a.ContainerID
	sb, err := c.Container(ctx, first)
	if err != nil || sb.Status != api.ContainerStatusRunning || sb.TaskSummary != "agent:worker-1" || sb.ProxySocket == "" {
		t.Fatalf("the agent's sandbox: %+v, %v", sb, err)
	}
	skipWithoutSupervisor(t, c, first)
	_, err = c.StartAgent(ctx, "worker-1")
	wantCode(t, "start running", err, api.CodeConflict)
	_, err = c.ResumeAgent(ctx, "worker-1")
	wantCode(t, "resume running", err, api.CodeConflict)

	res, err := c.AgentExec(ctx, "worker-1", api.ExecRequest{Cmd: []string{"sh", "-c", "echo kept > /workspace/note; cat /workspace/note; echo $CLAWBOX_CONTAINER_ID"}})
	if err != nil || res.ExitCode != 0 || res.Stdout != "kept\n"+first+"\n" {
		t.Fatalf("exec through the agent: %+v, %v", res, err)
	}
	if _, err := c.AgentWriteFile(ctx, "worker-1", "/workspace/file.txt", strings.NewReader("via files"), 0); err != nil {
		t.Fatal(err)
	}

	a, err = c.PauseAgent(ctx, "worker-1")
	if err != nil || a.Status != api.AgentStatusPaused || a.ContainerID == nil || *a.ContainerID != first {
		t.Fatalf("pause: %+v, %v", a, err)
	}
	if sb, err := c.Container(ctx, first); err != nil || !sb.Paused || sb.Status != api.ContainerStatusRunning {
		t.Fatalf("paused sandbox: %+v, %v", sb, err)
	}
	_, err = c.PauseAgent(ctx, "worker-1")
	wantCode(t, "pause paused", err, api.CodeConflict)
	_, err = c.AgentExec(ctx, "worker-1", api.ExecRequest{Cmd: []string{"true"}})
	wantCode(t, "exec paused", err, api.CodeConflict)
	_, err = c.Exec(ctx, first, api.ExecRequest{Cmd: []string{"true"}})
	wantCode(t, "exec on the paused sandbox", err, api.CodeConflict)
	if a, err = c.ResumeAgent(ctx, "worker-1"); err != nil || a.Status != api.AgentStatusRunning {
		t.Fatalf("resume: %+v, %v", a, err)
	}
	if res, err := c.AgentExec(ctx, "worker-1", api.ExecRequest{Cmd: []string{"true"}}); err != nil || res.ExitCode != 0 {
		t.Fatalf("exec after resume: %+v, %v", res, err)
	}

	if a, err = c.StopAgent(ctx, "worker-1"); err != nil || a.Status != api.AgentStatusIdle || a.ContainerID != nil {
		t.Fatalf("stop: %+v, %v", a, err)
	}
	if sb, err := c.Container(ctx, first); err != nil || sb.Status != api.ContainerStatusKilled {
		t.Fatalf("the stopped agent's sandbox: %+v, %v", sb, err)
	}
	_, err = c.StopAgent(ctx, "worker-1")
	wantCode(t, "stop idle", err, api.CodeConflict)

	// A new sandbox, the same workspace.
	a, err = c.StartAgent(ctx, "worker-1")
	if err != nil || a.ContainerID == nil || *a.ContainerID == first {
		t.Fatalf("second start: %+v, %v", a, err)
	}
	var buf bytes.Buffer
	if _, err := c.AgentReadFile(ctx, "worker-1", "/workspace/file.txt", &buf); err != nil || buf.String() != "via files" {
		t.Fatalf("workspace file after stop and start: %q, %v", buf.String(), err)
	}
	res, err = c.AgentExec(ctx, "worker-1", api.ExecRequest{Cmd: []string{"cat", "/workspace/note"}})
	if err != nil || res.Stdout != "kept\n" {
		t.Fatalf("workspace after stop and start: %+v, %v", res, err)
	}
	if a, err = c.Agent(ctx, "worker-1"); err != nil || a.ExecutionCount != 3 {
		t.Fatalf("execution_count: %+v, %v", a, err)
	}
	list, err := c.Agents(ctx)
	if err != nil || len(list) != 1 || list[0].AgentID != "worker-1" {
		t.Fatalf("list: %+v, %v", list, err)
	}
	h, err := c.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if comp, ok := h.Components["agents"]; !ok || comp.Status != api.StatusOK {
		t.Fatalf("health components.agents: %+v", h.Components)
	} else if d, _ := comp.Detail.(map[string]any); d["active_agents"] != float64(1) || d["running_agents"] != float64(1) {
		t.Fatalf("health agents detail: %+v", comp.Detail)
	}

	second := *a.ContainerID
	if err := c.RemoveAgent(ctx, "worker-1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Agent(ctx, "worker-1"); apiCode(err) != api.CodeNotFound {
		t.Fatalf("after delete: %v", err)
	}
	if sb, err := c.Container(ctx, second); err != nil || sb.Status != api.ContainerStatusKilled {
		t.Fatalf("the removed agent's sandbox: %+v, %v", sb, err)
	}
	if _, err := os.Stat(*a.WorkspacePath); !os.IsNotExist(err) {
		t.Fatalf("workspace=true left the workspace: %v", err)
	}

	// Every transition is an audit record.
	want := []string{"agent_created", "agent_started", "agent_paused", "agent_resumed", "agent_stopped", "agent_removed"}
	poll.Until(t, time.Minute, "the agent's audit records", func() (bool, error) {
		recs, err := c.Audit(ctx, client.AuditQuery{Kind: string(api.AuditKindLifecycle), Limit: 1000})
		if err != nil {
			return false, err
		}
		seen := map[string]bool{}
		for _, r := range recs {
			if r.Agent == "worker-1" {
				seen[r.Event] = true
			}
		}
		for _, e := range want {
			if !seen[e] {
				return false, nil
			}
		}
		return true, nil
	})
}

// TestAgentSpawnPolicy checks that an agent is held to exactly the spawn
// policy: a disallowed image, a credential not allowed, a disallowed policy and
// resources above the maxima are refused at create; a narrowed allowlist
// narrows and a wider one never widens the server's.
func TestAgentSpawnPolicy(t *testing.T) {
	_, c, _ := agentDaemon(t, func(cfg *config.Config) {
		cfg.ContainerPolicy.NetworkAllowlist = []string{"https://api.example.test/"}
	})
	ctx := context.Background()
	removeAgents(t, c, "narrow", "wide")
	for name, tc := range map[string]struct {
		cfg  api.AgentConfig
		code string
	}{
		"image":      {api.AgentConfig{Image: "evil/image:latest"}, api.CodeImageNotAllowed},
		"credential": {api.AgentConfig{Capabilities: &api.ContainerCapabilities{Credentials: []string{"NOT_GRANTED"}}}, api.CodePolicyDenied},
		"policy":     {api.AgentConfig{Policy: api.SandboxPolicyContainerDirect}, api.CodePolicyDenied},
		"memory":     {api.AgentConfig{Capabilities: &api.ContainerCapabilities{Resources: &api.ContainerResources{MemoryMB: i64(1 << 30)}}}, api.CodeInvalidRequest},
		"lifetime":   {api.AgentConfig{Lifecycle: &api.AgentLifecycle{MaxLifetimeMS: i64(1000 * 3600 * 1000)}}, api.CodeInvalidRequest},
		"env":        {api.AgentConfig{Env: map[string]string{"LD_PRELOAD": "/x.so"}}, api.CodeInvalidRequest},
		"idleaction": {api.AgentConfig{Lifecycle: &api.AgentLifecycle{IdleAction: "hibernate"}}, api.CodeInvalidRequest},
	} {
		tc.cfg.AgentID, tc.cfg.Name = "bad-"+name, name
		_, err := c.CreateAgent(ctx, tc.cfg)
		wantCode(t, name, err, tc.code)
	}
	if list, err := c.Agents(ctx); err != nil || len(list) != 0 {
		t.Fatalf("refused agents were registered: %+v, %v", list, err)
	}

	check := func(id, url string) bool {
		t.Helper()
		a, err := c.StartAgent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.PolicyCheck(ctx, api.PolicyCheckRequest{ContainerID: *a.ContainerID, URL: url})
		if err != nil {
			t.Fatal(err)
		}
		return r.Allowed
	}
	if _, err := c.CreateAgent(ctx, api.AgentConfig{AgentID: "wide", Name: "w",
		Capabilities: &api.ContainerCapabilities{Network: &api.ContainerNetwork{Allowlist: []string{"https://api.example.test/", "https://elsewhere.test/"}}}}); err != nil {
		t.Fatal(err)
	}
	if check("wide", "https://elsewhere.test/x") {
		t.Fatal("an agent's allowlist widened the server's")
	}
	if _, err := c.CreateAgent(ctx, api.AgentConfig{AgentID: "narrow", Name: "n",
		Capabilities: &api.ContainerCapabilities{Network: &api.ContainerNetwork{Allowlist: []string{}}}}); err != nil {
		t.Fatal(err)
	}
	if check("narrow", "https://api.example.test/x") {
		t.Fatal("an agent's empty allowlist did not narrow the server's")
	}
}

// TestAgentCrashRestartsWithBackoff: a main command that fails is restarted with
// back-off up to max_restarts, then the agent is failed.
func TestAgentCrashRestartsWithBackoff(t *testing.T) {
	_, c, _ := agentDaemon(t, nil)
	ctx := context.Background()
	removeAgents(t, c, "crashy")
	two := 2
	if _, err := c.CreateAgent(ctx, api.AgentConfig{AgentID: "crashy", Name: "c", Command: []string{"sh", "-c", "sleep 0.3; exit 3"},
		Lifecycle: &api.AgentLifecycle{RestartOnCrash: true, MaxRestarts: &two, RestartBackoffMS: i64(200)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartAgent(ctx, "crashy"); err != nil {
		t.Fatal(err)
	}
	a := waitAgent(t, c, "crashy", "failed", status(api.AgentStatusFailed))
	if a.RestartCount != 2 || a.ContainerID != nil || !strings.Contains(a.Reason, "exit code 3") {
		t.Fatalf("failed agent: %+v", a)
	}
	recs, err := c.Audit(ctx, client.AuditQuery{Kind: string(api.AuditKindLifecycle), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var crashes, restarts []time.Time
	failed := 0
	for _, r := range recs {
		if r.Agent != "crashy" {
			continue
		}
		switch r.Event {
		case "agent_crashed":
			crashes = append(crashes, r.Time)
		case "agent_restarted":
			restarts = append(restarts, r.Time)
		case "agent_failed":
			failed++
		}
	}
	if len(crashes) != 2 || len(restarts) != 2 || failed != 1 {
		t.Fatalf("audit: %d crashes, %d restarts, %d failed; want 2, 2, 1", len(crashes), len(restarts), failed)
	}
	// Each restart waited its back-off after its crash (200 ms, then 400 ms).
	sortTimes := func(ts []time.Time) {
		for i := range ts {
			for j := i + 1; j < len(ts); j++ {
				if ts[j].Before(ts[i]) {
					ts[i], ts[j] = ts[j], ts[i]
				}
			}
		}
	}
	sortTimes(crashes)
	sortTimes(restarts)
	for i, b := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond} {
		if restarts[i].Sub(crashes[i]) < b {
			t.Errorf("restart %d came %s after its crash, before its back-off %s", i+1, restarts[i].Sub(crashes[i]), b)
		}
	}
	// An explicit start begins a new series.
	if a, err := c.StartAgent(ctx, "crashy"); err != nil || a.RestartCount != 0 {
		t.Fatalf("start after failed: %+v, %v", a, err)
	}
}

// TestAgentIdleStopAndPause: no exec, file call or door traffic for max_idle_ms
// stops the agent, or pauses it with idle_action "pause"; activity keeps it up.
func TestAgentIdleStopAndPause(t *testing.T) {
	_, c, _ := agentDaemon(t, nil)
	ctx := context.Background()
	removeAgents(t, c, "idle-stop", "idle-pause")
	for id, action := range map[string]string{"idle-stop": api.AgentIdleStop, "idle-pause": api.AgentIdlePause} {
		if _, err := c.CreateAgent(ctx, api.AgentConfig{AgentID: id, Name: id,
			Lifecycle: &api.AgentLifecycle{MaxIdleMS: i64(1500), IdleAction: action}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.StartAgent(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	a := waitAgent(t, c, "idle-stop", "idle", status(api.AgentStatusIdle))
	if !strings.Contains(a.Reason, "idle for") || a.ContainerID != nil {
		t.Fatalf("idle-stopped agent: %+v", a)
	}
	p := waitAgent(t, c, "idle-pause", "paused", status(api.AgentStatusPaused))
	if sb, err := c.Container(ctx, *p.ContainerID); err != nil || !sb.Paused {
		t.Fatalf("idle-paused agent's sandbox: %+v, %v", sb, err)
	}
	// Resumed and kept busy, it is not idled: each exec is activity.
	if _, err := c.ResumeAgent(ctx, "idle-pause"); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		a, err := c.Agent(ctx, "idle-pause")
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != api.AgentStatusRunning {
			t.Fatalf("a busy agent was idled: %+v", a)
		}
		if _, err := c.AgentExec(ctx, "idle-pause", api.ExecRequest{Cmd: []string{"true"}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestAgentPauseStopsTheLifetimeClock: a paused agent outlives its
// max_lifetime_ms; resumed, its deadline has moved by the paused time, and it
// is terminated at the end of its lifetime.
func TestAgentPauseStopsTheLifetimeClock(t *testing.T) {
	_, c, _ := agentDaemon(t, nil)
	ctx := context.Background()
	removeAgents(t, c, "short")
	if _, err := c.CreateAgent(ctx, api.AgentConfig{AgentID: "short", Name: "s",
		Lifecycle: &api.AgentLifecycle{MaxLifetimeMS: i64(3000)}}); err != nil {
		t.Fatal(err)
	}
	a, err := c.StartAgent(ctx, "short")
	if err != nil {
		t.Fatal(err)
	}
	cid := *a.ContainerID
	before, err := c.Container(ctx, cid)
	if err != nil || before.Deadline == nil {
		t.Fatalf("sandbox: %+v, %v", before, err)
	}
	if _, err := c.PauseAgent(ctx, "short"); err != nil {
		t.Fatal(err)
	}
	pausedAt := time.Now()
	// Wait past the deadline as it was at the pause.
	for time.Now().Before(before.Deadline.Add(time.Second)) {
		time.Sleep(100 * time.Millisecond)
	}
	if a, err := c.Agent(ctx, "short"); err != nil || a.Status != api.AgentStatusPaused {
		t.Fatalf("paused past its deadline: %+v, %v", a, err)
	}
	if _, err := c.ResumeAgent(ctx, "short"); err != nil {
		t.Fatal(err)
	}
	paused := time.Since(pausedAt)
	after, err := c.Container(ctx, cid)
	if err != nil || after.Deadline == nil || after.Paused {
		t.Fatalf("resumed sandbox: %+v, %v", after, err)
	}
	if moved := after.Deadline.Sub(*before.Deadline); moved < paused-time.Second || moved > paused+time.Second {
		t.Fatalf("deadline moved by %s, paused for %s", moved, paused)
	}
	waitAgent(t, c, "short", "terminated", status(api.AgentStatusTerminated))
	if sb, err := c.Container(ctx, cid); err != nil || sb.Status != api.ContainerStatusTimedOut {
		t.Fatalf("terminated agent's sandbox: %+v, %v", sb, err)
	}
}

// TestAgentsSurviveServerRestart: a running agent's sandbox is adopted, a paused
// one stays paused, a stopped one stays stopped, and the workspace is kept.
func TestAgentsSurviveServerRestart(t *testing.T) {
	cfg, c, stop := agentDaemon(t, nil)
	ctx := context.Background()
	for _, id := range []string{"run", "pause", "stop"} {
		if _, err := c.CreateAgent(ctx, api.AgentConfig{AgentID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	run, err := c.StartAgent(ctx, "run")
	if err != nil {
		t.Fatal(err)
	}
	skipWithoutSupervisor(t, c, *run.ContainerID)
	if res, err := c.AgentExec(ctx, "run", api.ExecRequest{Cmd: []string{"sh", "-c", "echo before > /workspace/f"}}); err != nil || res.ExitCode != 0 {
		t.Fatalf("exec: %+v, %v", res, err)
	}
	paused, err := c.StartAgent(ctx, "pause")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PauseAgent(ctx, "pause"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartAgent(ctx, "stop"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StopAgent(ctx, "stop"); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("first daemon: %v", err)
	}

	addrs, _ := runDaemon(t, cfg)
	c = apiClient(t, cfg, addrs[0])
	removeAgents(t, c, "run", "pause", "stop")
	a, err := c.Agent(ctx, "run")
	if err != nil || a.Status != api.AgentStatusRunning || a.ContainerID == nil || *a.ContainerID != *run.ContainerID {
		t.Fatalf("running agent after restart: %+v, %v", a, err)
	}
	res, err := c.AgentExec(ctx, "run", api.ExecRequest{Cmd: []string{"cat", "/workspace/f"}})
	if err != nil || res.Stdout != "before\n" {
		t.Fatalf("exec in the adopted agent: %+v, %v", res, err)
	}
	p, err := c.Agent(ctx, "pause")
	if err != nil || p.Status != api.AgentStatusPaused || *p.ContainerID != *paused.ContainerID {
		t.Fatalf("paused agent after restart: %+v, %v", p, err)
	}
	if _, err := c.ResumeAgent(ctx, "pause"); err != nil {
		t.Fatal(err)
	}
	if res, err := c.AgentExec(ctx, "pause", api.ExecRequest{Cmd: []string{"true"}}); err != nil || res.ExitCode != 0 {
		t.Fatalf("exec in the resumed agent: %+v, %v", res, err)
	}
	s, err := c.Agent(ctx, "stop")
	if err != nil || s.Status != api.AgentStatusIdle || s.ContainerID != nil {
		t.Fatalf("stopped agent after restart: %+v, %v", s, err)
	}
	if list, err := c.Agents(ctx); err != nil || len(list) != 3 {
		t.Fatalf("agents after restart: %+v, %v", list, err)
	}
}

// TestAgentReferenceClientBodies posts the request bodies a reference client
// sends (every field serialized, the reference's defaults included) and reads
// the reference's field names back.
func TestAgentReferenceClientBodies(t *testing.T) {
	cfg, c, _ := agentDaemon(t, nil)
	ctx := context.Background()
	removeAgents(t, c, "ref-agent")
	tok, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	body := `{"agent_id":"ref-agent","name":"Reference","policy":"wasm_only",
		"capabilities":{"network":{"allowlist":[],"max_concurrent":0},"credentials":[],
		"resources":{"timeout_ms":120000,"memory_mb":512,"cpu_shares":1024,"max_output_bytes":262144}},
		"workspace":null,
		"lifecycle":{"max_idle_ms":3600000,"max_lifetime_ms":null,"restart_on_crash":false,"max_restarts":3},
		"env":{},"image":null}`
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, c.BaseURL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, out := do(http.MethodPost, "/agents", body)
	if code != http.StatusCreated {
		t.Fatalf("POST /agents: %d %v", code, out)
	}
	for _, k := range []string{"agent_id", "name", "status", "container_id", "created_at", "last_activity", "execution_count", "workspace_path"} {
		if _, ok := out[k]; !ok {
			t.Errorf("AgentInfo has no %q: %v", k, out)
		}
	}
	if out["status"] != "idle" || out["container_id"] != nil {
		t.Fatalf("created: %v", out)
	}
	if code, out = do(http.MethodPost, "/agents/ref-agent/start", ""); code != http.StatusOK || out["status"] != "running" || out["container_id"] == nil {
		t.Fatalf("start: %d %v", code, out)
	}
	if code, out = do(http.MethodPost, "/agents/ref-agent/start", ""); code != http.StatusConflict || out["code"] != "conflict" {
		t.Fatalf("start again: %d %v", code, out)
	}
	if code, out = do(http.MethodPost, "/agents/ref-agent/stop", ""); code != http.StatusOK || out["status"] != "idle" {
		t.Fatalf("stop: %d %v", code, out)
	}
	if code, _ = do(http.MethodDelete, "/agents/ref-agent", ""); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code, out = do(http.MethodGet, "/agents/ref-agent", ""); code != http.StatusNotFound || out["error"] != "agent not found: ref-agent" {
		t.Fatalf("get deleted: %d %v", code, out)
	}
}

// TestAgentOwnDoorAndCapacity covers the reference's agent faults (its section 11,
// items 11 and 12): each agent's sandbox has its own socket directory under
// containers.proxies_dir with a live door that wants the sandbox's token (never a
// shared, predictable /tmp path), and agents count against max_containers.
func TestAgentOwnDoorAndCapacity(t *testing.T) {
	cfg, c, _ := agentDaemon(t, func(cfg *config.Config) { cfg.Containers.MaxContainers = 2 })
	ctx := context.Background()
	removeAgents(t, c, "one", "two", "three")
	var cids []string
	for _, id := range []string{"one", "two", "three"} {
		if _, err := c.CreateAgent(ctx, api.AgentConfig{AgentID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"one", "two"} {
		a, err := c.StartAgent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		cids = append(cids, *a.ContainerID)
	}
	_, err := c.StartAgent(ctx, "three")
	wantCode(t, "start beyond max_containers", err, api.CodeResourceExhausted)
	if a, err := c.Agent(ctx, "three"); err != nil || a.Status != api.AgentStatusIdle || !strings.Contains(a.Reason, "resource_exhausted") {
		t.Fatalf("refused start: %+v, %v", a, err)
	}
	if _, err := os.Stat("/tmp/clawbox-proxy-agent"); !os.IsNotExist(err) {
		t.Fatalf("a shared agent socket directory exists: %v", err)
	}
	for i, cid := range cids {
		sock := cfg.Containers.ProxiesDir + "/" + cid + "/proxy.sock"
		hc := doorClient(sock)
		resp, err := hc.Post("http://door/proxy", "application/json", strings.NewReader(`{"url":"https://example.com/"}`))
		if err != nil {
			t.Fatalf("agent %d's door at %s: %v", i, sock, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("agent %d's door without its token: %d, want 401", i, resp.StatusCode)
		}
		res, err := c.Exec(ctx, cid, api.ExecRequest{Cmd: []string{"sh", "-c", "echo $CLAWBOX_PROXY_SOCKET; test -S /run/clawbox/proxy.sock && echo socket"}})
		if err != nil || res.Stdout != "/run/clawbox/proxy.sock\nsocket\n" {
			t.Fatalf("agent %d inside: %+v, %v", i, res, err)
		}
	}
	// Its status follows the sandbox: ended behind its back, the agent is idle.
	if _, err := c.Kill(ctx, cids[0]); err != nil {
		t.Fatal(err)
	}
	waitAgent(t, c, "one", "idle after its sandbox was killed", status(api.AgentStatusIdle))
	if _, err := c.StartAgent(ctx, "three"); err != nil {
		t.Fatalf("start once there is room: %v", err)
	}
}
