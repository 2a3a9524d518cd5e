package daemon

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/poll"
)

// TestDoorRefusalsFromInsideAContainer: with no token, with another sandbox's
// token, over the rate limit; a redirect comes back as the 3xx itself; a body over the
// cap is marked truncated; and each request is in the audit log.
func TestDoorRefusalsFromInsideAContainer(t *testing.T) {
	dockertest.ForEachRuntime(t, testDoorRefusalsFromInsideAContainer)
}

func testDoorRefusalsFromInsideAContainer(t *testing.T, rt dockertest.Runtime) {
	requireDocker(t)
	up := newUpstream(t)
	up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "https://elsewhere.invalid/", http.StatusFound)
		case "/big":
			w.Write([]byte(strings.Repeat("x", 5000)))
		default:
			fmt.Fprint(w, "ok")
		}
	})
	cfg := containerConfig(t, up)
	cfg.Proxy.MaxResponseBytes = 100
	cfg.Proxy.RateLimit.Burst = 3
	cfg.Proxy.RateLimit.RequestsPerSecond = 0.001
	useRuntime(cfg, rt)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()

	// A first sandbox whose token the second one will try to use.
	other, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "victim", Command: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	otherTok, err := os.ReadFile(filepath.Join(cfg.Containers.ProxiesDir, other.ContainerID, "token"))
	if err != nil {
		t.Fatal(err)
	}
	base := "https://example.com:" + up.port
	script := strings.Join([]string{
		`/agent -token not-a-token -proxy ` + base + `/x`,
		`/agent -token ` + strings.TrimSpace(string(otherTok)) + ` -proxy ` + base + `/x`,
		`/agent -proxy ` + base + `/redirect`,
		`/agent -proxy ` + base + `/big`,
		`/agent -proxy ` + base + `/x`,
		`/agent -proxy ` + base + `/x`,
	}, "; ")
	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "prober", Command: []string{"sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	final := waitFinal(t, c, info.ContainerID)
	logs, _ := c.Logs(ctx, info.ContainerID)
	lines := strings.Split(strings.TrimSpace(logs.Stdout), "\n")
	if final.Status != api.ContainerStatusCompleted || len(lines) != 6 {
		t.Fatalf("%s: stdout:\n%s\nstderr:\n%s", final.Status, logs.Stdout, logs.Stderr)
	}
	checks := []struct {
		name string
		want []string
	}{
		{"no valid token", []string{"401 ", "unauthorized"}},
		{"another sandbox's token", []string{"401 ", "unauthorized"}},
		{"redirect returned", []string{"200 ", `"status":302`, "elsewhere.invalid"}},
		{"truncated", []string{"200 ", `"truncated":true`}},
		{"last token of the burst", []string{"200 ", `"status":200`}},
		{"rate limited", []string{"429 ", "rate_limited"}},
	}
	for i, ck := range checks {
		for _, w := range ck.want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("%s: %q lacks %q", ck.name, lines[i], w)
			}
		}
	}
	// The victim's door still works with its own token: the attempt changed nothing.
	if _, err := c.Container(ctx, other.ContainerID); err != nil {
		t.Fatal(err)
	}

	var recs []api.AuditRecord
	poll.Until(t, poll.Server, "6 request audit records", func() (bool, error) {
		var err error
		recs, err = c.Audit(ctx, client.AuditQuery{ContainerID: info.ContainerID, Kind: "request"})
		if err != nil {
			return false, err
		}
		return len(recs) >= 6, fmt.Errorf("%d records", len(recs))
	})
	got := map[string]int{}
	for _, r := range recs {
		key := string(r.Decision)
		if r.Status != 0 {
			key += fmt.Sprintf("/%d", r.Status)
		}
		got[key]++
	}
	want := map[string]int{"blocked": 2, "allowed/302": 1, "allowed/200": 2, "rate_limited": 1}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("audit: %d records %q, want %d (all: %v)", got[k], k, n, got)
		}
	}
	// Nothing was recorded against the victim.
	if vr, _ := c.Audit(ctx, client.AuditQuery{ContainerID: other.ContainerID, Kind: "request"}); len(vr) != 0 {
		t.Errorf("the victim sandbox has request records: %+v", vr)
	}
	c.Kill(ctx, other.ContainerID)
}
