package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// TestNetworkToolsReportRefusalsAsToolErrors: the example network tools follow one
// convention. A request the gateway refuses is a failed call (422 tool_failed) whose
// details carry the gateway's code and message, never a success with the refusal in
// its output; a request to an allowed loopback upstream works.
func TestNetworkToolsReportRefusalsAsToolErrors(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<html><body><p>path=%s</p></body></html>", r.URL.Path)
	}))
	t.Cleanup(up.Close)
	base := up.URL // http://127.0.0.1:port

	cfg := testConfig(t)
	cfg.Proxy.AllowPrivateCIDRs = []string{"127.0.0.0/8"}
	installTools(t, cfg, "http_request", "web_fetch")
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()
	waitToolsLoaded(t, c, 2)

	tok, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	// refused posts to /execute itself, to see the status on the wire.
	refused := func(t *testing.T, tool, url string) {
		t.Helper()
		body := `{"tool":"` + tool + `","params":{"url":"` + url + `"}}`
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, addrs[0]+"/execute", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e api.Error
		if err := json.Unmarshal(raw, &e); err != nil || resp.StatusCode != http.StatusUnprocessableEntity || e.Code != api.CodeToolFailed {
			t.Fatalf("%s %s: %d %s, want 422 tool_failed", tool, url, resp.StatusCode, raw)
		}
		d, _ := e.Details.(map[string]any)
		if d["code"] != api.CodeBlockedByPolicy {
			t.Errorf("%s %s: details.code = %v, want %s (details %v)", tool, url, d["code"], api.CodeBlockedByPolicy, d)
		}
		if msg, _ := d["message"].(string); msg == "" || strings.Contains(msg, "host call:") {
			t.Errorf("%s %s: details.message = %q, want the gateway's message", tool, url, msg)
		}
		if !strings.Contains(e.Message, api.CodeBlockedByPolicy) {
			t.Errorf("%s %s: message %q does not name the code", tool, url, e.Message)
		}
	}

	// The shipped manifests allow nothing: both tools are refused, the same way.
	for _, tool := range []string{"http_request", "web_fetch"} {
		t.Run(tool+"/empty allowlist", func(t *testing.T) { refused(t, tool, base+"/x") })
	}

	// Allow the upstream for both; another port on loopback stays refused.
	for _, tool := range []string{"http_request", "web_fetch"} {
		man := api.ToolManifest{
			Tool:    api.ToolMeta{Name: tool, Description: "test", Version: "0.2.0"},
			Network: &api.ToolNetworkConfig{Allowlist: []string{base}},
		}
		if _, err := c.RegisterTool(ctx, man); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range []string{"http_request", "web_fetch"} {
		t.Run(tool+"/not allowed", func(t *testing.T) { refused(t, tool, "http://127.0.0.1:9/x") })
	}

	res, err := c.Execute(ctx, api.ExecuteRequest{Tool: "http_request", Params: json.RawMessage(`{"url":"` + base + `/from-http-request"}`)})
	if err != nil {
		t.Fatalf("allowed http_request: %v", err)
	}
	var hr struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	if err := json.Unmarshal(res.Output, &hr); err != nil || hr.Status != 200 || !strings.Contains(hr.Body, "path=/from-http-request") {
		t.Errorf("allowed http_request = %s (%v)", res.Output, err)
	}

	res, err = c.Execute(ctx, api.ExecuteRequest{Tool: "web_fetch", Params: json.RawMessage(`{"url":"` + base + `/from-web-fetch"}`)})
	if err != nil {
		t.Fatalf("allowed web_fetch: %v", err)
	}
	var wf struct {
		Status  int    `json:"status"`
		Content string `json:"content"`
	}
	if err := json.Unmarshal(res.Output, &wf); err != nil || wf.Status != 200 || wf.Content != "path=/from-web-fetch" {
		t.Errorf("allowed web_fetch = %s (%v)", res.Output, err)
	}
}
