package daemon

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/poll"

	"github.com/clawbox/clawbox/internal/testkit"
)

// upstream is a loopback HTTPS server standing for a real API. It records the
// Authorization header each request carried and echoes it back in the body.
type upstream struct {
	*httptest.Server
	mu    sync.Mutex
	auths []string
	port  string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		u.mu.Lock()
		u.auths = append(u.auths, auth)
		u.mu.Unlock()
		fmt.Fprintf(w, "path=%s auth=%s", r.URL.Path, auth)
	}))
	t.Cleanup(u.Close)
	_, u.port, _ = net.SplitHostPort(u.Listener.Addr().String())
	return u
}

func (u *upstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.auths...)
}

// containerConfig is a served config whose sandboxes may reach the upstream as
// https://example.com:<port>/ (example.com resolves to 127.0.0.1 through proxy.hosts:
// nothing leaves the machine).
func containerConfig(t *testing.T, up *upstream) *config.Config {
	cfg := dockerConfig(t)
	cfg.Proxy.AllowPrivateCIDRs = []string{"127.0.0.0/8"}
	cfg.Proxy.Hosts = map[string][]string{"example.com": {"127.0.0.1"}}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Proxy.UpstreamCAFile = ca
	cfg.ContainerPolicy.NetworkAllowlist = []string{"https://example.com:" + up.port + "/"}
	cfg.ContainerPolicy.AllowedCredentials = []string{"UPSTREAM"}
	return cfg
}

// upstreamSecret is the UPSTREAM credential's value in the egress tests.
const upstreamSecret = "sk-live0123456789abcdefghijklmnop"

// putUpstreamCredential stores UPSTREAM (upstreamSecret, a placeholder in
// sandboxes) for https://example.com:<up's port>/api.
func putUpstreamCredential(t *testing.T, c *client.Client, up *upstream) {
	t.Helper()
	if _, err := c.PutCredential(context.Background(), "UPSTREAM", api.PutCredentialRequest{
		Value: upstreamSecret, Host: "example.com", Port: mustAtoi(t, up.port), PathPrefix: "/api", Placeholder: true,
	}); err != nil {
		t.Fatal(err)
	}
}

