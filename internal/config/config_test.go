package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envOf returns an Env backed by the given map only.
func envOf(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInitFileParsesToDefaults(t *testing.T) {
	home := t.TempDir()
	p := writeConfig(t, File(home))
	got, err := Load(p, envOf(map[string]string{"HOME": "/nonexistent"}))
	if err != nil {
		t.Fatalf("Load(File(home)): %v", err)
	}
	want := Default(home)
	want.Path = got.Path
	for key, ptr := range want.paths() {
		if *ptr != "" {
			*ptr = filepath.Clean(*ptr)
		}
		_ = key
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("parsed init file differs from defaults:\n got %+v\nwant %+v", *got, want)
	}
}

func TestEmptyFileGetsDefaults(t *testing.T) {
	p := writeConfig(t, "")
	cfg, err := Load(p, envOf(map[string]string{"HOME": "/home/u"}))
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]any{
		"server.host":                          {cfg.Server.Host, "127.0.0.1"},
		"server.port":                          {cfg.Server.Port, 9800},
		"server.auth_token_file":               {cfg.Server.AuthTokenFile, "/home/u/.clawbox/token"},
		"sandbox.tool_dir":                     {cfg.Sandbox.ToolDir, "/home/u/.clawbox/tools"},
		"sandbox.pool_idle_timeout_ms":         {cfg.Sandbox.PoolIdleTimeoutMS, int64(60_000)},
		"server.memory_limit_mb":               {cfg.Server.MemoryLimitMB, 256},
		"store.path":                           {cfg.Store.Path, "/home/u/.clawbox/state.db"},
		"containers.stop_grace":                {cfg.Containers.StopGrace, 5 * time.Second},
		"containers.retention":                 {cfg.Containers.Retention, time.Hour},
		"containers.reaper_interval":           {cfg.Containers.ReaperInterval, 30 * time.Second},
		"containers.default_image":             {cfg.Containers.DefaultImage, "alpine:latest"},
		"logging.format":                       {cfg.Logging.Format, "json"},
		"proxy.rate_limit.burst":               {cfg.Proxy.RateLimit.Burst, 50},
		"proxy.max_concurrent_per_door":        {cfg.Proxy.MaxConcurrentPerDoor, 8},
		"proxy.max_stream_bytes":               {cfg.Proxy.MaxStreamBytes, int64(4 << 30)},
		"proxy.stream_timeout_ms":              {cfg.Proxy.StreamTimeoutMS, int64(600_000)},
		"proxy.max_streams_per_door":           {cfg.Proxy.MaxStreamsPerDoor, 32},
		"proxy.max_tunnels_per_door":           {cfg.Proxy.MaxTunnelsPerDoor, 64},
		"proxy.tunnel_idle_timeout_ms":         {cfg.Proxy.TunnelIdleTimeoutMS, int64(120_000)},
		"proxy.rate_limit.refusals_per_second": {cfg.Proxy.RateLimit.RefusalsPerSecond, 1.0},
		"proxy.rate_limit.refusal_burst":       {cfg.Proxy.RateLimit.RefusalBurst, 20},
		"audit.max_age":                        {cfg.Audit.MaxAge, 720 * time.Hour},
		"audit.index_max_bytes":                {cfg.Audit.IndexMaxBytes, int64(256 << 20)},
		"audit.retention_interval":             {cfg.Audit.RetentionInterval, 10 * time.Minute},
		"audit.refusal_budget":                 {cfg.Audit.RefusalBudget, 20},
		"audit.aggregate_window":               {cfg.Audit.AggregateWindow, time.Minute},
	}
	for key, c := range checks {
		if !reflect.DeepEqual(c[0], c[1]) {
			t.Errorf("%s = %v, want %v", key, c[0], c[1])
		}
	}
	if !reflect.DeepEqual(cfg.ContainerPolicy.AllowedPolicies, []string{"wasm_only", "container"}) {
		t.Errorf("allowed_policies = %v", cfg.ContainerPolicy.AllowedPolicies)
	}
}

