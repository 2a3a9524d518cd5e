// Package config is clawbox's configuration: one typed tree decoded strictly from TOML
// (an unknown key or a wrong type is an error naming the key and the file), completed
// with defaults, overridden by a few CLAWBOX_* environment variables, with `~` expanded
// in paths, validated once and then treated as immutable.
//
// This is the only internal package that reads CLAWBOX_* variables; it shares the
// client discovery (names, defaults, the token file) with the public SDK
// (client.FromEnv).
package config

import (
	"os"
	"time"

	"github.com/clawbox/clawbox/client"
)

// Config is the whole configuration. Every field's default is in [Default] and in the
// commented file that `clawbox init` writes ([File]).
type Config struct {
	Server          Server          `toml:"server"`
	Sandbox         Sandbox         `toml:"sandbox"`
	Proxy           Proxy           `toml:"proxy"`
	Credentials     Credentials     `toml:"credentials"`
	Logging         Logging         `toml:"logging"`
	Store           Store           `toml:"store"`
	Audit           Audit           `toml:"audit"`
	Containers      Containers      `toml:"containers"`
	ContainerPolicy ContainerPolicy `toml:"container_policy"`
	Tools           Tools           `toml:"tools"`
	Images          Images          `toml:"images"`
	Kubernetes      Kubernetes      `toml:"kubernetes"`

	// Path is the file the configuration was read from ("" for defaults only).
	Path string `toml:"-"`
}

// Server is the [server] table: the HTTP API.
type Server struct {
	// Host is the TCP bind address. Default "127.0.0.1". Env CLAWBOX_HOST.
	Host string `toml:"host"`
	// Port is the TCP port. Default 9800. Env CLAWBOX_PORT.
	Port int `toml:"port"`
	// AuthToken is the bearer token of the API, inline. Env CLAWBOX_AUTH_TOKEN.
	// Default "": then AuthTokenFile must name a file holding it.
	AuthToken string `toml:"auth_token"`
	// AuthTokenFile is a file holding the bearer token (written 0600 by `clawbox init`).
	// Default "~/.clawbox/token". Used when AuthToken is empty.
	AuthTokenFile string `toml:"auth_token_file"`
	// UnixSocket, if set, also serves the API on this Unix socket (mode 0600). Default "".
	UnixSocket string `toml:"unix_socket"`
	// MaxConcurrentExecutions bounds executions running at once. Default 10.
	MaxConcurrentExecutions int `toml:"max_concurrent_executions"`
	// MaxQueuedExecutions bounds executions waiting for a slot; beyond it the API
	// answers 503 busy with Retry-After. Default 100.
	MaxQueuedExecutions int `toml:"max_queued_executions"`
	// MaxBodyBytes caps request bodies (413 beyond). Default 10485760 (10 MiB).
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// PublicHealth serves GET /health without a token. Default true.
	PublicHealth bool `toml:"public_health"`
	// PublicMetrics serves GET /metrics without a token. Default true.
	PublicMetrics bool `toml:"public_metrics"`
	// ShutdownTimeout bounds graceful shutdown. Default "10s".
	ShutdownTimeout time.Duration `toml:"shutdown_timeout"`
	// AllowedHosts are Host names ("name" for any port, "name:port") the API answers
	// to besides localhost, 127.0.0.1, [::1] and the address a connection arrived at
	// (other names are refused, 421 host_not_allowed, against DNS rebinding). Default [].
	AllowedHosts []string `toml:"allowed_hosts"`
	// AllowedOrigins are browser origins ("https://host[:port]") allowed besides the
	// server's own; requests with any other Origin are refused (403
	// origin_not_allowed). Default [].
	AllowedOrigins []string `toml:"allowed_origins"`
	// MemoryLimitMB is the Go runtime's soft memory limit (debug.SetMemoryLimit): as
	// the server's Go memory nears it, garbage is collected more often and freed
	// memory is returned to the system sooner. It is not a hard cap. 0 turns it off;
	// a GOMEMLIMIT in the environment wins. Default 256.
	MemoryLimitMB int `toml:"memory_limit_mb"`
}

