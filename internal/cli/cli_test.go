package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/poll"

	"github.com/clawbox/clawbox/internal/testkit"
)

type result struct {
	code           int
	stdout, stderr string
}

// clawbox runs the real command line in-process with an isolated environment.
func clawbox(t *testing.T, ctx context.Context, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := runWithEnv(ctx, args, env, &out, &errb)
	return result{code, out.String(), errb.String()}
}

func TestServeFirstRunThenClientCommands(t *testing.T) {
	home := shortTempDir(t)
	env := map[string]string{"HOME": home}
	port := strconv.Itoa(testkit.FreePort(t))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	var serveErr bytes.Buffer
	go func() {
		var out bytes.Buffer
		code := runWithEnv(ctx, []string{"serve", "--port", port}, env, &out, &syncWriter{w: &serveErr})
		done <- result{code: code, stdout: out.String()}
	}()
	t.Cleanup(func() { cancel(); <-done })

	// Wait until the server answers. Until then (even before the first serve has
	// written its config) health says "not reachable", nothing else.
	poll.Until(t, poll.Server, "the first serve to answer health", func() (bool, error) {
		r := clawbox(t, context.Background(), env, "health", "--port", port)
		if r.code == 0 {
			return true, nil
		}
		if r.code != ExitUnreachable {
			t.Fatalf("health before the server answers: %+v", r)
		}
		select {
		case res := <-done:
			done <- res
			t.Fatalf("serve exited %d before it answered: %s", res.code, serveErr.String())
		default:
		}
		return false, fmt.Errorf("health: %+v", r)
	})
	dir := filepath.Join(home, ".clawbox")
	for _, f := range []string{"config.toml", "token", "master.key", "state.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("first serve did not initialise %s: %v", f, err)
		}
	}

	r := clawbox(t, context.Background(), env, "status", "--port", port)
	if r.code != 0 || !strings.Contains(r.stdout, "Status:") || !strings.Contains(r.stdout, "store:") {
		t.Errorf("status: %+v", r)
	}
	r = clawbox(t, context.Background(), env, "status", "--port", port, "--json")
	var h map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil || h["status"] != "ok" || h["version"] == nil {
		t.Errorf("status --json: %+v (%v)", r, err)
	}
	// A wrong token is not accepted: details are withheld.
	r = clawbox(t, context.Background(), env, "status", "--port", port, "--token", "wrong")
	if r.code != 0 || !strings.Contains(r.stdout, "not accepted") {
		t.Errorf("status with a wrong token: %+v", r)
	}
	// The token comes from the environment too.
	tok, _ := os.ReadFile(filepath.Join(dir, "token"))
	envTok := map[string]string{"HOME": t.TempDir(), "CLAWBOX_AUTH_TOKEN": strings.TrimSpace(string(tok)), "CLAWBOX_PORT": port}
	r = clawbox(t, context.Background(), envTok, "status")
	if r.code != 0 || !strings.Contains(r.stdout, "Version:") {
		t.Errorf("status with CLAWBOX_AUTH_TOKEN and CLAWBOX_PORT: %+v", r)
	}

	cancel()
	res := <-done
	done <- res
	if res.code != 0 {
		t.Errorf("serve exited %d: %s", res.code, serveErr.String())
	}
	if !strings.Contains(serveErr.String(), "First run") || !strings.Contains(serveErr.String(), filepath.Join(dir, "token")) {
		t.Errorf("serve did not say where the token is: %s", serveErr.String())
	}
}

func TestExitCodes(t *testing.T) {
	home := t.TempDir()
	env := map[string]string{"HOME": home}
	port := strconv.Itoa(testkit.FreePort(t))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(up.Close)
	listening := strconv.Itoa(up.Listener.Addr().(*net.TCPAddr).Port)
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown command", []string{"frobnicate"}, ExitUsage, "unknown command"},
		{"unknown flag", []string{"status", "--frob"}, ExitUsage, "unknown flag"},
		{"extra argument", []string{"health", "x"}, ExitUsage, "takes no arguments"},
		{"unreachable", []string{"health", "--port", port}, ExitUnreachable, "cannot reach"},
		// No config and no token: the documented defaults, then exit 3 saying to start a server.
		{"status without config", []string{"status", "--port", port}, ExitUnreachable, "clawbox serve"},
		{"ps without config", []string{"ps", "--port", port}, ExitUnreachable, "clawbox serve"},
		{"tools list without config", []string{"tools", "list", "--port", port}, ExitUnreachable, "clawbox serve"},
		// A server answers but no token is known: say so.
		{"status without token", []string{"status", "--port", listening}, ExitError, "no API token"},
		{"version", []string{"version"}, ExitOK, ""},
		{"bad config", []string{"serve", "--config", filepath.Join(home, "missing.toml")}, ExitError, "missing.toml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := clawbox(t, context.Background(), env, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
				t.Errorf("exit %d stderr %q; want %d containing %q", r.code, r.stderr, tc.code, tc.msg)
			}
			if tc.name == "version" && (!strings.HasPrefix(r.stdout, "clawbox ") || !strings.Contains(r.stdout, "(commit ") || !strings.Contains(r.stdout, " go1.")) {
				t.Errorf("version printed %q; want version, commit and Go version", r.stdout)
			}
		})
	}
}

func TestInitCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cb")
	env := map[string]string{"HOME": t.TempDir()}
	r := clawbox(t, context.Background(), env, "init", "--dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "Initialized clawbox in "+dir) || !strings.Contains(r.stdout, "created  token") {
		t.Fatalf("init: %+v", r)
	}
	r = clawbox(t, context.Background(), env, "init", "--dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "already initialized") || strings.Contains(r.stdout, "created") {
		t.Fatalf("second init: %+v", r)
	}
	r = clawbox(t, context.Background(), env, "init", "--dir", dir, "--json")
	var out struct {
		Items []struct {
			Path    string `json:"path"`
			Created bool   `json:"created"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Items) == 0 {
		t.Fatalf("init --json: %+v %v", r, err)
	}
	for _, it := range out.Items {
		if it.Created {
			t.Errorf("third init created %s", it.Path)
		}
	}
}

// serveDir initialises dir, lets edit change its config, serves it, and returns the
// environment and port for client commands.
// dockerServe skips without a Docker daemon, builds a test image (removed at
// cleanup) and starts a server (serveDir) that allows only test images and
// compiles into a cache of its own. prepare is serveDir's.
func dockerServe(t *testing.T, prepare ...func(dir string)) (env map[string]string, port, image string) {
	t.Helper()
	if err := dockertest.Ping(); err != nil {
		t.Skipf("Docker daemon not reachable (%v): start dockerd or set DOCKER_HOST to run this test", err)
	}
	image = dockertest.RandomTag()
	bctx, bcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer bcancel()
	if err := dockertest.BuildImage(bctx, image); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dockertest.RemoveImage(image) })
	cache, err := os.MkdirTemp("", "cbcache")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(cache) })
	env, port = serveDir(t, func(cfg string) string {
		cfg = strings.Replace(cfg, `allowed_images = ["alpine", "debian", "ubuntu", "python", "node", "clawbox/"]`,
			`allowed_images = ["clawbox-test/"]`, 1)
		return regexp.MustCompile(`(?m)^cache_dir = .*$`).ReplaceAllString(cfg, `cache_dir = "`+cache+`"`)
	}, prepare...)
	return env, port, image
}

func serveDir(t *testing.T, edit func(cfg string) string, prepare ...func(dir string)) (map[string]string, string) {
	t.Helper()
	dir := filepath.Join(shortTempDir(t), "cb")
	env := map[string]string{"HOME": t.TempDir(), "CLAWBOX_HOME": dir}
	if r := clawbox(t, context.Background(), env, "init"); r.code != 0 {
		t.Fatalf("init: %+v", r)
	}
	// Compiling a tool under -race on a loaded 2-core machine can take longer than
	// the default two minutes; the tests wait for the load with poll.Slow instead.
	raise := func(cfg string) string {
		return strings.Replace(cfg, "compile_timeout_ms = 120000", "compile_timeout_ms = 600000", 1)
	}
	{
		p := filepath.Join(dir, "config.toml")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg := raise(string(b))
		if !strings.Contains(cfg, "compile_timeout_ms = 600000") {
			t.Fatal("the default config no longer has compile_timeout_ms = 120000")
		}
		if edit != nil {
			cfg = edit(cfg)
		}
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range prepare {
		p(dir)
	}
	port := strconv.Itoa(testkit.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- runWithEnv(ctx, []string{"serve", "--port", port}, env, io.Discard, io.Discard)
	}()
	t.Cleanup(func() { cancel(); <-done })
	poll.Until(t, poll.Server, "serve to answer health", func() (bool, error) {
		r := clawbox(t, context.Background(), env, "health", "--port", port)
		if r.code == 0 {
			return true, nil
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("serve exited %d before it answered", code)
		default:
		}
		return false, fmt.Errorf("health: %+v", r)
	})
	return env, port
}

func TestPolicyCheckCommand(t *testing.T) {
	env, port := serveDir(t, func(cfg string) string {
		return strings.Replace(cfg, "network_allowlist = []", `network_allowlist = ["GET,HEAD https://api.github.com/repos/", "!https://api.github.com/repos/secret/"]`, 1)
	})
	cases := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"https://api.github.com/repos/x/y"}, 0, []string{"ALLOWED", "rule:    GET,HEAD https://api.github.com/repos", "policy:  server"}},
		{[]string{"--method", "post", "https://api.github.com/repos/x/y"}, 1, []string{"BLOCKED  POST"}},
		{[]string{"https://api.github.com/repos/secret/z"}, 1, []string{"BLOCKED", "!"}},
		{[]string{"http://api.github.com/repos/x"}, 1, []string{"BLOCKED"}},
		{[]string{"ftp://api.github.com/"}, 1, []string{}},
		{[]string{"--container", "clawbox-nope", "https://api.github.com/repos/x"}, 1, []string{}},
		{[]string{"https://api.github.com/repos/x"}, 0, []string{"door:    proxy"}},
		{[]string{"--door", "forward", "https://api.github.com/repos/x"}, 0, []string{"ALLOWED", "door:    forward"}},
		{[]string{"--door", "connect", "https://api.github.com/repos/x"}, 0, []string{"ALLOWED", "door:    connect", "tunnel:  intercept"}},
		{[]string{"--door", "connect", "https://api.github.com/repos/secret/x"}, 1, []string{"BLOCKED", "tunnel:  intercept"}},
		{[]string{"--door", "connect", "https://example.com/"}, 1, []string{"BLOCKED", "door:    connect"}},
		{[]string{"--door", "sideways", "https://api.github.com/repos/x"}, 1, []string{}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := clawbox(t, context.Background(), env, append([]string{"policy", "check", "--port", port}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %+v", r.code, tc.code, r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q: %s", w, r.stdout)
				}
			}
		})
	}
	r := clawbox(t, context.Background(), env, "policy", "check", "--port", port, "--json", "https://api.github.com/repos/a/b")
	var res struct {
		Allowed bool     `json:"allowed"`
		Rules   []string `json:"rules"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || !res.Allowed || len(res.Rules) != 2 {
		t.Errorf("--json: %+v %v", r, err)
	}
	if r := clawbox(t, context.Background(), env, "policy", "check", "--port", port); r.code != ExitUsage {
		t.Errorf("policy check without URL: exit %d", r.code)
	}
}

func TestServeRefusesBadAllowlist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cb")
	env := map[string]string{"HOME": t.TempDir(), "CLAWBOX_HOME": dir}
	clawbox(t, context.Background(), env, "init")
	p := filepath.Join(dir, "config.toml")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "network_allowlist = []", `network_allowlist = ["https://"]`, 1)), 0o600)
	r := clawbox(t, context.Background(), env, "serve", "--port", strconv.Itoa(testkit.FreePort(t)))
	if r.code != ExitError || !strings.Contains(r.stderr, "container_policy.network_allowlist") {
		t.Errorf("bad allowlist: %+v", r)
	}
}