func apiClient(t *testing.T, cfg *config.Config, addr string) *client.Client {
	tok, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(addr, client.Options{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFinal waits until a sandbox has left running, with the SDK's Wait.
func waitFinal(t *testing.T, c *client.Client, id string) *api.ContainerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	info, err := c.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait for sandbox %s: %v", id, err)
	}
	if !client.FinalStatus(info.Status) {
		t.Fatalf("Wait returned sandbox %s %s", id, info.Status)
	}
	return info
}

// TestContainerEgressEndToEnd runs a workload in a real container that reaches a
// loopback upstream only through its door: the placeholder credential is swapped for
// the real value on the way out, the value echoed back is redacted, the placeholder
// sent where its binding does not match is a leak, a disallowed port is blocked, and
// every decision is audited.
func TestContainerEgressEndToEnd(t *testing.T) {
	dockertest.ForEachRuntime(t, testContainerEgressEndToEnd)
}

func testContainerEgressEndToEnd(t *testing.T, rt dockertest.Runtime) {
	requireDocker(t)
	up := newUpstream(t)
	cfg := containerConfig(t, up)
	cfg.Logging.Level = "debug"
	var serverLog testkit.Buffer
	useRuntime(cfg, rt)
	addrs, stop := runDaemonLog(t, cfg, &serverLog)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	const secret = upstreamSecret
	putUpstreamCredential(t, c, up)
	base := "https://example.com:" + up.port
	script := strings.Join([]string{
		`case "$UPSTREAM" in sk-*) echo "env=placeholder len=${#UPSTREAM}";; *) echo "env=unexpected";; esac`,
		`/agent -proxy ` + base + `/api/x -header "Authorization:Bearer $UPSTREAM"`,
		`/agent -proxy ` + base + `/elsewhere -header "Authorization:Bearer $UPSTREAM"`,
		`/agent -proxy https://example.com:1/api/x`,
		`/agent -proxy ` + base + `/api/plain`,
	}, "; ")
	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{
		Task:         "egress end to end",
		Command:      []string{"sh", "-c", script},
		Capabilities: &api.ContainerCapabilities{Credentials: []string{"UPSTREAM"}},
	})
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	final := waitFinal(t, c, info.ContainerID)
	logs, err := c.Logs(ctx, info.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != api.ContainerStatusCompleted {
		t.Fatalf("sandbox %s: %s\nstdout:\n%s\nstderr:\n%s", info.ContainerID, final.Status, logs.Stdout, logs.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(logs.Stdout), "\n")
	if len(lines) != 5 {
		t.Fatalf("want 5 lines of output, got:\n%s\nstderr:\n%s", logs.Stdout, logs.Stderr)
	}
	// The placeholder keeps the value's prefix and length (the logs would redact the
	// placeholder itself: it matches the sk- credential pattern).
	if want := fmt.Sprintf("env=placeholder len=%d", len(secret)); lines[0] != want {
		t.Errorf("the sandbox's env: %q, want %q", lines[0], want)
	}
	// 1. Matching destination: the upstream got the real value; the echo came back redacted.
	if !strings.HasPrefix(lines[1], "200 ") || !strings.Contains(lines[1], "[REDACTED]") {
		t.Errorf("matching request: %s", lines[1])
	}
	// 2. The placeholder outside its binding's path: a leak, refused.
	if !strings.Contains(lines[2], "403") || !strings.Contains(lines[2], "leak_detected") {
		t.Errorf("placeholder to a non-matching path: %s", lines[2])
	}
	// 3. A port the policy does not allow.
	if !strings.Contains(lines[3], "403") || !strings.Contains(lines[3], "blocked_by_policy") {
		t.Errorf("disallowed port: %s", lines[3])
	}
	// 4. A plain allowed request.
	if !strings.HasPrefix(lines[4], "200 ") || !strings.Contains(lines[4], "path=/api/plain") {
		t.Errorf("plain request: %s", lines[4])
	}
	if strings.Contains(logs.Stdout+logs.Stderr, secret) {
		t.Fatal("the real credential reached the sandbox")
	}
	seen := up.seen()
	if len(seen) != 2 || seen[0] != "Bearer "+secret {
		t.Errorf("upstream saw %q; want the real value on the first request only", seen)
	}

	// Every decision is in the audit log, without the value.
	var recs []api.AuditRecord
	poll.Until(t, poll.Server, "4 request audit records", func() (bool, error) {
		recs, err = c.Audit(ctx, client.AuditQuery{ContainerID: info.ContainerID, Kind: "request"})
		if err != nil {
			t.Fatal(err)
		}
		return len(recs) >= 4, fmt.Errorf("%d records", len(recs))
	})
	decisions := map[api.AuditDecision]int{}
	for _, r := range recs {
		decisions[r.Decision]++
		if strings.Contains(fmt.Sprint(r), secret) {
			t.Errorf("audit record holds the credential: %+v", r)
		}
	}
	if decisions[api.DecisionAllowed] != 2 || decisions[api.DecisionLeak] != 1 || decisions[api.DecisionBlocked] != 1 {
		t.Errorf("audit decisions %v, want 2 allowed, 1 leak, 1 blocked", decisions)
	}
	var injected bool
	for _, r := range recs {
		if len(r.Credentials) == 1 && r.Credentials[0] == "UPSTREAM" {
			injected = true
		}
	}
	if !injected {
		t.Error("no audit record names the injected credential")
	}

	// The value is nowhere in the server's log or the audit file, in any form.
	stop()
	auditFile, err := os.ReadFile(filepath.Join(cfg.Logging.AuditDir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(auditFile) == 0 || serverLog.Len() == 0 {
		t.Fatalf("nothing to check: audit %d bytes, log %d bytes", len(auditFile), serverLog.Len())
	}
	for name, text := range map[string]string{"server log": serverLog.String(), "audit file": string(auditFile)} {
		for _, form := range secretForms(secret) {
			if strings.Contains(text, form) {
				t.Errorf("the %s holds the credential (as %q)", name, form)
			}
		}
	}
}

// secretForms are the plain and encoded forms of a secret that must never appear.
func secretForms(s string) []string {
	return []string{
		s,
		hex.EncodeToString([]byte(s)),
		base64.StdEncoding.EncodeToString([]byte(s)),
		base64.RawURLEncoding.EncodeToString([]byte(s)),
	}
}

// TestContainerRoutes drives the container API over HTTP against the real daemon.
func TestContainerRoutes(t *testing.T) {
	requireDocker(t)
	cfg := dockerConfig(t)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	done, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "say hi", Command: []string{"sh", "-c", "echo out; echo err >&2; exit 4"}})
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != api.ContainerStatusRunning || !strings.HasPrefix(done.ContainerID, "clawbox-") {
		t.Errorf("spawn answered %+v", done)
	}
	// Follow streams the output and ends with the final status.
	var frames []api.LogFrame
	if err := c.FollowLogs(ctx, done.ContainerID, func(f api.LogFrame) error { frames = append(frames, f); return nil }); err != nil {
		t.Fatal(err)
	}
	var out, errs string
	for _, f := range frames {
		switch f.Stream {
		case "stdout":
			out += f.Data
		case "stderr":
			errs += f.Data
		}
	}
	last := frames[len(frames)-1]
	if out != "out\n" || errs != "err\n" || last.Stream != "status" || last.Status != api.ContainerStatusFailed || last.ExitCode == nil || *last.ExitCode != 4 {
		t.Errorf("follow: out %q err %q last %+v", out, errs, last)
	}
	logs, err := c.Logs(ctx, done.ContainerID)
	if err != nil || logs.Stdout != "out\n" || logs.Stderr != "err\n" {
		t.Errorf("logs after exit: %+v %v", logs, err)
	}

	long, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "wait", Command: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	running, err := c.Containers(ctx, "running")
	if err != nil || len(running) != 1 || running[0].ContainerID != long.ContainerID {
		t.Errorf("list running = %+v %v", running, err)
	}
	all, _ := c.Containers(ctx, "")
	if len(all) != 2 || all[0].ContainerID != long.ContainerID {
		t.Errorf("list all (newest first) = %+v", all)
	}
	k, err := c.Kill(ctx, long.ContainerID)
	if err != nil || k.Status != api.ContainerStatusKilled {
		t.Errorf("kill = %+v %v", k, err)
	}
	k2, err := c.Kill(ctx, long.ContainerID)
	if err != nil || k2.Status != api.ContainerStatusKilled {
		t.Errorf("second kill = %+v %v", k2, err)
	}
	k3, err := c.Kill(ctx, done.ContainerID)
	if err != nil || k3.Status != api.ContainerStatusFailed {
		t.Errorf("kill of a finished sandbox = %+v %v", k3, err)
	}

	for _, tc := range []struct {
		name string
		call func() error
		code string
	}{
		{"get unknown", func() error { _, err := c.Container(ctx, "clawbox-nope"); return err }, api.CodeNotFound},
		{"kill unknown", func() error { _, err := c.Kill(ctx, "clawbox-nope"); return err }, api.CodeNotFound},
		{"logs unknown", func() error { _, err := c.Logs(ctx, "../../etc/passwd"); return err }, api.CodeNotFound},
		{"bad status filter", func() error { _, err := c.Containers(ctx, "weird"); return err }, api.CodeInvalidRequest},
		{"image not allowed", func() error {
			_, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "x", Image: "clawbox-evil/x"})
			return err
		}, api.CodeImageNotAllowed},
		{"image missing", func() error {
			_, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "x", Image: "clawbox-test/missing:v1"})
			return err
		}, api.CodeImageNotFound},
		{"reserved env", func() error {
			_, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "x", Env: map[string]string{"http_proxy": "x"}})
			return err
		}, api.CodeInvalidRequest},
		{"policy not allowed", func() error {
			_, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "x", Policy: "container_direct"})
			return err
		}, api.CodePolicyDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			e, ok := api.AsError(err)
			if !ok || e.Code != tc.code {
				t.Errorf("err = %v, want code %s", err, tc.code)
			}
		})
	}
}

func TestContainersUnavailableWithoutDocker(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
	cfg := testConfig(t)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	_, err := c.Containers(context.Background(), "")
	e, ok := api.AsError(err)
	if !ok || e.Code != api.CodeUnavailable || !strings.Contains(e.Message, "Docker") {
		t.Errorf("GET /containers without Docker: %v", err)
	}
	h, err := c.Health(context.Background())
	if err != nil || h.Status != api.StatusDegraded || h.Components["docker"].Status != api.StatusUnavailable {
		t.Errorf("health without Docker: %+v %v", h, err)
	}

}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
