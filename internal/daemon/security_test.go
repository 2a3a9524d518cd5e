package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/dockertest"
)

// outputKV collects "key=value" lines of a sandbox's stdout.
func outputKV(stdout string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(stdout, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// TestEscapeAttemptsFromInside runs a sandbox that tries the ways out that
// TestHardeningFromInside does not: a setuid-root binary, the Docker socket, the
// server's own API port, another sandbox's socket directory, and filling /tmp.
func TestEscapeAttemptsFromInside(t *testing.T) {
	dockertest.ForEachRuntime(t, testEscapeAttemptsFromInside)
}

func testEscapeAttemptsFromInside(t *testing.T, rt dockertest.Runtime) {
	requireDocker(t)
	cfg := testConfig(t)
	cfg.Containers.KillOnShutdown = true // nothing outlives the test, even on failure
	cfg.Containers.AllowedImages = []string{"clawbox-test/"}
	cfg.Containers.DefaultImage = testImage
	cfg.Containers.TmpfsSizeMB = 8
	useRuntime(cfg, rt)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	// A neighbour whose socket directory and token the prober looks for.
	victim, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "victim", Command: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(context.Background(), victim.ContainerID) })

	apiPort := strconv.Itoa(cfg.Server.Port)
	script := strings.Join([]string{
		// The image holds a setuid-root copy of the agent; no-new-privileges keeps the
		// sandbox's uid.
		`/agent-suid -whoami`,
		`echo "nnp=$(grep NoNewPrivs /proc/self/status)"`,
		`echo "seccomp=$(grep '^Seccomp:' /proc/self/status)"`,
		`echo "tmpmount=$(grep ' /tmp ' /proc/mounts)"`,
		// A setuid copy cannot be made on the read-only root.
		`if cp /agent /bin/x 2>/dev/null; then echo rootcopy=made; else echo rootcopy=refused; fi`,
		`echo "docker=$(/agent -dial unix:/var/run/docker.sock)"`,
		`echo "dockerrun=$(/agent -dial unix:/run/docker.sock)"`,
		`echo "dockerfile=$(ls /var/run/docker.sock /run/docker.sock 2>/dev/null | wc -l)"`,
		// The server listens on the host's 127.0.0.1; the sandbox's loopback is its own.
		`echo "api=$(/agent -dial tcp:127.0.0.1:` + apiPort + `)"`,
		`echo run=$(ls -a /run/clawbox)`,
		`echo "victimdir=$(ls /run/clawbox/` + victim.ContainerID + ` ` + filepath.Join(cfg.Containers.ProxiesDir, victim.ContainerID) + ` 2>/dev/null | wc -l)"`,
		`if dd if=/dev/zero of=/tmp/fill bs=1M count=32 2>/dev/null; then echo tmpfull=no; else echo tmpfull=yes; fi`,
		`echo "tmpbytes=$(wc -c < /tmp/fill)"`,
	}, "; ")
	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "escape", Command: []string{"sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	final := waitFinal(t, c, info.ContainerID)
	logs, _ := c.Logs(ctx, info.ContainerID)
	if final.Status != api.ContainerStatusCompleted {
		t.Fatalf("%s\nstdout:\n%s\nstderr:\n%s", final.Status, logs.Stdout, logs.Stderr)
	}
	out := outputKV(logs.Stdout)
	checks := []struct {
		key  string
		ok   func(string) bool
		want string
	}{
		{"euid", func(v string) bool { return strings.HasPrefix(v, "1000 ") }, "1000 (a setuid-root binary runs as the sandbox user)"},
		{"nnp", func(v string) bool { return strings.HasSuffix(v, "1") }, "NoNewPrivs 1"},
		{"seccomp", func(v string) bool { return strings.HasSuffix(v, "2") }, "Seccomp 2 (filter mode)"},
		{"tmpmount", func(v string) bool {
			return strings.Contains(v, "nosuid") && strings.Contains(v, "noexec") && strings.Contains(v, "nodev")
		}, "/tmp mounted nosuid,noexec,nodev"},
		{"rootcopy", func(v string) bool { return v == "refused" }, "refused"},
		{"docker", func(v string) bool { return v == "dial=failed" }, "dial=failed"},
		{"dockerrun", func(v string) bool { return v == "dial=failed" }, "dial=failed"},
		{"dockerfile", func(v string) bool { return v == "0" }, "0 Docker sockets"},
		{"api", func(v string) bool { return v == "dial=failed" }, "dial=failed (the server's API port)"},
		{"run", func(v string) bool {
			return v == ". .. ca-bundle.pem ca.pem proxy.sock supervisor-token supervisor.sock token"
		}, "only its own CA certificate and bundle (never the CA key), proxy.sock, token and supervisor socket and token"},
		{"victimdir", func(v string) bool { return v == "0" }, "0 entries of the other sandbox"},
		{"tmpfull", func(v string) bool { return v == "yes" }, "yes (writing past tmpfs_size_mb fails)"},
		{"tmpbytes", func(v string) bool {
			n, err := strconv.Atoi(v)
			return err == nil && n <= 8<<20
		}, "at most 8 MiB"},
	}
	for _, ck := range checks {
		// gVisor's /proc shows neither no_new_privs nor the seccomp filter, which apply
		// to the sandbox kernel on the host (the setuid check shows the first at work),
		// and lists only "rw,noexec" for /tmp (TestHardeningFromInside runs nothing from it).
		switch {
		case rt.GVisor() && (ck.key == "nnp" || ck.key == "seccomp"):
			continue
		case rt.GVisor() && ck.key == "tmpmount":
			ck.ok, ck.want = func(v string) bool { return strings.Contains(v, "noexec") }, "/tmp mounted noexec"
		}
		if v, ok := out[ck.key]; !ok || !ck.ok(v) {
			t.Errorf("%s = %q, want %s", ck.key, v, ck.want)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", logs.Stdout, logs.Stderr)
	}
}

// TestNoisySandboxDoesNotStarveOthers: while one sandbox holds every process its pids
// limit allows and has filled its /tmp, and another runs out of memory, the API
// answers, a third sandbox spawns and reaches the network through its door, the host
// can still start processes, and the noisy one is killed promptly.
func TestNoisySandboxDoesNotStarveOthers(t *testing.T) {
	requireDocker(t)
	up := newUpstream(t)
	cfg := containerConfig(t, up)
	cfg.Containers.KillOnShutdown = true // nothing outlives the test, even on failure
	cfg.Containers.PidsLimit = 32
	cfg.Containers.TmpfsSizeMB = 8
	cfg.Containers.StopGrace = 0
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	hog, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "hog", Command: []string{"sh", "-c",
		`dd if=/dev/zero of=/tmp/fill bs=1M count=32 2>/dev/null; /agent -fork 500 -hold`}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(context.Background(), hog.ContainerID) })
	// Follow the hog's output until it reports how many children it could start.
	var seen strings.Builder
	errSeen := errors.New("seen")
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = c.FollowLogs(fctx, hog.ContainerID, func(f api.LogFrame) error {
		seen.WriteString(f.Data)
		if strings.Contains(seen.String(), "forks=") && strings.HasSuffix(seen.String(), "\n") {
			return errSeen
		}
		return nil
	})
	cancel()
	if !errors.Is(err, errSeen) {
		t.Fatalf("the hog did not report its forks: %v (output %q)", err, seen.String())
	}
	started, _, _ := strings.Cut(outputKV(seen.String())["forks"], "/")
	if n, err := strconv.Atoi(started); err != nil || n >= int(cfg.Containers.PidsLimit) {
		t.Fatalf("the hog started %q children with a pids limit of %d", started, cfg.Containers.PidsLimit)
	}

	// A second noisy sandbox runs out of memory meanwhile.
	mem := int64(16)
	oom, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "memory hog", Command: []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"},
		Capabilities: &api.ContainerCapabilities{Resources: &api.ContainerResources{MemoryMB: &mem}}})
	if err != nil {
		t.Fatal(err)
	}
	if of := waitFinal(t, c, oom.ContainerID); of.Status != api.ContainerStatusFailed || !of.OOMKilled {
		t.Errorf("the memory hog: %s oom_killed %v", of.Status, of.OOMKilled)
	}

	if h, err := c.Health(ctx); err != nil || h.Status == "" {
		t.Fatalf("health while a sandbox is exhausted: %+v %v", h, err)
	}
	if err := exec.Command("true").Run(); err != nil {
		t.Fatalf("the host cannot start a process: %v", err)
	}
	other, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "neighbour", Command: []string{"sh", "-c",
		`/agent -proxy https://example.com:` + up.port + `/ok; /agent -fork 5; dd if=/dev/zero of=/tmp/f bs=1M count=4 2>/dev/null && echo tmp=ok`}})
	if err != nil {
		t.Fatalf("spawn next to the hog: %v", err)
	}
	final := waitFinal(t, c, other.ContainerID)
	logs, _ := c.Logs(ctx, other.ContainerID)
	out := outputKV(logs.Stdout)
	if final.Status != api.ContainerStatusCompleted || !strings.HasPrefix(logs.Stdout, "200 ") || out["forks"] != "5/5" || out["tmp"] != "ok" {
		t.Fatalf("the neighbour: %s\nstdout:\n%s\nstderr:\n%s", final.Status, logs.Stdout, logs.Stderr)
	}
	k, err := c.Kill(ctx, hog.ContainerID)
	if err != nil || k.Status != api.ContainerStatusKilled {
		t.Fatalf("kill the hog: %+v %v", k, err)
	}
}

