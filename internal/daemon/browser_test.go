package daemon

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// A DNS-rebinding page (its own name in Host) and a cross-site page (a foreign
// Origin) are refused on every route of the real server, /mcp included; the names
// and origins of server.allowed_hosts and server.allowed_origins are not.
func TestBrowserRequestsRefused(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.AllowedHosts = []string{"clawbox.internal"}
	cfg.Server.AllowedOrigins = []string{"https://ui.example"}
	addrs, _ := runDaemon(t, cfg)
	u, _ := url.Parse(addrs[0])
	tok, _ := cfg.Token()
	mcpBody := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	send := func(method, path, host, origin string) (int, string) {
		t.Helper()
		var body *strings.Reader
		if method == http.MethodPost {
			body = strings.NewReader(mcpBody)
		} else {
			body = strings.NewReader("")
		}
		req, _ := http.NewRequest(method, addrs[0]+path, body)
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e api.Error
		if resp.StatusCode >= 400 {
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("status %d without a JSON error body: %v", resp.StatusCode, err)
			}
		}
		return resp.StatusCode, e.Code
	}
	port := u.Port()
	for _, tc := range []struct {
		name, method, path, host, origin string
		status                           int
		code                             string
	}{
		{"rebound health", "GET", "/health", "evil.example:" + port, "", 421, api.CodeHostNotAllowed},
		{"rebound tools", "GET", "/tools", "evil.example:" + port, "", 421, api.CodeHostNotAllowed},
		{"rebound mcp", "POST", "/mcp", "evil.example:" + port, "http://evil.example:" + port, 421, api.CodeHostNotAllowed},
		{"cross-site mcp", "POST", "/mcp", u.Host, "http://evil.example", 403, api.CodeOriginNotAllowed},
		{"cross-site tools", "GET", "/tools", u.Host, "http://evil.example", 403, api.CodeOriginNotAllowed},
		{"SDK", "GET", "/tools", u.Host, "", 200, ""},
		{"localhost", "GET", "/tools", "localhost:" + port, "", 200, ""},
		{"allowed host", "GET", "/tools", "clawbox.internal", "", 200, ""},
		{"own origin mcp", "POST", "/mcp", u.Host, "http://" + u.Host, 200, ""},
		{"allowed origin mcp", "POST", "/mcp", u.Host, "https://ui.example", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code := send(tc.method, tc.path, tc.host, tc.origin)
			if status != tc.status || code != tc.code {
				t.Fatalf("%s %s Host %s Origin %q: %d %q, want %d %q", tc.method, tc.path, tc.host, tc.origin, status, code, tc.status, tc.code)
			}
		})
	}
}