// Sandbox is the [sandbox] table: WASM tools.
type Sandbox struct {
	// ToolDir holds <name>.wasm and <name>.json. Default "~/.clawbox/tools". Env CLAWBOX_TOOL_DIR.
	ToolDir string `toml:"tool_dir"`
	// DefaultFuel is kept for compatibility with the original clawbox; wazero has no
	// fuel, so it is accepted and not used (fuel_consumed is always 0). Default 100000000.
	DefaultFuel int64 `toml:"default_fuel"`
	// DefaultTimeoutMS is a tool call's wall-time limit when its manifest sets none. Default 30000.
	DefaultTimeoutMS int64 `toml:"default_timeout_ms"`
	// MaxTimeoutMS is the largest wall-time limit a manifest may ask for. Default 120000.
	MaxTimeoutMS int64 `toml:"max_timeout_ms"`
	// MaxMemoryMB caps a tool instance's linear memory. Default 64.
	MaxMemoryMB int `toml:"max_memory_mb"`
	// MaxOutputBytes caps a tool's stdout (output_too_large beyond). Default 1048576.
	MaxOutputBytes int64 `toml:"max_output_bytes"`
	// MaxStderrBytes caps the stderr kept per call. Default 65536.
	MaxStderrBytes int64 `toml:"max_stderr_bytes"`
	// MaxHostCalls caps host calls per execution. Default 100.
	MaxHostCalls int `toml:"max_host_calls"`
	// WatchTools hot-reloads ToolDir. Default true.
	WatchTools bool `toml:"watch_tools"`
	// CacheDir holds wazero's compilation cache. Default "~/.clawbox/cache".
	CacheDir string `toml:"cache_dir"`
	// PoolIdleTimeoutMS is how long a tool's pool of ready instances stays filled
	// without a call; then its instances are closed until the next call (a pool is
	// filled on the tool's first call, not at start). Default 60000.
	PoolIdleTimeoutMS int64 `toml:"pool_idle_timeout_ms"`

	// Limits on a tool's module, checked before it is compiled (a module over one is
	// refused with module_limit_exceeded, naming the key). The defaults are ten times
	// what a large Go-built tool needs.

	// MaxModuleBytes caps a .wasm file. Default 67108864 (64 MiB).
	MaxModuleBytes int64 `toml:"max_module_bytes"`
	// MaxModuleFunctions caps the functions a module defines. Default 100000.
	MaxModuleFunctions int `toml:"max_module_functions"`
	// MaxFunctionLocals caps the locals of one function. Default 10000.
	MaxFunctionLocals int `toml:"max_function_locals"`
	// MaxModuleLocals caps the locals of all functions together. Default 1000000.
	MaxModuleLocals int `toml:"max_module_locals"`
	// MaxFunctionBytes caps one function body. Default 1048576.
	MaxFunctionBytes int `toml:"max_function_bytes"`
	// MaxCodeBytes caps the code section. Default 33554432.
	MaxCodeBytes int `toml:"max_code_bytes"`
	// MaxDataBytes caps the data section. Default 16777216.
	MaxDataBytes int `toml:"max_data_bytes"`
	// MaxTableElements caps the tables' initial elements and the element section. Default 200000.
	MaxTableElements int `toml:"max_table_elements"`
	// MaxModuleImports and MaxModuleExports cap those sections. Default 1000 each.
	MaxModuleImports int `toml:"max_module_imports"`
	MaxModuleExports int `toml:"max_module_exports"`
	// CompileTimeoutMS bounds one module's compilation (checked between functions). Default 120000.
	CompileTimeoutMS int64 `toml:"compile_timeout_ms"`
	// MaxConcurrentCompiles bounds modules compiled at once; each uses every CPU. Default 1.
	MaxConcurrentCompiles int `toml:"max_concurrent_compiles"`
}

