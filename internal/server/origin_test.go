package server

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// browserRequest sends a request with exactly the given Host and Origin headers
// ("" leaves Origin out) to the server at base, over addr's connection.
func browserRequest(t *testing.T, client *http.Client, base, path, host, origin string) (int, api.Error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := client.Do(req)
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
	return resp.StatusCode, e
}

func TestHostAndOriginChecks(t *testing.T) {
	s, _ := newTestServer(t, Config{
		AllowedHosts:   []string{"clawbox.internal", "Proxy.Example:8443"},
		AllowedOrigins: []string{"http://localhost:3000", "https://ui.example"},
	})
	ts := start(t, s) // a real TCP listener on 127.0.0.1
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	other := strconv.Itoa(func() int { p, _ := strconv.Atoi(port); return p%60000 + 1 }())

	tests := []struct {
		name, host, origin string
		status             int
		code               string
	}{
		// What the CLI, the SDKs and MCP clients send: no Origin.
		{"SDK", "127.0.0.1:" + port, "", 200, ""},
		{"localhost", "localhost:" + port, "", 200, ""},
		{"localhost upper case", "LOCALHOST:" + port, "", 200, ""},
		{"localhost trailing dot", "localhost.:" + port, "", 200, ""},
		{"no port", "127.0.0.1", "", 200, ""},
		{"other loopback address", "127.0.0.2:" + port, "", 200, ""},
		{"IPv6 loopback", "[::1]:" + port, "", 200, ""},
		{"allowed host, any port", "clawbox.internal:1234", "", 200, ""},
		{"allowed host case", "CLAWBOX.internal", "", 200, ""},
		{"allowed host with its port", "proxy.example:8443", "", 200, ""},

		// DNS rebinding: a page's own name, re-bound to 127.0.0.1.
		{"rebound name", "evil.example:" + port, "", 421, api.CodeHostNotAllowed},
		{"rebound name with its origin", "evil.example:" + port, "http://evil.example:" + port, 421, api.CodeHostNotAllowed},
		{"subdomain of localhost", "a.localhost:" + port, "", 421, api.CodeHostNotAllowed},
		{"allowed host, other port", "proxy.example:9999", "", 421, api.CodeHostNotAllowed},
		{"wrong port", "127.0.0.1:" + other, "", 421, api.CodeHostNotAllowed},
		{"other address", "192.0.2.1:" + port, "", 421, api.CodeHostNotAllowed},
		{"invalid, sent empty", "a b", "", 421, api.CodeHostNotAllowed},
		{"bad port", "localhost:0x50", "", 421, api.CodeHostNotAllowed},

		// Origins.
		{"own origin", "127.0.0.1:" + port, "http://127.0.0.1:" + port, 200, ""},
		{"own origin, case", "localhost:" + port, "HTTP://LocalHost:" + port, 200, ""},
		{"allowed origin", "127.0.0.1:" + port, "http://localhost:3000", 200, ""},
		{"allowed https origin, default port", "127.0.0.1:" + port, "https://ui.example:443", 200, ""},
		{"foreign origin", "127.0.0.1:" + port, "http://evil.example", 403, api.CodeOriginNotAllowed},
		{"same host, other port", "127.0.0.1:" + port, "http://127.0.0.1:" + other, 403, api.CodeOriginNotAllowed},
		{"https of own host", "127.0.0.1:" + port, "https://127.0.0.1:" + port, 403, api.CodeOriginNotAllowed},
		{"null origin", "127.0.0.1:" + port, "null", 403, api.CodeOriginNotAllowed},
		{"origin with a path", "127.0.0.1:" + port, "http://localhost:3000/x", 403, api.CodeOriginNotAllowed},
		{"origin with user info", "127.0.0.1:" + port, "http://localhost:3000@evil.example", 403, api.CodeOriginNotAllowed},
	}
	for _, path := range []string{"/health", "/mcp", "/openapi.json", "/no-such-route"} {
		for _, tc := range tests {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				status, e := browserRequest(t, ts.Client(), ts.URL, path, tc.host, tc.origin)
				if tc.status != 200 {
					if status != tc.status || e.Code != tc.code {
						t.Fatalf("status %d code %q, want %d %s", status, e.Code, tc.status, tc.code)
					}
					return
				}
				if status == api.Errorf(api.CodeHostNotAllowed, "").Status() || e.Code == api.CodeHostNotAllowed || e.Code == api.CodeOriginNotAllowed {
					t.Fatalf("refused: %d %+v", status, e)
				}
			})
		}
	}
	// Two Origin headers are refused.
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/health", nil)
	req.Header.Add("Origin", "http://localhost:3000")
	req.Header.Add("Origin", "http://evil.example")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("two Origin headers: status %d, want 403", resp.StatusCode)
	}
}

// On an IPv6 listener the address the connection arrived at is accepted as the Host.
func TestHostCheckIPv6Listener(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here (%v): the IPv6 Host cases are covered by TestHostAndOriginChecks", err)
	}
	s, _ := newTestServer(t, Config{})
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for host, want := range map[string]int{
		"[::1]:" + port:             200,
		"[0:0:0:0:0:0:0:1]:" + port: 200,
		"localhost:" + port:         200,
		"[fe80::1]:" + port:         421,
		"evil.example:" + port:      421,
	} {
		status, e := browserRequest(t, ts.Client(), ts.URL, "/health", host, "")
		if (want == 200) != (status == 200) {
			t.Errorf("Host %s: status %d %+v, want %d", host, status, e, want)
		}
	}
}

// The Unix socket answers any Host (no browser reaches it), but still checks Origin.
func TestUnixSocketHostAndOrigin(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newTestServer(t, Config{})
	hs := &http.Server{Handler: s.Handler()}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	t.Cleanup(client.CloseIdleConnections)
	if status, e := browserRequest(t, client, "http://clawbox", "/health", "clawbox", ""); status != 200 {
		t.Fatalf("unix socket with Host clawbox: %d %+v", status, e)
	}
	if status, e := browserRequest(t, client, "http://clawbox", "/health", "clawbox", "http://evil.example"); status != 403 || e.Code != api.CodeOriginNotAllowed {
		t.Fatalf("unix socket with a foreign Origin: %d %+v", status, e)
	}
}

func TestBrowserGuardConfig(t *testing.T) {
	for _, bad := range [][2][]string{
		{{"a b"}, nil},
		{{"host:99999"}, nil},
		{{"[::1"}, nil},
		{nil, {"localhost:3000"}},
		{nil, {"ftp://x"}},
		{nil, {"http://x/path"}},
	} {
		if _, err := New(Config{Token: testToken, AllowedHosts: bad[0], AllowedOrigins: bad[1]}); err == nil {
			t.Errorf("New accepted hosts %q origins %q", bad[0], bad[1])
		}
	}
	if _, err := New(Config{Token: testToken, AllowedHosts: []string{"::1", "[::1]:9800", "Example.com."}}); err != nil {
		t.Fatal(err)
	}
}