// doorClient is an HTTP client speaking to a sandbox's door from the host, as any
// process that could reach the socket would.
func doorClient(sock string) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

// doorCall sends one request to a door and returns the status and the decoded body.
func doorCall(t *testing.T, sock, method, path, token, body string) (int, map[string]any, error) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://door"+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := doorClient(sock).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Errorf("%s %s on the door: body %q is not JSON", method, path, b)
	}
	return resp.StatusCode, m, nil
}

func readToken(t *testing.T, dir, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, id, "token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestDoorsBetweenSandboxes: a killed sandbox's token stops working the moment the
// kill returns (its socket is gone and no other door accepts it), and a door serves
// only /health and /proxy: nothing of the API (audit, logs, credentials, other
// sandboxes) is reachable through it, even with a valid token.
func TestDoorsBetweenSandboxes(t *testing.T) { dockertest.ForEachRuntime(t, testDoorsBetweenSandboxes) }

func testDoorsBetweenSandboxes(t *testing.T, rt dockertest.Runtime) {
	requireDocker(t)
	up := newUpstream(t)
	cfg := containerConfig(t, up)
	cfg.Containers.KillOnShutdown = true // nothing outlives the test, even on failure
	cfg.Containers.StopGrace = 0
	useRuntime(cfg, rt)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	var ids []string
	for _, task := range []string{"a", "b"} {
		info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: task, Command: []string{"sh", "-c", "echo secret-output-of-" + task + "; sleep 300"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.ContainerID)
		t.Cleanup(func() { c.Kill(context.Background(), info.ContainerID) })
	}
	a, b := ids[0], ids[1]
	sockA := filepath.Join(cfg.Containers.ProxiesDir, a, "proxy.sock")
	sockB := filepath.Join(cfg.Containers.ProxiesDir, b, "proxy.sock")
	tokA, tokB := readToken(t, cfg.Containers.ProxiesDir, a), readToken(t, cfg.Containers.ProxiesDir, b)
	proxyBody := `{"url":"https://example.com:` + up.port + `/x"}`

	if st, m, err := doorCall(t, sockA, "POST", "/proxy", tokA, proxyBody); err != nil || st != 200 {
		t.Fatalf("A's own token on A's door: %d %v %v", st, m, err)
	}
	if st, m, err := doorCall(t, sockB, "POST", "/proxy", tokA, proxyBody); err != nil || st != 401 || m["code"] != api.CodeUnauthorized {
		t.Errorf("A's token on B's door: %d %v %v", st, m, err)
	}

	t.Run("door routes", func(t *testing.T) {
		for _, tc := range []struct{ method, path string }{
			{"GET", "/audit"},
			{"GET", "/audit/stream"},
			{"GET", "/containers"},
			{"GET", "/containers/" + a},
			{"GET", "/containers/" + a + "/logs"},
			{"DELETE", "/containers/" + a},
			{"GET", "/credentials"},
			{"GET", "/tools"},
			{"POST", "/execute"},
			{"GET", "/metrics"},
			{"GET", "/openapi.json"},
			{"GET", "/proxy/../audit"},
			{"GET", "/%2e%2e/audit"},
		} {
			st, m, err := doorCall(t, sockB, tc.method, tc.path, tokB, "")
			if err != nil {
				t.Fatal(err)
			}
			if st != 404 || m["code"] != api.CodeNotFound {
				t.Errorf("%s %s on B's door = %d %v, want 404 not_found", tc.method, tc.path, st, m)
			}
			if s := fmt.Sprint(m); strings.Contains(s, "secret-output-of-") || strings.Contains(s, tokA) {
				t.Errorf("%s %s on B's door shows another sandbox's data: %v", tc.method, tc.path, m)
			}
		}
		// /health names only the door's own sandbox.
		st, m, err := doorCall(t, sockB, "GET", "/health", "", "")
		if err != nil || st != 200 || m["container_id"] != b || len(m) != 2 {
			t.Errorf("B's /health = %d %v %v", st, m, err)
		}
	})

	k, err := c.Kill(ctx, a)
	if err != nil || k.Status != api.ContainerStatusKilled {
		t.Fatalf("kill A: %+v %v", k, err)
	}
	// At once: no retry, no waiting.
	if _, err := os.Lstat(sockA); !os.IsNotExist(err) {
		t.Errorf("A's socket still exists after the kill returned: %v", err)
	}
	if conn, err := net.Dial("unix", sockA); err == nil {
		conn.Close()
		t.Error("A's door still accepts connections after the kill returned")
	}
	if st, m, err := doorCall(t, sockB, "POST", "/proxy", tokA, proxyBody); err != nil || st != 401 {
		t.Errorf("the killed sandbox's token on B's door: %d %v %v", st, m, err)
	}
	// A new sandbox's door does not accept it either.
	cInfo, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "c", Command: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(context.Background(), cInfo.ContainerID) })
	sockC := filepath.Join(cfg.Containers.ProxiesDir, cInfo.ContainerID, "proxy.sock")
	if st, m, err := doorCall(t, sockC, "POST", "/proxy", tokA, proxyBody); err != nil || st != 401 {
		t.Errorf("the killed sandbox's token on a new door: %d %v %v", st, m, err)
	}
	if st, _, err := doorCall(t, sockB, "POST", "/proxy", tokB, proxyBody); err != nil || st != 200 {
		t.Errorf("B's own token after A was killed: %d %v", st, err)
	}
}