func TestCredsCommands(t *testing.T) {
	env, port := serveDir(t, nil)
	const secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
	var out, errb bytes.Buffer
	code := runWithStdin(context.Background(), []string{"creds", "add", "GITHUB", "--host", "api.github.com", "--port", port, "--method", "GET", "--path-prefix", "/repos"}, env, secret+"\n", &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "Stored credential GITHUB") {
		t.Fatalf("creds add: %d %s %s", code, out.String(), errb.String())
	}
	r := clawbox(t, context.Background(), env, "creds", "list", "--port", port)
	if r.code != 0 || !strings.Contains(r.stdout, "GITHUB") || !strings.Contains(r.stdout, "api.github.com") {
		t.Errorf("creds list: %+v", r)
	}
	r = clawbox(t, context.Background(), env, "creds", "list", "--port", port, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "GITHUB"`) {
		t.Errorf("creds list --json: %+v", r)
	}
	for _, rr := range []result{r} {
		if strings.Contains(rr.stdout+rr.stderr, secret) {
			t.Fatal("a credential value was printed")
		}
	}
	// No value: a usage error, nothing stored.
	r = clawbox(t, context.Background(), env, "creds", "add", "EMPTY", "--host", "x.example", "--port", port)
	if r.code != ExitUsage {
		t.Errorf("creds add without a value: %+v", r)
	}
	// A bad name is refused by the server with the field named.
	out.Reset()
	errb.Reset()
	code = runWithStdin(context.Background(), []string{"creds", "add", "bad-name!", "--host", "x.example", "--port", port}, env, "value-123456", &out, &errb)
	if code != ExitError || !strings.Contains(errb.String(), "invalid_request") {
		t.Errorf("creds add bad name: %d %s", code, errb.String())
	}
	r = clawbox(t, context.Background(), env, "creds", "rm", "GITHUB", "--port", port)
	if r.code != 0 {
		t.Errorf("creds rm: %+v", r)
	}
	r = clawbox(t, context.Background(), env, "creds", "rm", "GITHUB", "--port", port)
	if r.code != ExitError || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("creds rm twice: %+v", r)
	}
}

// shortTempDir is a temporary directory with a short path: sandbox socket paths
// under it must fit the 107 bytes of a Unix socket address.
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "cb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestRunAndToolsCommands(t *testing.T) {
	cache, err := os.MkdirTemp("", "cbcache")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(cache) })
	env, port := serveDir(t, func(cfg string) string {
		return regexp.MustCompile(`(?m)^cache_dir = .*$`).ReplaceAllString(cfg, `cache_dir = "`+cache+`"`)
	}, func(dir string) {
		// Keep two of the example tools: compiling each takes seconds under -race.
		for _, n := range []string{"http_request", "json_fmt", "web_fetch"} {
			os.Remove(filepath.Join(dir, "tools", n+".wasm"))
			os.Remove(filepath.Join(dir, "tools", n+".json"))
		}
	})
	// Wait until the server has compiled its tools (slow on a loaded machine).
	poll.Until(t, poll.Slow, "the server to load its 2 tools", func() (bool, error) {
		r := clawbox(t, context.Background(), env, "status", "--port", port, "--json")
		return strings.Contains(r.stdout, `"tools_loaded": 2`), fmt.Errorf("status: %+v", r)
	})
	r := clawbox(t, context.Background(), env, "run", "--port", port, "echo", `{"hello":"world"}`)
	if r.code != 0 || !strings.Contains(r.stdout, `"hello": "world"`) {
		t.Fatalf("run echo: %+v", r)
	}
	var out, errb bytes.Buffer
	code := runWithStdin(context.Background(), []string{"run", "--port", port, "hash", "-"}, env, `{"data":"abc"}`, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") {
		t.Errorf("run hash from stdin: %d %s %s", code, out.String(), errb.String())
	}
	r = clawbox(t, context.Background(), env, "run", "--port", port, "--json", "echo", `{}`)
	if r.code != 0 || !strings.Contains(r.stdout, `"fuel_consumed": 0`) {
		t.Errorf("run --json: %+v", r)
	}
	// A reference client's request: capabilities.resources with memory_mb and fuel.
	tok, err := os.ReadFile(filepath.Join(env["CLAWBOX_HOME"], "token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+port+"/execute", strings.NewReader(
		`{"tool":"echo","params":{"a":1},"capabilities":{"resources":{"memory_mb":16,"fuel":1000000,"timeout_ms":600000}}}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"a":1`) {
		t.Errorf("reference-style POST /execute: %d %s", resp.StatusCode, body)
	}
	r = clawbox(t, context.Background(), env, "run", "--port", port, "nope")
	if r.code != ExitError || !strings.Contains(r.stderr, "tool_not_found") {
		t.Errorf("run of an unknown tool: %+v", r)
	}
	r = clawbox(t, context.Background(), env, "run", "--port", port, "echo", "{bad")
	if r.code != ExitUsage {
		t.Errorf("run with bad JSON: %+v", r)
	}
	r = clawbox(t, context.Background(), env, "tools", "list", "--port", port)
	for _, name := range []string{"echo", "hash"} {
		if !strings.Contains(r.stdout, name) {
			t.Errorf("tools list lacks %s: %+v", name, r)
		}
	}
	r = clawbox(t, context.Background(), env, "tools", "reload", "--port", port)
	if r.code != 0 || !strings.Contains(r.stdout, "Loaded 2 tools") {
		t.Errorf("tools reload: %+v", r)
	}
}

// TestEveryCommandHasHelpAndExample walks the real command tree.
func TestEveryCommandHasHelpAndExample(t *testing.T) {
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || (c.Parent() != nil && c.Parent().Name() == "completion") {
			return
		}
		if c.Short == "" {
			t.Errorf("%s has no short help", c.CommandPath())
		}
		if c.Example == "" {
			t.Errorf("%s has no example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(a.rootCommand())
}