// Proxy is the [proxy] table: the egress gateway.
type Proxy struct {
	// MaxResponseBytes caps an upstream response body (reported as truncated). Default 1048576.
	MaxResponseBytes int64 `toml:"max_response_bytes"`
	// MaxRequestBytes caps a request body sent upstream. Default 10485760.
	MaxRequestBytes int64 `toml:"max_request_bytes"`
	// DefaultTimeoutMS is the total time allowed for one upstream request. Default 30000.
	DefaultTimeoutMS int64 `toml:"default_timeout_ms"`
	// RateLimit is the per-sandbox (or per-tool) request rate.
	RateLimit RateLimit `toml:"rate_limit"`
	// MaxConcurrentPerDoor bounds the requests one container's door serves at once;
	// one more is refused with 429 rate_limited before its body is read. Default 8.
	MaxConcurrentPerDoor int `toml:"max_concurrent_per_door"`
	// AllowPrivateCIDRs opens specific special-purpose ranges on purpose (for example
	// "127.0.0.0/8" for a loopback upstream in tests). Default [].
	AllowPrivateCIDRs []string `toml:"allow_private_cidrs"`
	// Hosts maps names to addresses without DNS (tests, split horizons). Default {}.
	Hosts map[string][]string `toml:"hosts"`
	// UpstreamCAFile adds a PEM CA to the system roots for upstream TLS. Default "".
	UpstreamCAFile string `toml:"upstream_ca_file"`
	// MaxStreamBytes caps each body, either way, of a forward-proxy or CONNECT
	// request (those bodies are streamed, not held). Default 4294967296 (4 GiB).
	MaxStreamBytes int64 `toml:"max_stream_bytes"`
	// StreamTimeoutMS bounds one forward-proxy or CONNECT request from dial to the
	// last body byte. Default 600000 (10 minutes).
	StreamTimeoutMS int64 `toml:"stream_timeout_ms"`
	// MaxStreamsPerDoor bounds the forward-proxy and intercepted CONNECT requests
	// one door serves at once (apart from max_concurrent_per_door). Default 32.
	MaxStreamsPerDoor int `toml:"max_streams_per_door"`
	// MaxTunnelsPerDoor bounds the CONNECT tunnels open at once through one door.
	// Default 64.
	MaxTunnelsPerDoor int `toml:"max_tunnels_per_door"`
	// TunnelIdleTimeoutMS ends a tunnel idle that long. Default 120000.
	TunnelIdleTimeoutMS int64 `toml:"tunnel_idle_timeout_ms"`
}

// RateLimit is the [proxy.rate_limit] table.
type RateLimit struct {
	// RequestsPerSecond is the sustained rate per sandbox or tool. Default 10.
	RequestsPerSecond float64 `toml:"requests_per_second"`
	// Burst is how many requests may go at once. Default 50.
	Burst int `toml:"burst"`
	// RefusalsPerSecond is the sustained rate of refused requests (policy, leak,
	// invalid input) a sandbox or tool may cause; once RefusalBurst is spent, every
	// request of it is refused with 429 rate_limited until the budget refills.
	// Default 1.
	RefusalsPerSecond float64 `toml:"refusals_per_second"`
	// RefusalBurst is the refusal budget's bucket size. Default 20.
	RefusalBurst int `toml:"refusal_burst"`
}

// Credentials is the [credentials] table: the encrypted credential store.
type Credentials struct {
	// StorePath is the encrypted store. Default "~/.clawbox/credentials.enc".
	StorePath string `toml:"store_path"`
	// KeyFile holds the 64-hex master key (0600), used when CLAWBOX_MASTER_KEY is
	// unset. Default "~/.clawbox/master.key".
	KeyFile string `toml:"key_file"`
}

