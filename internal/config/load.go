package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/clawbox/clawbox/client"
)

// Env looks up an environment variable; nil means os.LookupEnv.
type Env func(key string) (string, bool)

func (e Env) lookup(key string) (string, bool) {
	if e == nil {
		return os.LookupEnv(key)
	}
	return e(key)
}

// Environment variables read by clawbox.
const (
	EnvHome      = client.EnvHome       // the clawbox directory (default ~/.clawbox)
	EnvHost      = client.EnvHost       // server.host
	EnvPort      = client.EnvPort       // server.port
	EnvAuthToken = client.EnvAuthToken  // server.auth_token
	EnvToolDir   = "CLAWBOX_TOOL_DIR"   // sandbox.tool_dir
	EnvLogLevel  = "CLAWBOX_LOG_LEVEL"  // logging.level
	EnvMasterKey = "CLAWBOX_MASTER_KEY" // the credential store key (read by MasterKey)
)

// FileName is the config file's name inside the clawbox directory.
const FileName = "config.toml"

// HomeDir returns the clawbox directory: $CLAWBOX_HOME, else ~/.clawbox.
func HomeDir(env Env) (string, error) {
	if d, ok := env.lookup(EnvHome); ok && d != "" {
		return expandHome(d, env)
	}
	h, err := userHome(env)
	if err != nil {
		return "", err
	}
	return filepath.Join(h, ".clawbox"), nil
}

func userHome(env Env) (string, error) {
	if h, ok := env.lookup("HOME"); ok && h != "" {
		return h, nil
	}
	if env != nil {
		return "", errors.New("HOME is not set: set HOME or CLAWBOX_HOME, or pass --dir")
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory: %w (set CLAWBOX_HOME or pass --dir)", err)
	}
	return h, nil
}

// expandHome replaces a leading "~" or "~/" with the user's home directory.
func expandHome(p string, env Env) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	h, err := userHome(env)
	if err != nil {
		return "", err
	}
	return filepath.Join(h, strings.TrimPrefix(p, "~")), nil
}

// Load reads the config file at path strictly, applies environment overrides,
// expands paths and validates. Relative paths in the file are taken relative to the
// file's directory. Every error names the file and the key.
func Load(path string, env Env) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg, err := Parse(data, filepath.Dir(abs), env)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.Path = abs
	return cfg, nil
}

// Parse decodes TOML data over the defaults, applies environment overrides, resolves
// paths (relative ones against baseDir) and validates.
func Parse(data []byte, baseDir string, env Env) (*Config, error) {
	cfg := Default("~/.clawbox")
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := fmt.Sprintf("line %d, column %d: %s", pe.Position.Line, pe.Position.Col, pe.Message)
			if pe.LastKey != "" {
				msg = fmt.Sprintf("key %q: %s", pe.LastKey, msg)
			}
			return nil, errors.New(msg)
		}
		return nil, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = strconv.Quote(k.String())
		}
		return nil, fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	if err := applyEnv(&cfg, env); err != nil {
		return nil, err
	}
	if err := cfg.resolvePaths(baseDir, env); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func applyEnv(cfg *Config, env Env) error {
	if v, ok := env.lookup(EnvHost); ok && v != "" {
		cfg.Server.Host = v
	}
	if v, ok := env.lookup(EnvPort); ok && v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%s=%q: server.port must be a number", EnvPort, v)
		}
		cfg.Server.Port = p
	}
	if v, ok := env.lookup(EnvAuthToken); ok && v != "" {
		cfg.Server.AuthToken = v
	}
	if v, ok := env.lookup(EnvToolDir); ok && v != "" {
		cfg.Sandbox.ToolDir = v
	}
	if v, ok := env.lookup(EnvLogLevel); ok && v != "" {
		cfg.Logging.Level = strings.ToLower(v)
	}
	return nil
}

// paths returns pointers to every path-valued field with its key.
func (c *Config) paths() map[string]*string {
	return map[string]*string{
		"server.auth_token_file":       &c.Server.AuthTokenFile,
		"server.unix_socket":           &c.Server.UnixSocket,
		"sandbox.tool_dir":             &c.Sandbox.ToolDir,
		"sandbox.cache_dir":            &c.Sandbox.CacheDir,
		"proxy.upstream_ca_file":       &c.Proxy.UpstreamCAFile,
		"credentials.store_path":       &c.Credentials.StorePath,
		"credentials.key_file":         &c.Credentials.KeyFile,
		"logging.audit_dir":            &c.Logging.AuditDir,
		"store.path":                   &c.Store.Path,
		"containers.workspace_root":    &c.Containers.WorkspaceRoot,
		"containers.proxies_dir":       &c.Containers.ProxiesDir,
		"containers.system_roots_file": &c.Containers.SystemRootsFile,
		"kubernetes.kubeconfig":        &c.Kubernetes.Kubeconfig,
	}
}