// TestContainerRemovedBehindOurBackIsLost: a container removed with the Engine API,
// not through clawbox, ends as lost, its door and socket directory are removed, and
// its token stops working.
func TestContainerRemovedBehindOurBackIsLost(t *testing.T) {
	requireDocker(t)
	cfg := testConfig(t)
	cfg.Containers.KillOnShutdown = true // nothing outlives the test, even on failure
	cfg.Containers.AllowedImages = []string{"clawbox-test/"}
	cfg.Containers.DefaultImage = testImage
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "vanish", Command: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(context.Background(), info.ContainerID) })
	dir := filepath.Join(cfg.Containers.ProxiesDir, info.ContainerID)
	tok := readToken(t, cfg.Containers.ProxiesDir, info.ContainerID)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.ContainerRemove(ctx, info.ContainerID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	final := waitFinal(t, c, info.ContainerID)
	if final.Status != api.ContainerStatusLost {
		t.Fatalf("status %s, want lost", final.Status)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("socket directory of the lost sandbox: %v", err)
	}
	other, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "next", Command: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(context.Background(), other.ContainerID) })
	if st, _, err := doorCall(t, filepath.Join(cfg.Containers.ProxiesDir, other.ContainerID, "proxy.sock"), "POST", "/proxy", tok, `{"url":"https://example.com/"}`); err != nil || st != 401 {
		t.Errorf("the lost sandbox's token on another door: %d %v", st, err)
	}
	k, err := c.Kill(ctx, info.ContainerID)
	if err != nil || k.Status != api.ContainerStatusLost {
		t.Errorf("DELETE of the lost sandbox: %+v %v", k, err)
	}
}