// Logging is the [logging] table.
type Logging struct {
	// Format is "json" or "text". Default "json".
	Format string `toml:"format"`
	// Level is "debug", "info", "warn" or "error". Default "info". Env CLAWBOX_LOG_LEVEL.
	Level string `toml:"level"`
	// AuditDir holds audit.jsonl and its rotations. Default "~/.clawbox/audit".
	AuditDir string `toml:"audit_dir"`
	// AuditMaxBytes rotates audit.jsonl at this size. Default 10485760.
	AuditMaxBytes int64 `toml:"audit_max_bytes"`
	// AuditKeepFiles is how many rotated audit files are kept. Default 5.
	AuditKeepFiles int `toml:"audit_keep_files"`
}

// Audit is the [audit] table: what keeps the audit log and its index bounded.
type Audit struct {
	// MaxAge is how long audit records are kept, in the rotated files and in the
	// index. Default "720h" (30 days).
	MaxAge time.Duration `toml:"max_age"`
	// IndexMaxBytes bounds the records in the index (state.db); past it the oldest
	// refusals are deleted first, then the oldest records. Default 268435456.
	IndexMaxBytes int64 `toml:"index_max_bytes"`
	// RetentionInterval is how often MaxAge and IndexMaxBytes are applied. Default "10m".
	RetentionInterval time.Duration `toml:"retention_interval"`
	// RefusalBudget is how many records of refused requests one sandbox or tool gets
	// per AggregateWindow; the rest are written as one record per decision with a
	// count. Default 20.
	RefusalBudget int `toml:"refusal_budget"`
	// AggregateWindow is the window of RefusalBudget. Default "1m".
	AggregateWindow time.Duration `toml:"aggregate_window"`
}

// Store is the [store] table.
type Store struct {
	// Path is the SQLite file. Default "~/.clawbox/state.db".
	Path string `toml:"path"`
}