func (c *Config) resolvePaths(baseDir string, env Env) error {
	for key, p := range c.paths() {
		if *p == "" {
			continue
		}
		v, err := expandHome(*p, env)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if !filepath.IsAbs(v) && baseDir != "" {
			v = filepath.Join(baseDir, v)
		}
		*p = filepath.Clean(v)
	}
	return nil
}

var (
	userRe         = regexp.MustCompile(`^([0-9]+)(:([0-9]+))?$`)
	templateNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	runtimeRe      = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// Validate checks every value and returns all problems, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	positive := func(key string, v int64) {
		if v <= 0 {
			bad(key, "must be positive, got %d", v)
		}
	}
	oneOf := func(key, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		bad(key, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	}

	s := c.Server
	if strings.TrimSpace(s.Host) == "" {
		bad("server.host", "must not be empty")
	}
	if s.Port < 1 || s.Port > 65535 {
		bad("server.port", "must be between 1 and 65535, got %d", s.Port)
	}
	if s.AuthToken != "" && strings.TrimSpace(s.AuthToken) != s.AuthToken {
		bad("server.auth_token", "must not start or end with white space")
	}
	if s.AuthToken == "changeme" {
		bad("server.auth_token", `is the placeholder "changeme": set a real token (clawbox init writes one)`)
	}
	if s.AuthToken == "" && s.AuthTokenFile == "" {
		bad("server.auth_token", "no token: set server.auth_token, server.auth_token_file or %s", EnvAuthToken)
	}
	positive("server.max_concurrent_executions", int64(s.MaxConcurrentExecutions))
	if s.MaxQueuedExecutions < 0 {
		bad("server.max_queued_executions", "must not be negative, got %d", s.MaxQueuedExecutions)
	}
	positive("server.max_body_bytes", s.MaxBodyBytes)
	if s.ShutdownTimeout <= 0 {
		bad("server.shutdown_timeout", "must be a positive duration such as \"10s\", got %s", s.ShutdownTimeout)
	}

	if s.MemoryLimitMB < 0 {
		bad("server.memory_limit_mb", "must not be negative (0 turns it off), got %d", s.MemoryLimitMB)
	}

	for i, h := range s.AllowedHosts {
		if h = strings.TrimSpace(h); h == "" || strings.ContainsAny(h, " /@?#") || strings.Contains(h, "://") {
			bad(fmt.Sprintf("server.allowed_hosts[%d]", i), "%q is not a host name with an optional port, such as \"clawbox.internal:9800\"", s.AllowedHosts[i])
		}
	}
	for i, o := range s.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
			bad(fmt.Sprintf("server.allowed_origins[%d]", i), "%q is not an origin such as \"https://ui.example\"", o)
		}
	}

	sb := c.Sandbox
	if sb.ToolDir == "" {
		bad("sandbox.tool_dir", "must not be empty")
	}
	positive("sandbox.default_fuel", sb.DefaultFuel)
	positive("sandbox.default_timeout_ms", sb.DefaultTimeoutMS)
	positive("sandbox.max_timeout_ms", sb.MaxTimeoutMS)
	if sb.DefaultTimeoutMS > sb.MaxTimeoutMS {
		bad("sandbox.default_timeout_ms", "must not exceed sandbox.max_timeout_ms (%d), got %d", sb.MaxTimeoutMS, sb.DefaultTimeoutMS)
	}
	if sb.MaxMemoryMB < 1 || sb.MaxMemoryMB > 4096 {
		bad("sandbox.max_memory_mb", "must be between 1 and 4096, got %d", sb.MaxMemoryMB)
	}
	positive("sandbox.max_output_bytes", sb.MaxOutputBytes)
	positive("sandbox.max_stderr_bytes", sb.MaxStderrBytes)
	positive("sandbox.max_host_calls", int64(sb.MaxHostCalls))
	positive("sandbox.max_module_bytes", sb.MaxModuleBytes)
	if sb.MaxModuleBytes > 1<<30 {
		bad("sandbox.max_module_bytes", "must be at most 1073741824 (1 GiB), got %d", sb.MaxModuleBytes)
	}
	for key, v := range map[string]int{
		"sandbox.max_module_functions":    sb.MaxModuleFunctions,
		"sandbox.max_function_locals":     sb.MaxFunctionLocals,
		"sandbox.max_module_locals":       sb.MaxModuleLocals,
		"sandbox.max_function_bytes":      sb.MaxFunctionBytes,
		"sandbox.max_code_bytes":          sb.MaxCodeBytes,
		"sandbox.max_data_bytes":          sb.MaxDataBytes,
		"sandbox.max_table_elements":      sb.MaxTableElements,
		"sandbox.max_module_imports":      sb.MaxModuleImports,
		"sandbox.max_module_exports":      sb.MaxModuleExports,
		"sandbox.max_concurrent_compiles": sb.MaxConcurrentCompiles,
	} {
		positive(key, int64(v))
	}
	positive("sandbox.compile_timeout_ms", sb.CompileTimeoutMS)
	positive("sandbox.pool_idle_timeout_ms", sb.PoolIdleTimeoutMS)

	p := c.Proxy
	positive("proxy.max_response_bytes", p.MaxResponseBytes)
	positive("proxy.max_request_bytes", p.MaxRequestBytes)
	positive("proxy.default_timeout_ms", p.DefaultTimeoutMS)
	if !(p.RateLimit.RequestsPerSecond > 0) || math.IsInf(p.RateLimit.RequestsPerSecond, 0) {
		bad("proxy.rate_limit.requests_per_second", "must be a positive number, got %v", p.RateLimit.RequestsPerSecond)
	}
	positive("proxy.rate_limit.burst", int64(p.RateLimit.Burst))
	positive("proxy.max_concurrent_per_door", int64(p.MaxConcurrentPerDoor))
	positive("proxy.max_stream_bytes", p.MaxStreamBytes)
	positive("proxy.stream_timeout_ms", p.StreamTimeoutMS)
	positive("proxy.max_streams_per_door", int64(p.MaxStreamsPerDoor))
	positive("proxy.max_tunnels_per_door", int64(p.MaxTunnelsPerDoor))
	positive("proxy.tunnel_idle_timeout_ms", p.TunnelIdleTimeoutMS)
	if !(p.RateLimit.RefusalsPerSecond > 0) || math.IsInf(p.RateLimit.RefusalsPerSecond, 0) {
		bad("proxy.rate_limit.refusals_per_second", "must be a positive number, got %v", p.RateLimit.RefusalsPerSecond)
	}
	positive("proxy.rate_limit.refusal_burst", int64(p.RateLimit.RefusalBurst))
	for i, cidr := range p.AllowPrivateCIDRs {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			bad(fmt.Sprintf("proxy.allow_private_cidrs[%d]", i), "%q is not a CIDR prefix such as \"127.0.0.0/8\"", cidr)
		}
	}
	for name, addrs := range p.Hosts {
		if name == "" || strings.ContainsAny(name, " /:@") {
			bad("proxy.hosts", "%q is not a host name", name)
		}
		if len(addrs) == 0 {
			bad("proxy.hosts."+name, "must list at least one address")
		}
		for _, a := range addrs {
			if _, err := netip.ParseAddr(a); err != nil {
				bad("proxy.hosts."+name, "%q is not an IP address", a)
			}
		}
	}

	if c.Credentials.StorePath == "" {
		bad("credentials.store_path", "must not be empty")
	}

	oneOf("logging.format", c.Logging.Format, "json", "text")
	oneOf("logging.level", c.Logging.Level, "debug", "info", "warn", "error")
	if c.Logging.AuditDir == "" {
		bad("logging.audit_dir", "must not be empty")
	}
	positive("logging.audit_max_bytes", c.Logging.AuditMaxBytes)
	positive("logging.audit_keep_files", int64(c.Logging.AuditKeepFiles))
	a := c.Audit
	for key, d := range map[string]time.Duration{"audit.max_age": a.MaxAge, "audit.retention_interval": a.RetentionInterval, "audit.aggregate_window": a.AggregateWindow} {
		if d <= 0 {
			bad(key, "must be a positive duration such as \"10m\", got %s", d)
		}
	}
	positive("audit.index_max_bytes", a.IndexMaxBytes)
	positive("audit.refusal_budget", int64(a.RefusalBudget))

	if c.Store.Path == "" {
		bad("store.path", "must not be empty")
	}

	ct := c.Containers
	positive("containers.max_containers", int64(ct.MaxContainers))
	if ct.ProxiesDir == "" {
		bad("containers.proxies_dir", "must not be empty")
	}
	if strings.TrimSpace(ct.DefaultImage) == "" {
		bad("containers.default_image", "must not be empty")
	}
	for i, img := range ct.AllowedImages {
		if strings.TrimSpace(img) == "" || strings.TrimSpace(img) != img {
			bad(fmt.Sprintf("containers.allowed_images[%d]", i), "%q is not an image name", img)
		}
	}
	if m := userRe.FindStringSubmatch(ct.User); m == nil {
		bad("containers.user", `must be "uid" or "uid:gid" with numbers, got %q`, ct.User)
	} else if m[1] == "0" && !ct.AllowRoot {
		bad("containers.user", "uid 0 (root) needs containers.allow_root = true")
	}
	positive("containers.pids_limit", ct.PidsLimit)
	positive("containers.tmpfs_size_mb", int64(ct.TmpfsSizeMB))
	positive("containers.default_memory_mb", ct.DefaultMemoryMB)
	positive("containers.max_memory_mb", ct.MaxMemoryMB)
	if ct.DefaultMemoryMB > ct.MaxMemoryMB {
		bad("containers.default_memory_mb", "must not exceed containers.max_memory_mb (%d), got %d", ct.MaxMemoryMB, ct.DefaultMemoryMB)
	}
	positive("containers.default_cpu_shares", ct.DefaultCPUShares)
	positive("containers.max_cpu_shares", ct.MaxCPUShares)
	if ct.DefaultCPUShares > ct.MaxCPUShares {
		bad("containers.default_cpu_shares", "must not exceed containers.max_cpu_shares (%d), got %d", ct.MaxCPUShares, ct.DefaultCPUShares)
	}
	if ct.MaxCPUs < 0 {
		bad("containers.max_cpus", "must not be negative, got %v", ct.MaxCPUs)
	}
	positive("containers.default_timeout_ms", ct.DefaultTimeoutMS)
	positive("containers.max_timeout_ms", ct.MaxTimeoutMS)
	if ct.DefaultTimeoutMS > ct.MaxTimeoutMS {
		bad("containers.default_timeout_ms", "must not exceed containers.max_timeout_ms (%d), got %d", ct.MaxTimeoutMS, ct.DefaultTimeoutMS)
	}
	positive("containers.nofile", ct.Nofile)
	if ct.StopGrace < 0 {
		bad("containers.stop_grace", "must not be negative, got %s", ct.StopGrace)
	}
	positive("containers.max_log_bytes", ct.MaxLogBytes)
	if ct.Retention <= 0 {
		bad("containers.retention", "must be a positive duration such as \"1h\", got %s", ct.Retention)
	}
	if ct.ReaperInterval < 100*time.Millisecond {
		bad("containers.reaper_interval", "must be at least 100ms, got %s", ct.ReaperInterval)
	}
	positive("containers.exec_timeout_ms", ct.ExecTimeoutMS)
	positive("containers.max_exec_timeout_ms", ct.MaxExecTimeoutMS)
	if ct.ExecTimeoutMS > ct.MaxExecTimeoutMS {
		bad("containers.exec_timeout_ms", "must not exceed containers.max_exec_timeout_ms (%d), got %d", ct.MaxExecTimeoutMS, ct.ExecTimeoutMS)
	}
	positive("containers.max_exec_output_bytes", ct.MaxExecOutputBytes)
	positive("containers.max_execs", int64(ct.MaxExecs))
	positive("containers.max_file_bytes", ct.MaxFileBytes)
	positive("containers.max_workspace_mb", ct.MaxWorkspaceMB)
	if f := ct.SystemRootsFile; f != "" {
		// Read at every spawn: a file that is not there would fail each one.
		if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
			bad("containers.system_roots_file", "%q is not a readable file", f)
		}
	}
	if ct.Runtime != "" && !runtimeRe.MatchString(ct.Runtime) {
		bad("containers.runtime", "%q is not a runtime name", ct.Runtime)
	}
	oneOf("containers.backend", ct.Backend, "docker", "kubernetes")
	if ct.Backend == "kubernetes" {
		c.validateKubernetes(bad)
	}

	for i, wp := range ct.WarmPool {
		key := fmt.Sprintf("containers.warm_pool[%d]", i)
		switch {
		case wp.Template == "" && strings.TrimSpace(wp.Image) == "":
			bad(key, "needs template = \"NAME\" or image = \"IMAGE\"")
		case wp.Template != "" && (wp.Image != "" || wp.MemoryMB != 0):
			bad(key, "names a template: its image and memory_mb come from the template, leave image and memory_mb out")
		case wp.Template != "":
			if t, ok := c.Images.Templates[wp.Template]; !ok {
				bad(key+".template", "no [images.templates.%s] table", wp.Template)
			} else if t.Workspace {
				bad(key+".template", "template %q mounts a workspace: a pooled sandbox cannot have one (a bind mount is fixed when the container starts)", wp.Template)
			}
		}
		if wp.Size < 1 {
			bad(key+".size", "must be at least 1, got %d", wp.Size)
		}
		if wp.MemoryMB < 0 {
			bad(key+".memory_mb", "must not be negative, got %d", wp.MemoryMB)
		}
		if wp.CPUShares < 0 {
			bad(key+".cpu_shares", "must not be negative, got %d", wp.CPUShares)
		}
		if wp.CPUs < 0 {
			bad(key+".cpus", "must not be negative, got %v", wp.CPUs)
		}
	}

	for i, pol := range c.ContainerPolicy.AllowedPolicies {
		oneOf(fmt.Sprintf("container_policy.allowed_policies[%d]", i), strings.ToLower(pol), "wasm_only", "container", "container_direct")
	}
	for i, name := range c.ContainerPolicy.AllowedCredentials {
		if strings.TrimSpace(name) == "" {
			bad(fmt.Sprintf("container_policy.allowed_credentials[%d]", i), "must not be empty")
		}
	}
	for i, rule := range c.ContainerPolicy.NetworkAllowlist {
		if strings.TrimSpace(rule) == "" {
			bad(fmt.Sprintf("container_policy.network_allowlist[%d]", i), "must not be empty")
		}
	}

	oneOf("tools.default_language", c.Tools.DefaultLanguage, "go")

	for name, t := range c.Images.Templates {
		key := "images.templates." + name
		if !templateNameRe.MatchString(name) {
			bad(key, "template names must match [A-Za-z0-9_-]{1,64}")
		}
		if strings.TrimSpace(t.Image) == "" {
			bad(key+".image", "is required")
		}
		if t.MaxLifetimeMS < 0 {
			bad(key+".max_lifetime_ms", "must not be negative, got %d", t.MaxLifetimeMS)
		}
		if t.MemoryMB < 0 {
			bad(key+".memory_mb", "must not be negative, got %d", t.MemoryMB)
		}
	}
	return errors.Join(errs...)
}