func TestLoadErrorsNameKeyAndFile(t *testing.T) {
	cases := []struct {
		name string
		body string
		want []string // substrings of the error
	}{
		{"unknown key", "[server]\nprot = 1\n", []string{`"server.prot"`, "unknown key"}},
		{"unknown table", "[sever]\nport = 1\n", []string{`"sever`, "unknown key"}},
		{"wrong type", "[server]\nport = \"abc\"\n", []string{"server.port"}},
		{"syntax", "[server\nport = 1\n", []string{"line 2"}},
		{"port range", "[server]\nport = 70000\n", []string{"server.port", "70000"}},
		{"port zero", "[server]\nport = 0\n", []string{"server.port"}},
		{"log level", "[logging]\nlevel = \"loud\"\n", []string{"logging.level", "loud"}},
		{"changeme", "[server]\nauth_token = \"changeme\"\n", []string{"server.auth_token"}},
		{"token spaces", "[server]\nauth_token = \" x \"\n", []string{"server.auth_token"}},
		{"no token source", "[server]\nauth_token_file = \"\"\n", []string{"server.auth_token"}},
		{"bad duration", "[containers]\nstop_grace = \"soon\"\n", []string{"soon"}},
		{"negative duration", "[containers]\nretention = \"-1h\"\n", []string{"containers.retention"}},
		{"default over max", "[containers]\ndefault_memory_mb = 9000\n", []string{"containers.default_memory_mb"}},
		{"root user", "[containers]\nuser = \"0:0\"\n", []string{"containers.user", "allow_root"}},
		{"user format", "[containers]\nuser = \"bob\"\n", []string{"containers.user"}},
		{"bad cidr", "[proxy]\nallow_private_cidrs = [\"10.0.0.1\"]\n", []string{"proxy.allow_private_cidrs[0]"}},
		{"bad host addr", "[proxy.hosts]\nup = [\"nope\"]\n", []string{"proxy.hosts.up"}},
		{"bad policy", "[container_policy]\nallowed_policies = [\"root\"]\n", []string{"container_policy.allowed_policies[0]"}},
		{"template without image", "[images.templates.x]\ndescription = \"d\"\n", []string{"images.templates.x.image"}},
		{"template unknown key", "[images.templates.x]\nimage = \"alpine\"\nallowlist = []\n", []string{"images.templates.x.allowlist"}},
		{"door concurrency", "[proxy]\nmax_concurrent_per_door = 0\n", []string{"proxy.max_concurrent_per_door"}},
		{"stream bytes", "[proxy]\nmax_stream_bytes = 0\n", []string{"proxy.max_stream_bytes"}},
		{"stream timeout", "[proxy]\nstream_timeout_ms = -5\n", []string{"proxy.stream_timeout_ms"}},
		{"door streams", "[proxy]\nmax_streams_per_door = 0\n", []string{"proxy.max_streams_per_door"}},
		{"door tunnels", "[proxy]\nmax_tunnels_per_door = -1\n", []string{"proxy.max_tunnels_per_door"}},
		{"system roots missing", "[containers]\nsystem_roots_file = \"/nonexistent/roots.pem\"\n", []string{"containers.system_roots_file", "/nonexistent/roots.pem"}},
		{"pool without image", "[[containers.warm_pool]]\nsize = 1\n", []string{"containers.warm_pool[0]", "template"}},
		{"pool size", "[containers]\nwarm_pool = [{ image = \"alpine\", size = 0 }]\n", []string{"containers.warm_pool[0].size"}},
		{"pool unknown template", "[[containers.warm_pool]]\ntemplate = \"nope\"\nsize = 1\n", []string{"containers.warm_pool[0].template", "nope"}},
		{"pool template and image", "[images.templates.t]\nimage = \"alpine\"\n[[containers.warm_pool]]\ntemplate = \"t\"\nimage = \"alpine\"\nsize = 1\n", []string{"containers.warm_pool[0]", "leave image"}},
		{"pool workspace template", "[images.templates.t]\nimage = \"alpine\"\nworkspace = true\n[[containers.warm_pool]]\ntemplate = \"t\"\nsize = 1\n", []string{"containers.warm_pool[0].template", "workspace"}},
		{"pool unknown key", "[[containers.warm_pool]]\nimage = \"alpine\"\nsize = 1\nwarm = true\n", []string{"warm"}},
		{"tunnel idle", "[proxy]\ntunnel_idle_timeout_ms = 0\n", []string{"proxy.tunnel_idle_timeout_ms"}},
		{"refusal rate", "[proxy.rate_limit]\nrefusals_per_second = -1.0\n", []string{"proxy.rate_limit.refusals_per_second"}},
		{"audit age", "[audit]\nmax_age = \"-1h\"\n", []string{"audit.max_age"}},
		{"audit budget", "[audit]\nrefusal_budget = 0\n", []string{"audit.refusal_budget"}},
		{"audit unknown key", "[audit]\nmax_files = 3\n", []string{"audit.max_files"}},
		{"allowed host url", "[server]\nallowed_hosts = [\"http://x\"]\n", []string{"server.allowed_hosts[0]"}},
		{"allowed origin path", "[server]\nallowed_origins = [\"https://x/app\"]\n", []string{"server.allowed_origins[0]"}},
		{"module locals zero", "[sandbox]\nmax_function_locals = 0\n", []string{"sandbox.max_function_locals"}},
		{"module bytes huge", "[sandbox]\nmax_module_bytes = 9999999999\n", []string{"sandbox.max_module_bytes"}},
		{"compile timeout", "[sandbox]\ncompile_timeout_ms = -1\n", []string{"sandbox.compile_timeout_ms"}},
		{"pool idle timeout", "[sandbox]\npool_idle_timeout_ms = 0\n", []string{"sandbox.pool_idle_timeout_ms"}},
		{"memory limit", "[server]\nmemory_limit_mb = -1\n", []string{"server.memory_limit_mb"}},
		{"language", "[tools]\ndefault_language = \"rust\"\n", []string{"tools.default_language"}},
		{"backend", "[containers]\nbackend = \"podman\"\n", []string{"containers.backend", "podman"}},
		{"k8s namespace", "[containers]\nbackend = \"kubernetes\"\n[kubernetes]\nnamespace = \"Bad_NS\"\nnode = \"n\"\n", []string{"kubernetes.namespace", "Bad_NS"}},
		{"k8s node", "[containers]\nbackend = \"kubernetes\"\n[kubernetes]\nnode = \" \"\n", []string{"kubernetes.node"}},
		{"k8s pull policy", "[containers]\nbackend = \"kubernetes\"\n[kubernetes]\nnode = \"n\"\nimage_pull_policy = \"Sometimes\"\n", []string{"kubernetes.image_pull_policy"}},
		{"k8s runtime", "[containers]\nbackend = \"kubernetes\"\nruntime = \"runsc\"\n[kubernetes]\nnode = \"n\"\n", []string{"containers.runtime", "kubernetes.runtime_class"}},
		{"k8s warm pool", "[containers]\nbackend = \"kubernetes\"\nwarm_pool = [{ image = \"alpine\", size = 1 }]\n[kubernetes]\nnode = \"n\"\n", []string{"containers.warm_pool", "docker backend"}},
		{"k8s unknown key", "[kubernetes]\ncontext = \"x\"\n", []string{"kubernetes.context"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.body)
			_, err := Load(p, envOf(map[string]string{"HOME": "/h"}))
			if err == nil {
				t.Fatalf("Load accepted %q", tc.body)
			}
			msg := err.Error()
			if !strings.Contains(msg, p) {
				t.Errorf("error %q does not name the file %s", msg, p)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestLoadMissingAndUnreadable(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"), envOf(nil))
	if err == nil || !strings.Contains(err.Error(), "nope.toml") {
		t.Fatalf("missing file: err = %v", err)
	}
	dir := t.TempDir()
	_, err = Load(dir, envOf(nil)) // a directory is not a config file
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("directory: err = %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	p := writeConfig(t, "[server]\nport = 1234\n")
	cfg, err := Load(p, envOf(map[string]string{
		"HOME":       "/h",
		EnvHost:      "0.0.0.0",
		EnvPort:      "4321",
		EnvAuthToken: "tok-from-env",
		EnvToolDir:   "~/mytools",
		EnvLogLevel:  "DEBUG",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Host != "0.0.0.0" || cfg.Server.Port != 4321 || cfg.Server.AuthToken != "tok-from-env" ||
		cfg.Sandbox.ToolDir != "/h/mytools" || cfg.Logging.Level != "debug" {
		t.Errorf("overrides not applied: %+v %+v %+v", cfg.Server, cfg.Sandbox.ToolDir, cfg.Logging.Level)
	}
	tok, err := cfg.Token()
	if err != nil || tok != "tok-from-env" {
		t.Errorf("Token() = %q, %v", tok, err)
	}

	_, err = Load(p, envOf(map[string]string{"HOME": "/h", EnvPort: "nine"}))
	if err == nil || !strings.Contains(err.Error(), EnvPort) || !strings.Contains(err.Error(), "server.port") {
		t.Errorf("bad CLAWBOX_PORT: err = %v", err)
	}
	_, err = Load(p, envOf(map[string]string{"HOME": "/h", EnvPort: "0"}))
	if err == nil || !strings.Contains(err.Error(), "server.port") {
		t.Errorf("CLAWBOX_PORT=0: err = %v", err)
	}
}

func TestPathsExpandAndResolve(t *testing.T) {
	p := writeConfig(t, "[sandbox]\ntool_dir = \"rel/tools\"\n[store]\npath = \"~/x/state.db\"\n")
	cfg, err := Load(p, envOf(map[string]string{"HOME": "/home/z"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(p), "rel/tools"); cfg.Sandbox.ToolDir != want {
		t.Errorf("relative tool_dir = %q, want %q", cfg.Sandbox.ToolDir, want)
	}
	if cfg.Store.Path != "/home/z/x/state.db" {
		t.Errorf("store.path = %q", cfg.Store.Path)
	}
	// Without HOME a "~" path cannot be expanded: a clear error, not a literal "~" dir.
	_, err = Load(p, envOf(map[string]string{}))
	if err == nil || !strings.Contains(err.Error(), "HOME") {
		t.Errorf("no HOME: err = %v", err)
	}
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	p := writeConfig(t, "[server]\nauth_token_file = \""+tokFile+"\"\n")
	cfg, err := Load(p, envOf(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Token(); err == nil || !strings.Contains(err.Error(), "clawbox init") {
		t.Errorf("missing token file: err = %v", err)
	}
	os.WriteFile(tokFile, []byte("  \n"), 0o600)
	if _, err := cfg.Token(); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty token file: err = %v", err)
	}
	os.WriteFile(tokFile, []byte("abc def\n"), 0o600)
	if _, err := cfg.Token(); err == nil {
		t.Errorf("two-word token accepted")
	}
	os.WriteFile(tokFile, []byte("abc123\n"), 0o600)
	if tok, err := cfg.Token(); err != nil || tok != "abc123" {
		t.Errorf("Token() = %q, %v", tok, err)
	}
}

func TestHomeDir(t *testing.T) {
	d, err := HomeDir(envOf(map[string]string{"HOME": "/u"}))
	if err != nil || d != "/u/.clawbox" {
		t.Errorf("HomeDir = %q, %v", d, err)
	}
	d, err = HomeDir(envOf(map[string]string{"HOME": "/u", EnvHome: "~/other"}))
	if err != nil || d != "/u/other" {
		t.Errorf("HomeDir with CLAWBOX_HOME = %q, %v", d, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(File("/h")))
	f.Add([]byte("[server]\nport = 1\n"))
	f.Add([]byte("[images.templates.a]\nimage = \"x\"\n"))
	f.Add([]byte("[proxy.hosts]\na = [\"::1\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "/base", envOf(map[string]string{"HOME": "/h"}))
		if err != nil {
			return
		}
		// Anything accepted must be valid.
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
	})
}

func TestKubernetesBackendLoads(t *testing.T) {
	p := writeConfig(t, "[containers]\nbackend = \"kubernetes\"\n[kubernetes]\nkubeconfig = \"~/kube.conf\"\nnamespace = \"sandboxes\"\nnode = \"worker-1\"\nruntime_class = \"gvisor\"\nimage_pull_policy = \"Never\"\nstart_timeout = \"30s\"\n")
	cfg, err := Load(p, envOf(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Kubernetes
	if cfg.Containers.Backend != "kubernetes" || k.Kubeconfig != "/h/kube.conf" || k.Namespace != "sandboxes" || k.Node != "worker-1" ||
		k.RuntimeClass != "gvisor" || k.ImagePullPolicy != "Never" || k.StartTimeout != 30*time.Second {
		t.Errorf("loaded %+v %+v", cfg.Containers.Backend, k)
	}
}
