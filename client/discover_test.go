package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromEnvDiscovery(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, ".clawbox")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// No config, no token file: a clear error naming where it looked.
	_, err := FromEnvOptions(EnvOptions{Lookup: envMap(map[string]string{"HOME": home})})
	if err == nil || !strings.Contains(err.Error(), "no API token") || !strings.Contains(err.Error(), EnvAuthToken) ||
		!strings.Contains(err.Error(), filepath.Join(dir, "config.toml")) || !strings.Contains(err.Error(), filepath.Join(dir, "token")) {
		t.Fatalf("no token: %v", err)
	}
	// Defaults and the default token file.
	write("token", "tok-file\n")
	c, err := FromEnvOptions(EnvOptions{Lookup: envMap(map[string]string{"HOME": home})})
	if err != nil || c.BaseURL() != "http://127.0.0.1:9800" || c.token != "tok-file" {
		t.Fatalf("defaults: %v %+v", err, c)
	}
	// The config's [server] (other tables ignored), a relative token file.
	write("config.toml", "[server]\nhost = \"0.0.0.0\"\nport = 9911\nauth_token_file = \"other\"\n[sandbox]\nfuel_limit = 1\n")
	write("other", "tok-other")
	c, err = FromEnvOptions(EnvOptions{Lookup: envMap(map[string]string{"HOME": home})})
	if err != nil || c.BaseURL() != "http://127.0.0.1:9911" || c.token != "tok-other" {
		t.Fatalf("config: %v %+v", err, c)
	}
	// CLAWBOX_HOME, and the environment over the file.
	alt := t.TempDir()
	if err := os.WriteFile(filepath.Join(alt, "config.toml"), []byte("[server]\nhost = \"::\"\nauth_token = \"inline\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = FromEnvOptions(EnvOptions{Lookup: envMap(map[string]string{"HOME": home, EnvHome: alt})})
	if err != nil || c.BaseURL() != "http://[::1]:9800" || c.token != "inline" {
		t.Fatalf("CLAWBOX_HOME: %v %+v", err, c)
	}
	c, err = FromEnvOptions(EnvOptions{Lookup: envMap(map[string]string{"HOME": home, EnvHost: "localhost", EnvPort: "1234", EnvAuthToken: "from-env"})})
	if err != nil || c.BaseURL() != "http://localhost:1234" || c.token != "from-env" {
		t.Fatalf("env: %v %+v", err, c)
	}
	if _, err := FromEnvOptions(EnvOptions{Lookup: envMap(map[string]string{"HOME": home, EnvPort: "nine"})}); err == nil || !strings.Contains(err.Error(), EnvPort) {
		t.Fatalf("bad port: %v", err)
	}
	// A broken config file is an error, and so is a named file that is missing.
	write("config.toml", "[server\n")
	if _, err := FromEnvOptions(EnvOptions{Lookup: envMap(map[string]string{"HOME": home})}); err == nil || !strings.Contains(err.Error(), "config.toml") {
		t.Fatalf("broken config: %v", err)
	}
	if _, err := FromEnvOptions(EnvOptions{Lookup: envMap(map[string]string{"HOME": home}), ConfigFile: filepath.Join(home, "none.toml")}); err == nil {
		t.Fatal("a missing named config file was accepted")
	}
}

// FromEnv's client talks to the server it found, with the token it found.
func TestFromEnvTalksToTheServer(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"token","code":"auth_required"}`))
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer ts.Close()
	host, port, _ := strings.Cut(strings.TrimPrefix(ts.URL, "http://"), ":")
	home := t.TempDir()
	c, err := FromEnvOptions(EnvOptions{Lookup: envMap(map[string]string{"HOME": home, EnvHost: host, EnvPort: port, EnvAuthToken: "s3cret"})})
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Health(context.Background())
	if err != nil || h.Status != "ok" {
		t.Fatalf("health: %v %+v", err, h)
	}
}

func TestServerURL(t *testing.T) {
	for in, want := range map[string]string{"": "http://127.0.0.1:1", "0.0.0.0": "http://127.0.0.1:1", "::": "http://[::1]:1",
		"[::]": "http://[::1]:1", "::1": "http://[::1]:1", "[fe80::1]": "http://[fe80::1]:1", "example.test": "http://example.test:1"} {
		if got := ServerURL(in, 1); got != want {
			t.Errorf("ServerURL(%q) = %s, want %s", in, got, want)
		}
	}
}