// Token returns the API bearer token in force: server.auth_token (or
// CLAWBOX_AUTH_TOKEN), else the content of server.auth_token_file. A missing or empty
// token is an error; a random unknown token is never made up.
func (c *Config) Token() (string, error) {
	if c.Server.AuthToken != "" {
		return c.Server.AuthToken, nil
	}
	if c.Server.AuthTokenFile == "" {
		return "", fmt.Errorf("server.auth_token: no token: set server.auth_token, server.auth_token_file or %s", EnvAuthToken)
	}
	// The SDK reads token files the same way (client.FromEnv).
	return client.ReadTokenFile(c.Server.AuthTokenFile)
}

// MasterKeyHex returns CLAWBOX_MASTER_KEY if set (the credential store's key; the
// secrets package parses it), and whether it was set.
func MasterKeyHex(env Env) (string, bool) {
	v, ok := env.lookup(EnvMasterKey)
	return v, ok && v != ""
}

var dnsLabelRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// validateKubernetes checks [kubernetes] and what containers.backend =
// "kubernetes" cannot do.
func (c *Config) validateKubernetes(bad func(key, format string, args ...any)) {
	k := c.Kubernetes
	if !dnsLabelRe.MatchString(k.Namespace) {
		bad("kubernetes.namespace", "%q is not a namespace name (lowercase letters, digits and '-', at most 63)", k.Namespace)
	}
	if strings.TrimSpace(k.Node) == "" || strings.ContainsAny(k.Node, " /\t\n") {
		bad("kubernetes.node", "must name the node clawbox runs on (kubectl get nodes), got %q", k.Node)
	}
	if k.RuntimeClass != "" && !dnsLabelRe.MatchString(k.RuntimeClass) {
		bad("kubernetes.runtime_class", "%q is not a RuntimeClass name", k.RuntimeClass)
	}
	switch k.ImagePullPolicy {
	case "IfNotPresent", "Never", "Always":
	default:
		bad("kubernetes.image_pull_policy", "must be one of IfNotPresent, Never, Always, got %q", k.ImagePullPolicy)
	}
	if k.StartTimeout < time.Second {
		bad("kubernetes.start_timeout", "must be at least 1s, got %s", k.StartTimeout)
	}
	if c.Containers.Runtime != "" {
		bad("containers.runtime", "is Docker's OCI runtime; with containers.backend = \"kubernetes\" set kubernetes.runtime_class instead")
	}
	if len(c.Containers.WarmPool) > 0 {
		bad("containers.warm_pool", "warm pools need the docker backend (a Pod's image command cannot be read through the Kubernetes API)")
	}
}