// Containers is the [containers] table: container sandboxes.
type Containers struct {
	// Backend runs the sandboxes: "docker" (the Docker Engine of this machine) or
	// "kubernetes" (Pods on a cluster, configured by [kubernetes]). Default "docker".
	Backend string `toml:"backend"`
	// MaxContainers bounds sandboxes in creating or running. Default 10.
	MaxContainers int `toml:"max_containers"`
	// WorkspaceRoot holds per-sandbox workspaces. Default "~/.clawbox/workspaces".
	WorkspaceRoot string `toml:"workspace_root"`
	// ProxiesDir holds the per-sandbox socket directories (0700). Default "~/.clawbox/proxies".
	ProxiesDir string `toml:"proxies_dir"`
	// DefaultImage is used when a spawn names none. Default "alpine:latest".
	DefaultImage string `toml:"default_image"`
	// AllowedImages lists allowed repositories; an entry ending in "/" allows the
	// repositories under that path. Empty denies every image.
	// Default ["alpine", "debian", "ubuntu", "python", "node", "clawbox/"].
	AllowedImages []string `toml:"allowed_images"`
	// User runs the workload as "uid:gid". Default "1000:1000".
	User string `toml:"user"`
	// AllowRoot permits a User with uid 0. Default false.
	AllowRoot bool `toml:"allow_root"`
	// PidsLimit bounds processes per sandbox. Default 256 (raise it under gVisor, whose
	// sandbox kernel's host processes count too).
	PidsLimit int64 `toml:"pids_limit"`
	// TmpfsSizeMB sizes the noexec /tmp. Default 256.
	TmpfsSizeMB int `toml:"tmpfs_size_mb"`
	// DefaultMemoryMB applies when a spawn sets none. Default 512.
	DefaultMemoryMB int64 `toml:"default_memory_mb"`
	// MaxMemoryMB is the largest memory a spawn may ask for. Default 4096.
	MaxMemoryMB int64 `toml:"max_memory_mb"`
	// DefaultCPUShares applies when a spawn sets none. Default 1024.
	DefaultCPUShares int64 `toml:"default_cpu_shares"`
	// MaxCPUShares is the largest cpu_shares a spawn may ask for. Default 4096.
	MaxCPUShares int64 `toml:"max_cpu_shares"`
	// MaxCPUs is the largest hard CPU quota ("cpus") a spawn may ask for; 0 means the
	// number of host CPUs. Default 0.
	MaxCPUs float64 `toml:"max_cpus"`
	// DefaultTimeoutMS is a sandbox's lifetime when a spawn sets none. Default 120000.
	DefaultTimeoutMS int64 `toml:"default_timeout_ms"`
	// MaxTimeoutMS is the longest lifetime a spawn may ask for. Default 3600000.
	MaxTimeoutMS int64 `toml:"max_timeout_ms"`
	// Nofile is the open-files ulimit (soft and hard). Default 1024.
	Nofile int64 `toml:"nofile"`
	// StopGrace is the time between SIGTERM and SIGKILL. Default "5s".
	StopGrace time.Duration `toml:"stop_grace"`
	// MaxLogBytes caps each of stdout and stderr kept per sandbox. Default 1048576.
	MaxLogBytes int64 `toml:"max_log_bytes"`
	// Retention keeps finished records (and their logs) this long. Default "1h".
	Retention time.Duration `toml:"retention"`
	// ReaperInterval is how often expired records and orphans are removed. Default "30s".
	ReaperInterval time.Duration `toml:"reaper_interval"`
	// Runtime is the OCI runtime: "" for Docker's default (runc), or "runsc" for gVisor.
	Runtime string `toml:"runtime"`
	// KillOnShutdown kills running sandboxes when the server stops; by default they
	// keep running and the next start adopts them. Default false.
	KillOnShutdown bool `toml:"kill_on_shutdown"`
	// ExecTimeoutMS is an exec's timeout when the request sets none. Default 60000.
	ExecTimeoutMS int64 `toml:"exec_timeout_ms"`
	// MaxExecTimeoutMS is the longest timeout an exec may ask for. Default 3600000.
	MaxExecTimeoutMS int64 `toml:"max_exec_timeout_ms"`
	// MaxExecOutputBytes caps each of an exec's stdout and stderr. Default 1048576.
	MaxExecOutputBytes int64 `toml:"max_exec_output_bytes"`
	// MaxExecs bounds the execs running at once in one sandbox. Default 16.
	MaxExecs int `toml:"max_execs"`
	// MaxFileBytes caps one file written into or read out of a sandbox. Default 104857600.
	MaxFileBytes int64 `toml:"max_file_bytes"`
	// MaxWorkspaceMB is the size quota of a sandbox's workspace. Default 1024.
	MaxWorkspaceMB int64 `toml:"max_workspace_mb"`
	// SystemRootsFile is the host CA bundle appended to each sandbox's
	// /run/clawbox/ca-bundle.pem after its own CA, so that hosts passed through
	// without interception still verify. Default "": the first that exists of
	// /etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt and
	// /etc/ssl/cert.pem.
	SystemRootsFile string `toml:"system_roots_file"`
	// WarmPool lists the warm pools: started, hardened, idle sandboxes a matching
	// spawn claims instead of starting a container. Default [] (none).
	WarmPool []WarmPool `toml:"warm_pool"`
}

// Kubernetes is the [kubernetes] table: the cluster of containers.backend =
// "kubernetes".
type Kubernetes struct {
	// Kubeconfig is the kubeconfig file; "" means in-cluster configuration (the
	// service account of the Pod clawbox runs in). Default "".
	Kubeconfig string `toml:"kubeconfig"`
	// Namespace holds the sandbox Pods; it must exist and admit hostPath volumes
	// (PodSecurity level privileged). Default "clawbox".
	Namespace string `toml:"namespace"`
	// Node is the node clawbox runs on: the sandbox Pods are pinned to it (their
	// socket directories are on this machine). Default: this machine's hostname.
	Node string `toml:"node"`
	// RuntimeClass is the Pods' runtimeClassName ("gvisor", say). Default "".
	RuntimeClass string `toml:"runtime_class"`
	// ImagePullPolicy is "IfNotPresent", "Never" or "Always". Default "IfNotPresent".
	ImagePullPolicy string `toml:"image_pull_policy"`
	// StartTimeout bounds the wait for a Pod to run. Default "2m".
	StartTimeout time.Duration `toml:"start_timeout"`
}

