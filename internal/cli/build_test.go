package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/internal/testkit"
)

// TestBuildWaitsForTheServer runs the README's line against a real server started a
// moment before (its initial load of the example tools still compiling):
// `new-tool greet && build ./greet && run greet` must work without a pause. Before
// build waited, run answered tool_not_found; and a module written during the
// server's initial load was never loaded (its watch started after the scan).
func TestBuildWaitsForTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds WASM tools and starts a server")
	}
	cache := shortTempDir(t)
	env, port := serveDir(t, func(cfg string) string {
		return regexp.MustCompile(`(?m)^cache_dir = .*$`).ReplaceAllString(cfg, `cache_dir = "`+cache+`"`)
	}, func(dir string) {
		// Keep two of the example tools: compiling each takes seconds under -race.
		for _, n := range []string{"http_request", "json_fmt", "web_fetch"} {
			os.Remove(filepath.Join(dir, "tools", n+".wasm"))
			os.Remove(filepath.Join(dir, "tools", n+".json"))
		}
	})
	work := t.TempDir()
	ctx := context.Background()
	if r := clawbox(t, ctx, env, "new-tool", "--out", work, "greet"); r.code != 0 {
		t.Fatalf("new-tool: %+v", r)
	}
	src := filepath.Join(work, "greet")

	r := clawbox(t, ctx, env, "build", "--port", port, src)
	if r.code != 0 || !strings.Contains(r.stdout, "the server loaded greet") {
		t.Fatalf("build: %+v", r)
	}
	r = clawbox(t, ctx, env, "run", "--port", port, "greet", `{"name":"you"}`)
	if r.code != 0 || !strings.Contains(r.stdout, `"greeting": "Hello, you!"`) {
		t.Fatalf("run right after build: %+v", r)
	}

	// A new build of a loaded tool: the older loaded version does not count.
	main := filepath.Join(src, "main.go")
	b, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(main, []byte(strings.Replace(string(b), `"Hello, "`, `"Bonjour, "`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r = clawbox(t, ctx, env, "build", "--port", port, src)
	if r.code != 0 || !strings.Contains(r.stdout, "the server loaded greet") {
		t.Fatalf("second build: %+v", r)
	}
	r = clawbox(t, ctx, env, "run", "--port", port, "greet", `{"name":"you"}`)
	if r.code != 0 || !strings.Contains(r.stdout, `"greeting": "Bonjour, you!"`) {
		t.Fatalf("run after the second build ran the old module: %+v", r)
	}

	// A module the server refuses: its manifest's memory is below what it needs at
	// start. build reports the server's message and code, and exits 1.
	if r := clawbox(t, ctx, env, "new-tool", "--out", work, "toosmall"); r.code != 0 {
		t.Fatalf("new-tool: %+v", r)
	}
	mf := filepath.Join(work, "toosmall", "manifest.json")
	b, err = os.ReadFile(mf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mf, []byte(strings.Replace(string(b), `"default_timeout_ms": 10000`, `"default_timeout_ms": 10000, "default_memory_mb": 1`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r = clawbox(t, ctx, env, "build", "--port", port, filepath.Join(work, "toosmall"))
	if r.code != ExitError || !strings.Contains(r.stderr, "the server could not load toosmall") ||
		!strings.Contains(r.stderr, "memory") || !strings.Contains(r.stderr, "(module_limit_exceeded)") {
		t.Fatalf("build of a module the server cannot load: %+v", r)
	}

	// Installed elsewhere than the server's tool directory: nothing to wait for. (A
	// build identical to the loaded module would be reported loaded: it is.)
	b, err = os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(main, []byte(strings.Replace(string(b), `"Bonjour, "`, `"Hallo, "`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	r = clawbox(t, ctx, env, "build", "--port", port, "--tool-dir", other, src)
	if r.code != 0 || !strings.Contains(r.stdout, "does not load tools from "+other) {
		t.Fatalf("build into another directory: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(other, "greet.wasm")); err != nil {
		t.Fatal(err)
	}

	// No server: the tool is built and installed, build says so and exits 0.
	nobody := strconv.Itoa(testkit.FreePort(t))
	r = clawbox(t, ctx, env, "build", "--port", nobody, "--tool-dir", other, src)
	if r.code != 0 || !strings.Contains(r.stdout, "no clawbox server is reachable") || !strings.Contains(r.stdout, "installed greet") {
		t.Fatalf("build with no server: %+v", r)
	}
	home := map[string]string{"HOME": t.TempDir(), "CLAWBOX_HOME": filepath.Join(t.TempDir(), "none")}
	r = clawbox(t, ctx, home, "build", "--port", nobody, src)
	if r.code != 0 || !strings.Contains(r.stdout, "no clawbox server is reachable") {
		t.Fatalf("build with no config and no server: %+v", r)
	}
	if m := regexp.MustCompile(`installed greet into (\S+)`).FindStringSubmatch(r.stdout); m == nil {
		t.Errorf("build with no config: %+v", r)
	} else if _, err := os.Stat(filepath.Join(m[1], "greet.wasm")); err != nil {
		t.Errorf("build with no config: %v", err)
	}

	// A server answers, but no token is known: the build stands, build says why
	// it does not wait, and exits 0.
	r = clawbox(t, ctx, home, "build", "--port", port, "--tool-dir", other, src)
	if r.code != 0 || !strings.Contains(r.stdout, "installed greet") || !strings.Contains(r.stdout, "not waiting for the server to load the tools: no API token") {
		t.Fatalf("build with a server but no token: %+v", r)
	}

	// --wait=false returns after installing, without asking the server.
	r = clawbox(t, ctx, env, "build", "--port", nobody, "--wait=false", "--tool-dir", other, src)
	if r.code != 0 || strings.Contains(r.stdout, "reachable") {
		t.Fatalf("build --wait=false: %+v", r)
	}
}
