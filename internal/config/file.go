package config

import "strings"

// File returns the commented config file that `clawbox init` writes: every key with
// its default, paths under home. Parsing it gives Default(home).
func File(home string) string {
	return strings.ReplaceAll(fileTemplate, "{{HOME}}", home)
}

const fileTemplate = `# clawbox configuration. Every key is shown with its default value.
# Unknown keys and invalid values are errors that name the key.
# Relative paths are relative to this file's directory; "~" is your home directory.
# Environment overrides: CLAWBOX_HOST, CLAWBOX_PORT, CLAWBOX_AUTH_TOKEN,
# CLAWBOX_TOOL_DIR, CLAWBOX_LOG_LEVEL; CLAWBOX_MASTER_KEY for the credential store.

[server]
# TCP address and port of the HTTP API.
host = "127.0.0.1"
port = 9800
# The API bearer token: inline (auth_token) or in a file (auth_token_file, 0600).
# clawbox init writes the file; an inline token, if set, wins.
# auth_token = ""
auth_token_file = "{{HOME}}/token"
# Also serve the API on this Unix socket (mode 0600). Empty: off.
unix_socket = ""
# Executions running at once, and waiting for a slot (beyond: 503 busy).
max_concurrent_executions = 10
max_queued_executions = 100
# Largest request body, in bytes (beyond: 413).
max_body_bytes = 10485760
# Serve /health and /metrics without a token.
public_health = true
public_metrics = true
# How long a graceful shutdown may take.
shutdown_timeout = "10s"
# Host names the API answers to besides localhost, 127.0.0.1, [::1] and the address
# a connection arrived at: "name" (any port) or "name:port". Other names are refused
# (421 host_not_allowed), so a DNS-rebinding web page cannot read the API.
allowed_hosts = []
# Browser origins allowed besides the server's own, e.g. ["https://ui.example"];
# a request with any other Origin header is refused (403 origin_not_allowed).
allowed_origins = []
# The Go runtime's soft memory limit, in MiB: near it, garbage is collected more
# often and freed memory returned sooner (not a hard cap). 0: off. GOMEMLIMIT wins.
memory_limit_mb = 256

[sandbox]
# WASM tools: <name>.wasm with an optional <name>.json manifest.
tool_dir = "{{HOME}}/tools"
# Kept for compatibility; wazero has no fuel, so it is not used (fuel_consumed is 0).
default_fuel = 100000000
# A tool call's wall-time limit when its manifest sets none, and the largest allowed.
default_timeout_ms = 30000
max_timeout_ms = 120000
# Linear memory cap of a tool instance, in MiB.
max_memory_mb = 64
# Caps on a call's stdout (beyond: output_too_large) and on the stderr kept.
max_output_bytes = 1048576
max_stderr_bytes = 65536
# Host calls allowed per execution.
max_host_calls = 100
# Reload tools when tool_dir changes.
watch_tools = true
# wazero's compilation cache.
cache_dir = "{{HOME}}/cache"
# A tool's ready instances are made on its first call and closed after this long
# without one.
pool_idle_timeout_ms = 60000
# Limits on a tool's module, checked before compiling it (beyond one: the tool is
# refused with module_limit_exceeded naming the key). Defaults are about ten times
# what a large Go-built tool needs. Sizes in bytes.
max_module_bytes = 67108864
max_module_functions = 100000
max_function_locals = 10000
max_module_locals = 1000000
max_function_bytes = 1048576
max_code_bytes = 33554432
max_data_bytes = 16777216
# Initial table elements of all tables, and the size of the element section.
max_table_elements = 200000
max_module_imports = 1000
max_module_exports = 1000
# One compilation's time limit, and modules compiled at once (each uses every CPU).
compile_timeout_ms = 120000
max_concurrent_compiles = 1

[proxy]
# Upstream response body cap (the response says truncated), request body cap.
max_response_bytes = 1048576
max_request_bytes = 10485760
# Total time for one upstream request.
default_timeout_ms = 30000
# Special-purpose address ranges opened on purpose, e.g. ["127.0.0.0/8"] for tests.
allow_private_cidrs = []
# Upstream TLS: a PEM CA added to the system roots.
upstream_ca_file = ""
# Requests one container's door serves at once; one more gets 429 rate_limited
# before its body is read (with max_request_bytes, this bounds a sandbox's memory).
max_concurrent_per_door = 8
# The forward-proxy and CONNECT doors stream bodies: a cap on each body either
# way, the time one request may take, requests and tunnels one door serves at
# once, and how long an idle tunnel stays open.
max_stream_bytes = 4294967296
stream_timeout_ms = 600000
max_streams_per_door = 32
max_tunnels_per_door = 64
tunnel_idle_timeout_ms = 120000

[proxy.rate_limit]
# Per sandbox or tool: sustained requests per second, and burst.
requests_per_second = 10.0
burst = 50
# Per sandbox or tool: refused requests (policy, leak, invalid input) per second,
# and burst. Once spent, every request of that caller gets 429 rate_limited,
# before its body is read, until the budget refills.
refusals_per_second = 1.0
refusal_burst = 20

[proxy.hosts]
# Names resolved without DNS, e.g. upstream = ["127.0.0.1"].

[credentials]
# The encrypted credential store and its 64-hex master key (used when
# CLAWBOX_MASTER_KEY is unset).
store_path = "{{HOME}}/credentials.enc"
key_file = "{{HOME}}/master.key"

[logging]
# Server log format ("json" or "text") and level ("debug", "info", "warn", "error").
format = "json"
level = "info"
# Audit log directory, rotation size and rotated files kept.
audit_dir = "{{HOME}}/audit"
audit_max_bytes = 10485760
audit_keep_files = 5

[audit]
# How long audit records are kept (rotated files and the index in state.db).
max_age = "720h"
# Size bound of the index's records; past it the oldest refusals go first.
index_max_bytes = 268435456
# How often max_age and index_max_bytes are applied.
retention_interval = "10m"
# Records of refused requests one sandbox or tool gets per window; the rest become
# one record per decision with a "count" when the window ends.
refusal_budget = 20
aggregate_window = "1m"

[store]
# The SQLite state file.
path = "{{HOME}}/state.db"

[containers]
# What runs the sandboxes: "docker" (this machine's Docker Engine) or "kubernetes"
# (Pods on a cluster, see [kubernetes] and README, "Running on Kubernetes").
backend = "docker"
# Sandboxes in creating or running at once.
max_containers = 10
# Per-sandbox workspaces and socket directories.
workspace_root = "{{HOME}}/workspaces"
proxies_dir = "{{HOME}}/proxies"
# Image used when a spawn names none, and the allowed repositories
# (an entry ending in "/" allows everything under that path; [] denies all).
default_image = "alpine:latest"
allowed_images = ["alpine", "debian", "ubuntu", "python", "node", "clawbox/"]
# The workload's user; uid 0 needs allow_root = true.
user = "1000:1000"
allow_root = false
# Process limit (raise it under gVisor, whose sandbox kernel's processes count too).
pids_limit = 256
# Size of the noexec /tmp, in MiB.
tmpfs_size_mb = 256
# Resources: the default when a spawn sets none, and the most a spawn may ask for.
default_memory_mb = 512
max_memory_mb = 4096
default_cpu_shares = 1024
max_cpu_shares = 4096
# Hard CPU quota a spawn may ask for; 0 means the number of host CPUs.
max_cpus = 0.0
default_timeout_ms = 120000
max_timeout_ms = 3600000
# Open-files ulimit.
nofile = 1024
# Time between SIGTERM and SIGKILL when a sandbox stops.
stop_grace = "5s"
# Cap on each of stdout and stderr kept per sandbox.
max_log_bytes = 1048576
# How long finished sandboxes (and their logs) stay readable.
retention = "1h"
# How often expired records and orphaned containers are removed.
reaper_interval = "30s"
# OCI runtime: "" for Docker's default (runc), "runsc" for gVisor (see README).
runtime = ""
# Kill running sandboxes on shutdown; by default the next start adopts them.
kill_on_shutdown = false
# Exec (through the in-sandbox supervisor): the timeout when a request sets none,
# the longest one a request may ask for, the cap on each output stream, and how
# many execs may run at once in one sandbox.
exec_timeout_ms = 60000
max_exec_timeout_ms = 3600000
max_exec_output_bytes = 1048576
max_execs = 16
# Cap on one file written into or read out of a sandbox.
max_file_bytes = 104857600
# Size quota of a sandbox's workspace (capabilities.workspace), in MiB.
max_workspace_mb = 1024
# The host CA bundle appended to each sandbox's /run/clawbox/ca-bundle.pem after its
# own CA (for hosts passed through without interception); "" finds the system's.
system_roots_file = ""
# Warm pools: started, hardened, idle sandboxes that a spawn of the same image and
# resource profile (memory_mb, cpu_shares, cpus) claims in milliseconds instead of
# starting a container (README, "Warm spawns"). Pooled sandboxes count against
# max_containers. Off by default; to keep two alpine sandboxes ready, uncomment:
# warm_pool = [{ image = "alpine:latest", size = 2 }]
# or name a template: warm_pool = [{ template = "researcher", size = 1 }]

[container_policy]
# Egress rules of every container; a spawn may narrow them, never widen them.
# Forms: "api.github.com", "*.github.com", "GET,HEAD https://api.github.com/repos/", "!deny.example.com".
network_allowlist = []
# Credential names a spawn may request.
allowed_credentials = []
# Sandbox policies a spawn may ask for ("wasm_only", "container", "container_direct").
allowed_policies = ["wasm_only", "container"]

[kubernetes]
# Used when containers.backend = "kubernetes". The kubeconfig file ("" = in-cluster).
kubeconfig = ""
# The namespace of the sandbox Pods: it must exist and admit hostPath volumes
# (PodSecurity level privileged; the Pods are hardened by clawbox itself).
namespace = "clawbox"
# The node this server runs on (the Pods are pinned to it); default: the hostname.
# node = "worker-1"
# runtimeClassName of the Pods ("" = the cluster's default; "gvisor", say).
runtime_class = ""
# "IfNotPresent", "Never" or "Always".
image_pull_policy = "IfNotPresent"
# How long a spawn waits for its Pod to run.
start_timeout = "2m"

[tools]
# Language that clawbox new-tool scaffolds (only "go").
default_language = "go"

# Spawn templates for "clawbox spawn NAME":
# [images.templates.researcher]
# image = "python:3.12-slim"
# description = "Python with access to the GitHub API"
# network_allowlist = ["api.github.com"]
# credentials = ["GITHUB_TOKEN"]
# command = ["python3", "-c", "print('hello')"]
# max_lifetime_ms = 600000
# memory_mb = 512
# workspace = true        # a kept, quota-bounded /workspace
`