// WarmPool is one [[containers.warm_pool]] entry: either Template or Image (with
// its resource profile), and Size.
type WarmPool struct {
	// Name labels the pool in metrics and health; default: the template's name or
	// the image.
	Name string `toml:"name"`
	// Template names an [images.templates.NAME] table: its image and memory_mb.
	Template string `toml:"template"`
	// Image, MemoryMB, CPUShares, CPUs: the profile a spawn must ask for to match
	// (memory and cpu shares default to the spawn defaults; cpus 0 = no quota).
	Image     string  `toml:"image"`
	MemoryMB  int64   `toml:"memory_mb"`
	CPUShares int64   `toml:"cpu_shares"`
	CPUs      float64 `toml:"cpus"`
	// Runtime must be "" or containers.runtime (a spawn cannot choose its own).
	Runtime string `toml:"runtime"`
	// Size is how many ready sandboxes to keep; at least 1.
	Size int `toml:"size"`
}

// ContainerPolicy is the [container_policy] table.
type ContainerPolicy struct {
	// NetworkAllowlist is the egress policy of every container; a spawn may narrow it. Default [].
	NetworkAllowlist []string `toml:"network_allowlist"`
	// AllowedCredentials are the credential names a spawn may request. Default [].
	AllowedCredentials []string `toml:"allowed_credentials"`
	// AllowedPolicies are the sandbox policies a spawn may ask for. Default ["wasm_only", "container"].
	AllowedPolicies []string `toml:"allowed_policies"`
}

// Tools is the [tools] table.
type Tools struct {
	// DefaultLanguage is the language `clawbox new-tool` scaffolds. Only "go". Default "go".
	DefaultLanguage string `toml:"default_language"`
}

// Images is the [images] table.
type Images struct {
	// Templates are named spawn presets for `clawbox spawn NAME` and MCP.
	Templates map[string]Template `toml:"templates"`
}

// Template is an [images.templates.NAME] table.
type Template struct {
	Image            string            `toml:"image"`             // required
	Description      string            `toml:"description"`       // default ""
	NetworkAllowlist []string          `toml:"network_allowlist"` // narrows [container_policy]; default []
	Credentials      []string          `toml:"credentials"`       // requested credential names; default []
	Command          []string          `toml:"command"`           // overrides the image CMD; default none
	Env              map[string]string `toml:"env"`               // default {}
	MaxLifetimeMS    int64             `toml:"max_lifetime_ms"`   // the sandbox's timeout; default: containers.default_timeout_ms
	MemoryMB         int64             `toml:"memory_mb"`         // default: containers.default_memory_mb
	Workspace        bool              `toml:"workspace"`         // mount a kept /workspace (containers.max_workspace_mb); default false
}

