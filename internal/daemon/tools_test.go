package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/poll"
	"github.com/clawbox/clawbox/internal/wasm/exampletools"
)

// wasmCache is one compilation cache for the package's tests, so each example tool
// is compiled once per test run rather than once per server.
var (
	wasmCacheOnce sync.Once
	wasmCachePath string
)

func wasmCache() string {
	wasmCacheOnce.Do(func() {
		d, err := os.MkdirTemp("", "cbcache")
		if err != nil {
			panic(err)
		}
		wasmCachePath = d
	})
	return wasmCachePath
}

// wasmCacheDir returns the cache directory if a test created it (TestMain removes it).
func wasmCacheDir() (string, bool) { return wasmCachePath, wasmCachePath != "" }

// installTools copies the named example tools into cfg's tool directory.
func installTools(t *testing.T, cfg *config.Config, names ...string) {
	t.Helper()
	cfg.Sandbox.CacheDir = wasmCache()
	for _, n := range names {
		mod, err := exampletools.Module(n)
		if err != nil {
			t.Fatal(err)
		}
		man, err := exampletools.Manifest(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Sandbox.ToolDir, n+".wasm"), mod, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Sandbox.ToolDir, n+".json"), man, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestToolsEndToEnd: tools run over the API; http_request reaches a loopback
// upstream only through the gateway with the tool's own policy and credentials;
// output is redacted; every execution is audited.
func TestToolsEndToEnd(t *testing.T) {
	up := newUpstream(t)
	cfg := containerConfig(t, up) // upstream reachable as example.com via proxy.hosts
	installTools(t, cfg, "echo", "http_request")
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()
	waitToolsLoaded(t, c, 2)

	res, err := c.Execute(ctx, api.ExecuteRequest{Tool: "echo", Params: json.RawMessage(`{"hello":"world"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Output), `"hello":"world"`) || res.Metadata.FuelConsumed != 0 {
		t.Errorf("echo = %s", res.Output)
	}
	tools, err := c.Tools(ctx)
	if err != nil || len(tools) != 2 {
		t.Fatalf("tools = %+v %v", tools, err)
	}

	// The example manifest allows no network: refused by policy inside the tool.
	base := "https://example.com:" + up.port
	_, err = c.Execute(ctx, api.ExecuteRequest{Tool: "http_request", Params: json.RawMessage(`{"url":"` + base + `/api/x"}`)})
	if !isBlockedToolError(err) {
		t.Errorf("http_request without network: %v", err)
	}

	// Register a manifest that allows the upstream and makes a credential available.
	const secret = "ghp_0123456789abcdefghijklmnopqrstuvwxyz"
	if _, err := c.PutCredential(ctx, "GH", api.PutCredentialRequest{Value: secret, Host: "example.com", Port: mustAtoi(t, up.port)}); err != nil {
		t.Fatal(err)
	}
	man := api.ToolManifest{
		Tool:        api.ToolMeta{Name: "http_request", Description: "test", Version: "0.2.0"},
		Network:     &api.ToolNetworkConfig{Allowlist: []string{base + "/api/"}},
		Credentials: &api.ToolCredentialConfig{Available: []string{"GH"}},
	}
	if _, err := c.RegisterTool(ctx, man); err != nil {
		t.Fatal(err)
	}
	res, err = c.Execute(ctx, api.ExecuteRequest{Tool: "http_request", Params: json.RawMessage(`{"url":"` + base + `/api/x"}`)})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Output)
	if !strings.Contains(out, "200") || !strings.Contains(out, "path=/api/x") || !strings.Contains(out, "[REDACTED]") || strings.Contains(out, secret) {
		t.Errorf("allowed http_request = %s", out)
	}
	if seen := up.seen(); len(seen) != 1 || seen[0] != "Bearer "+secret {
		t.Errorf("upstream saw %q, want the injected credential once", seen)
	}
	// A request may narrow the tool's policy, never widen it.
	_, err = c.Execute(ctx, api.ExecuteRequest{Tool: "http_request", Params: json.RawMessage(`{"url":"` + base + `/api/x"}`),
		Capabilities: &api.ExecuteCapabilities{Network: &api.ExecuteNetwork{Allowlist: []string{"https://other.example/"}}}})
	if !isBlockedToolError(err) {
		t.Errorf("narrowed request: %v", err)
	}

	// The tool's own output is redacted too.
	res, err = c.Execute(ctx, api.ExecuteRequest{Tool: "echo", Params: json.RawMessage(`{"token":"` + secret + `"}`)})
	if err != nil || strings.Contains(string(res.Output), secret) || res.Metadata.Sanitization.IssuesFound == 0 {
		t.Errorf("echo of a secret = %s (issues %d) %v", res.Output, res.Metadata.Sanitization.IssuesFound, err)
	}
	if !json.Valid(res.Output) {
		t.Errorf("redacted output is not JSON: %s", res.Output)
	}

	_, err = c.Execute(ctx, api.ExecuteRequest{Tool: "no_such_tool"})
	if e, ok := api.AsError(err); !ok || e.Code != api.CodeToolNotFound {
		t.Errorf("unknown tool: %v", err)
	}
	pc, err := c.PolicyCheck(ctx, api.PolicyCheckRequest{Tool: "http_request", URL: base + "/api/y"})
	if err != nil || !pc.Allowed || pc.Policy != "tool http_request" {
		t.Errorf("policy check for the tool = %+v %v", pc, err)
	}

	// Audit: executions and the tool's requests, without the value.
	var recs []api.AuditRecord
	poll.Until(t, poll.Server, "6 audit records of http_request", func() (bool, error) {
		var err error
		recs, err = c.Audit(ctx, client.AuditQuery{Tool: "http_request"})
		if err != nil {
			return false, err
		}
		return len(recs) >= 6, fmt.Errorf("%d records", len(recs))
	})
	kinds := map[string]int{}
	for _, r := range recs {
		kinds[string(r.Kind)+"/"+string(r.Decision)]++
		if strings.Contains(fmt.Sprint(r), secret) {
			t.Errorf("audit record holds the secret: %+v", r)
		}
	}
	if kinds["execution/"] != 3 || kinds["request/allowed"] != 1 || kinds["request/blocked"] != 2 {
		t.Errorf("audit for http_request: %v", kinds)
	}
	all, _ := c.Audit(ctx, client.AuditQuery{Kind: "execution"})
	var failed bool
	for _, r := range all {
		if r.Tool == "no_such_tool" && r.Event == "failed" && strings.Contains(r.Error, "tool_not_found") {
			failed = true
		}
	}
	if !failed {
		t.Error("a failed execution was not audited")
	}

	// Metric labels stay bounded: an unknown tool is "unknown".
	resp, err := http.Get(addrs[0] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `clawbox_wasm_executions_total{status="error",tool="unknown"} 1`) || strings.Contains(string(body), "no_such_tool") {
		t.Errorf("metrics for an unknown tool:\n%s", grepLines(string(body), "clawbox_wasm_executions_total"))
	}
}

// isBlockedToolError reports whether err is a tool failure carrying the gateway's
// blocked_by_policy code.
func isBlockedToolError(err error) bool {
	e, ok := api.AsError(err)
	if !ok || e.Code != api.CodeToolFailed {
		return false
	}
	d, _ := e.Details.(map[string]any)
	return d["code"] == api.CodeBlockedByPolicy
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// waitToolsLoaded waits until the server has compiled its n tools: the first
// compile of a Go-built module takes seconds, many more under -race on a loaded
// machine, which is longer than a client's request timeout.
func waitToolsLoaded(t *testing.T, c *client.Client, n int) {
	t.Helper()
	poll.Until(t, poll.Slow, fmt.Sprintf("%d tools to load", n), func() (bool, error) {
		h, err := c.Health(context.Background())
		if err != nil {
			return false, err
		}
		if d, ok := h.Components["wasm_engine"].Detail.(map[string]any); ok && d["tools_loaded"] == float64(n) {
			return true, nil
		}
		return false, fmt.Errorf("health: %+v", h)
	})
}
