package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/clawbox/clawbox/client"
)

// TestDiscoveryMatchesSDK: the CLI and the SDK's client.FromEnv find the same server
// with the same token for the same environment and config.
func TestDiscoveryMatchesSDK(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer ts.Close()
	_, port, _ := strings.Cut(strings.TrimPrefix(ts.URL, "http://"), ":")

	write := func(t *testing.T, path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, home string) map[string]string
		token string
	}{
		{"no config, env port, default token file", func(t *testing.T, home string) map[string]string {
			write(t, filepath.Join(home, ".clawbox", "token"), "tok-default\n")
			return map[string]string{"CLAWBOX_PORT": port}
		}, "tok-default"},
		{"config host wildcard, port, relative token file", func(t *testing.T, home string) map[string]string {
			write(t, filepath.Join(home, ".clawbox", "config.toml"), "[server]\nhost = \"0.0.0.0\"\nport = "+port+"\nauth_token_file = \"other\"\n")
			write(t, filepath.Join(home, ".clawbox", "other"), "tok-other")
			return nil
		}, "tok-other"},
		{"CLAWBOX_HOME and inline token, env token wins", func(t *testing.T, home string) map[string]string {
			alt := filepath.Join(home, "alt")
			write(t, filepath.Join(alt, "config.toml"), "[server]\nport = "+port+"\nauth_token = \"inline-token-value\"\n")
			return map[string]string{"CLAWBOX_HOME": alt, "CLAWBOX_AUTH_TOKEN": "env-token-value"}
		}, "env-token-value"},
		{"inline token", func(t *testing.T, home string) map[string]string {
			write(t, filepath.Join(home, ".clawbox", "config.toml"), "[server]\nport = "+port+"\nauth_token = \"inline-token-value\"\n")
			return nil
		}, "inline-token-value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			env := map[string]string{"HOME": home}
			for k, v := range tt.setup(t, home) {
				env[k] = v
			}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			a := &app{env: lookup}
			cliClient, err := a.newClient(true)
			if err != nil {
				t.Fatalf("CLI: %v", err)
			}
			sdkClient, err := client.FromEnvOptions(client.EnvOptions{Lookup: lookup})
			if err != nil {
				t.Fatalf("SDK: %v", err)
			}
			if cliClient.BaseURL() != sdkClient.BaseURL() || cliClient.BaseURL() != ts.URL {
				t.Fatalf("CLI finds %s, SDK %s, server at %s", cliClient.BaseURL(), sdkClient.BaseURL(), ts.URL)
			}
			mu.Lock()
			seen = nil
			mu.Unlock()
			for _, c := range []*client.Client{cliClient, sdkClient} {
				if _, err := c.Health(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 2 || seen[0] != seen[1] || seen[0] != "Bearer "+tt.token {
				t.Fatalf("tokens sent: %q, want Bearer %s twice", seen, tt.token)
			}
		})
	}
}