// Default returns the configuration with every default, paths relative to home
// (normally "~/.clawbox", left unexpanded).
func Default(home string) Config {
	if home == "" {
		home = "~/.clawbox"
	}
	p := func(name string) string { return home + "/" + name }
	return Config{
		Server: Server{
			Host:                    client.DefaultHost,
			Port:                    client.DefaultPort,
			AuthTokenFile:           p("token"),
			MaxConcurrentExecutions: 10,
			MaxQueuedExecutions:     100,
			MaxBodyBytes:            10 << 20,
			PublicHealth:            true,
			PublicMetrics:           true,
			ShutdownTimeout:         10 * time.Second,
			AllowedHosts:            []string{},
			AllowedOrigins:          []string{},
			MemoryLimitMB:           256,
		},
		Sandbox: Sandbox{
			ToolDir:           p("tools"),
			DefaultFuel:       100_000_000,
			DefaultTimeoutMS:  30_000,
			MaxTimeoutMS:      120_000,
			MaxMemoryMB:       64,
			MaxOutputBytes:    1 << 20,
			MaxStderrBytes:    64 << 10,
			MaxHostCalls:      100,
			WatchTools:        true,
			CacheDir:          p("cache"),
			PoolIdleTimeoutMS: 60_000,

			MaxModuleBytes:        64 << 20,
			MaxModuleFunctions:    100_000,
			MaxFunctionLocals:     10_000,
			MaxModuleLocals:       1_000_000,
			MaxFunctionBytes:      1 << 20,
			MaxCodeBytes:          32 << 20,
			MaxDataBytes:          16 << 20,
			MaxTableElements:      200_000,
			MaxModuleImports:      1_000,
			MaxModuleExports:      1_000,
			CompileTimeoutMS:      120_000,
			MaxConcurrentCompiles: 1,
		},
		Proxy: Proxy{
			MaxResponseBytes:     1 << 20,
			MaxRequestBytes:      10 << 20,
			DefaultTimeoutMS:     30_000,
			RateLimit:            RateLimit{RequestsPerSecond: 10, Burst: 50, RefusalsPerSecond: 1, RefusalBurst: 20},
			MaxConcurrentPerDoor: 8,
			AllowPrivateCIDRs:    []string{},
			Hosts:                map[string][]string{},
			MaxStreamBytes:       4 << 30,
			StreamTimeoutMS:      600_000,
			MaxStreamsPerDoor:    32,
			MaxTunnelsPerDoor:    64,
			TunnelIdleTimeoutMS:  120_000,
		},
		Credentials: Credentials{
			StorePath: p("credentials.enc"),
			KeyFile:   p("master.key"),
		},
		Logging: Logging{
			Format:         "json",
			Level:          "info",
			AuditDir:       p("audit"),
			AuditMaxBytes:  10 << 20,
			AuditKeepFiles: 5,
		},
		Store: Store{Path: p("state.db")},
		Audit: Audit{
			MaxAge:            720 * time.Hour,
			IndexMaxBytes:     256 << 20,
			RetentionInterval: 10 * time.Minute,
			RefusalBudget:     20,
			AggregateWindow:   time.Minute,
		},
		Kubernetes: Kubernetes{
			Namespace:       "clawbox",
			Node:            hostname(),
			ImagePullPolicy: "IfNotPresent",
			StartTimeout:    2 * time.Minute,
		},
		Containers: Containers{
			Backend:          "docker",
			MaxContainers:    10,
			WorkspaceRoot:    p("workspaces"),
			ProxiesDir:       p("proxies"),
			DefaultImage:     "alpine:latest",
			AllowedImages:    []string{"alpine", "debian", "ubuntu", "python", "node", "clawbox/"},
			User:             "1000:1000",
			PidsLimit:        256,
			TmpfsSizeMB:      256,
			DefaultMemoryMB:  512,
			MaxMemoryMB:      4096,
			DefaultCPUShares: 1024,
			MaxCPUShares:     4096,
			DefaultTimeoutMS: 120_000,
			MaxTimeoutMS:     3_600_000,
			Nofile:           1024,
			StopGrace:        5 * time.Second,
			MaxLogBytes:      1 << 20,
			Retention:        time.Hour,
			ReaperInterval:   30 * time.Second,

			ExecTimeoutMS:      60_000,
			MaxExecTimeoutMS:   3_600_000,
			MaxExecOutputBytes: 1 << 20,
			MaxExecs:           16,
			MaxFileBytes:       100 << 20,
			MaxWorkspaceMB:     1024,
		},
		ContainerPolicy: ContainerPolicy{
			NetworkAllowlist:   []string{},
			AllowedCredentials: []string{},
			AllowedPolicies:    []string{"wasm_only", "container"},
		},
		Tools:  Tools{DefaultLanguage: "go"},
		Images: Images{Templates: map[string]Template{}},
	}
}

// hostname is this machine's name, the default kubernetes.node ("" if unknown).
func hostname() string {
	h, _ := os.Hostname()
	return h
}
