package sandbox

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Config is the container sandbox configuration. A zero field takes the default named
// in its comment (except where said otherwise); internal/config maps the TOML keys
// [containers] and [container_policy] onto it.
type Config struct {
	// InstanceID labels this server's containers; required.
	InstanceID string
	// ProxiesDir is the base of the per-sandbox socket directories (made 0700);
	// required.
	ProxiesDir string
	// AllowedImages: entries without a trailing "/" allow one repository (any tag or
	// digest), entries ending in "/" allow the repositories under that path. nil
	// means the default ["alpine", "debian", "ubuntu", "python", "node", "clawbox/"];
	// an empty non-nil list denies every image.
	AllowedImages []string
	// DefaultImage is used when a spawn names none. Default "alpine:latest".
	DefaultImage string
	// User runs the workload as "uid:gid". Default "1000:1000".
	User string
	// AllowRoot permits a User with uid 0. Default false.
	AllowRoot bool
	// PidsLimit bounds processes per sandbox. Default 256. Under gVisor (runsc) the
	// sandbox kernel's host processes count too, so raise it there.
	PidsLimit int64
	// TmpfsSizeMB sizes the noexec /tmp. Default 256.
	TmpfsSizeMB int
	// DefaultMemoryMB / MaxMemoryMB: memory per sandbox. Defaults 512 and 4096.
	DefaultMemoryMB, MaxMemoryMB int64
	// DefaultCPUShares / MaxCPUShares: relative CPU weight. Defaults 1024 and 4096.
	DefaultCPUShares, MaxCPUShares int64
	// MaxCPUs bounds the optional hard CPU quota. Default (0): the host's CPU count.
	MaxCPUs float64
	// DefaultTimeout / MaxTimeout: a sandbox's lifetime. Defaults 2m and 1h.
	DefaultTimeout, MaxTimeout time.Duration
	// Nofile is the open-files ulimit (soft = hard). Default 1024.
	Nofile int64
	// StopGrace is the time between SIGTERM and SIGKILL. Default 5s.
	StopGrace time.Duration
	// MaxLogBytes caps each of stdout and stderr kept. Default 1 MiB.
	MaxLogBytes int64
	// Retention keeps finished records and their logs. Default 1h.
	Retention time.Duration
	// ReaperInterval is the reaper's period. Default 30s.
	ReaperInterval time.Duration
	// Runtime is the OCI runtime: "" for the engine's default (runc) or "runsc"
	// (gVisor; seen working with the engine runtime args
	// --platform=ptrace --network=none --host-uds=open).
	Runtime string
	// MaxContainers bounds sandboxes in creating or running. Default 10.
	MaxContainers int
	// KillOnShutdown kills running sandboxes at Shutdown; by default they keep
	// running for the next start to adopt. Default false.
	KillOnShutdown bool
	// AllowedPolicies are the policies a spawn may ask for (compared
	// case-insensitively). nil means the default ["wasm_only", "container"].
	AllowedPolicies []string
	// NetworkAllowlist is every container's egress allowlist; a spawn may narrow it.
	// Default: empty (no network).
	NetworkAllowlist []string
	// AllowedCredentials are the credential names a spawn may request. Default none.
	AllowedCredentials []string
	// SupervisorDir holds the supervisor binary mounted into every sandbox (a
	// content-addressed file, 0555). Default: "supervisor" beside ProxiesDir.
	SupervisorDir string
	// ExecTimeout is an exec's timeout when the request names none; MaxExecTimeout
	// bounds what a request may ask for. Defaults 60s and 1h.
	ExecTimeout, MaxExecTimeout time.Duration
	// MaxExecOutputBytes caps each of an exec's stdout and stderr (the rest is
	// dropped, the command keeps running). Default 1 MiB.
	MaxExecOutputBytes int64
	// MaxExecs bounds the execs running at once in one sandbox. Default 16.
	MaxExecs int
	// MaxFileBytes caps one file written into a sandbox or read out of it.
	// Default 100 MiB.
	MaxFileBytes int64
	// MaxWorkspaceMB is the quota of a sandbox's workspace. Default 1024.
	MaxWorkspaceMB int64
	// SystemRootsFile is the host's CA bundle, appended to each sandbox's
	// ca-bundle.pem after its own CA so that hosts passed through without
	// interception still verify. Default: the first that exists of
	// /etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt and
	// /etc/ssl/cert.pem (none: the bundle holds the sandbox's CA only).
	SystemRootsFile string
	// Pools are the warm pools ([[containers.warm_pool]]); none by default.
	Pools []PoolConfig
}

// PoolConfig is one warm pool: Size started, hardened, idle sandboxes of one
// image and resource profile, each waiting for a spawn to claim it (see
// docs/warm-pool.md). A spawn matches a pool when its image and its resource
// profile (memory, cpu shares, cpus; the runtime is the server's) are the
// pool's, its policy is "container" and it asks for no workspace.
type PoolConfig struct {
	// Key is where the entry was configured ("containers.warm_pool[0]"): error
	// messages name it.
	Key string
	// Name labels the pool in metrics, health and the container label
	// clawbox.pool; unique. Default: the image as configured.
	Name  string
	Image string
	// MemoryMB and CPUShares default to the spawn defaults; CPUs 0 is no hard
	// quota (as a spawn that sets none).
	MemoryMB, CPUShares int64
	CPUs                float64
	// Runtime must be "" or the server's runtime (containers.runtime).
	Runtime string
	// Size is how many ready sandboxes to keep (1 or more).
	Size int
}

// Check reports the first invalid field of c (with defaults applied), as New
// would: a server checks its configuration with it before the engine answers.
func (c Config) Check() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults returns c with every zero field defaulted, or an error naming the
// first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.InstanceID == "" {
		return c, errors.New("sandbox config: instance id is required")
	}
	if c.ProxiesDir == "" {
		return c, errors.New("sandbox config: proxies dir is required")
	}
	if n := len(filepath.Join(c.ProxiesDir, "clawbox-00000000-0000-0000-0000-000000000000", "proxy.sock")); n > maxSocketPath {
		return c, fmt.Errorf("sandbox config: proxies dir %q is too long: its socket paths would be %d bytes, the limit is %d", c.ProxiesDir, n, maxSocketPath)
	}
	if c.AllowedImages == nil {
		c.AllowedImages = []string{"alpine", "debian", "ubuntu", "python", "node", "clawbox/"}
	}
	def := func(p *int64, v int64) {
		if *p == 0 {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	if c.DefaultImage == "" {
		c.DefaultImage = "alpine:latest"
	}
	if c.User == "" {
		c.User = "1000:1000"
	}
	def(&c.PidsLimit, 256)
	if c.TmpfsSizeMB == 0 {
		c.TmpfsSizeMB = 256
	}
	def(&c.DefaultMemoryMB, 512)
	def(&c.MaxMemoryMB, 4096)
	def(&c.DefaultCPUShares, 1024)
	def(&c.MaxCPUShares, 4096)
	if c.MaxCPUs == 0 {
		c.MaxCPUs = float64(runtime.NumCPU())
	}
	defD(&c.DefaultTimeout, 2*time.Minute)
	defD(&c.MaxTimeout, time.Hour)
	def(&c.Nofile, 1024)
	defD(&c.StopGrace, 5*time.Second)
	def(&c.MaxLogBytes, 1<<20)
	defD(&c.Retention, time.Hour)
	defD(&c.ReaperInterval, 30*time.Second)
	if c.MaxContainers == 0 {
		c.MaxContainers = 10
	}
	if c.SupervisorDir == "" {
		c.SupervisorDir = filepath.Join(filepath.Dir(c.ProxiesDir), "supervisor")
	}
	defD(&c.ExecTimeout, time.Minute)
	defD(&c.MaxExecTimeout, time.Hour)
	def(&c.MaxExecOutputBytes, 1<<20)
	if c.MaxExecs == 0 {
		c.MaxExecs = 16
	}
	def(&c.MaxFileBytes, 100<<20)
	def(&c.MaxWorkspaceMB, 1024)
	if c.AllowedPolicies == nil {
		c.AllowedPolicies = []string{"wasm_only", "container"}
	}
	switch {
	case c.DefaultMemoryMB > c.MaxMemoryMB || c.DefaultMemoryMB < minMemory(c.Runtime):
		return c, fmt.Errorf("sandbox config: default_memory_mb %d must be between %d and max_memory_mb %d", c.DefaultMemoryMB, minMemory(c.Runtime), c.MaxMemoryMB)
	case c.DefaultCPUShares > c.MaxCPUShares || c.DefaultCPUShares < minCPUShares:
		return c, fmt.Errorf("sandbox config: default_cpu_shares %d must be between %d and max_cpu_shares %d", c.DefaultCPUShares, minCPUShares, c.MaxCPUShares)
	case c.DefaultTimeout > c.MaxTimeout || c.DefaultTimeout < 0:
		return c, fmt.Errorf("sandbox config: default timeout %s is above the max timeout %s", c.DefaultTimeout, c.MaxTimeout)
	case c.ExecTimeout > c.MaxExecTimeout || c.ExecTimeout < 0:
		return c, fmt.Errorf("sandbox config: exec timeout %s must be between 0 and the max exec timeout %s", c.ExecTimeout, c.MaxExecTimeout)
	case c.MaxExecOutputBytes < 0 || c.MaxExecs < 0 || c.MaxFileBytes < 0:
		return c, errors.New("sandbox config: exec and file limits must not be negative")
	case c.PidsLimit < 0 || c.TmpfsSizeMB < 0 || c.Nofile < 0 || c.MaxLogBytes < 0 || c.MaxContainers < 0 || c.MaxCPUs < 0:
		return c, errors.New("sandbox config: limits must not be negative")
	}
	if err := checkUser(c.User, c.AllowRoot); err != nil {
		return c, err
	}
	if _, err := NormalizeImage(c.DefaultImage); err != nil {
		return c, fmt.Errorf("sandbox config: default_image: %w", err)
	}
	pools, err := c.checkPools()
	if err != nil {
		return c, err
	}
	c.Pools = pools
	return c, nil
}

// checkPools validates the warm pools against the policy a spawn meets (the
// image allowlist, the resource maxima, the runtime, max_containers) and
// fills in their defaults. An error names the pool's key.
func (c Config) checkPools() ([]PoolConfig, error) {
	if len(c.Pools) == 0 {
		return nil, nil
	}
	out := make([]PoolConfig, 0, len(c.Pools))
	names := map[string]string{}
	total := 0
	for i, pc := range c.Pools {
		key := pc.Key
		if key == "" {
			key = fmt.Sprintf("containers.warm_pool[%d]", i)
			pc.Key = key
		}
		bad := func(field, format string, args ...any) error {
			return fmt.Errorf("sandbox config: %s.%s: %s", key, field, fmt.Sprintf(format, args...))
		}
		img, err := ImageAllowed(pc.Image, c.AllowedImages)
		if err != nil {
			return nil, bad("image", "%v", err)
		}
		if pc.Name == "" {
			pc.Name = pc.Image // as configured: shorter than the normalized reference
		}
		pc.Image = img
		if !poolNameRE.MatchString(pc.Name) {
			return nil, bad("name", "%q must be 1-128 characters of letters, digits and . _ / : @ -", pc.Name)
		}
		if other, dup := names[pc.Name]; dup {
			return nil, bad("name", "%q is also the name of %s: give each pool its own name", pc.Name, other)
		}
		names[pc.Name] = key
		if pc.MemoryMB == 0 {
			pc.MemoryMB = c.DefaultMemoryMB
		}
		if pc.MemoryMB < minMemory(c.Runtime) || pc.MemoryMB > c.MaxMemoryMB {
			return nil, bad("memory_mb", "%d must be between %d and containers.max_memory_mb %d", pc.MemoryMB, minMemory(c.Runtime), c.MaxMemoryMB)
		}
		if pc.CPUShares == 0 {
			pc.CPUShares = c.DefaultCPUShares
		}
		if pc.CPUShares < minCPUShares || pc.CPUShares > c.MaxCPUShares {
			return nil, bad("cpu_shares", "%d must be between %d and containers.max_cpu_shares %d", pc.CPUShares, minCPUShares, c.MaxCPUShares)
		}
		if pc.CPUs < 0 || pc.CPUs != pc.CPUs || pc.CPUs > c.MaxCPUs {
			return nil, bad("cpus", "%g must be between 0 and containers.max_cpus %g", pc.CPUs, c.MaxCPUs)
		}
		if pc.Runtime != "" && pc.Runtime != c.Runtime {
			return nil, bad("runtime", "%q is not the server's runtime %q (containers.runtime): a spawn cannot choose its runtime, so no spawn would match", pc.Runtime, c.Runtime)
		}
		pc.Runtime = c.Runtime
		if pc.Size < 1 {
			return nil, bad("size", "must be at least 1, got %d (remove the entry to have no pool)", pc.Size)
		}
		if !slices.ContainsFunc(c.AllowedPolicies, func(a string) bool { return strings.EqualFold(a, string(PolicyContainer)) }) {
			return nil, fmt.Errorf("sandbox config: %s: pooled sandboxes have policy %q, which container_policy.allowed_policies does not allow", key, PolicyContainer)
		}
		for _, o := range out {
			if o.sameProfile(pc) {
				return nil, fmt.Errorf("sandbox config: %s: same image and resource profile as %s: a spawn would only ever match the first", key, o.Key)
			}
		}
		total += pc.Size
		out = append(out, pc)
	}
	if total > c.MaxContainers {
		return nil, fmt.Errorf("sandbox config: containers.warm_pool: the pools keep %d sandboxes, more than containers.max_containers %d (pooled sandboxes count against it)", total, c.MaxContainers)
	}
	return out, nil
}

var poolNameRE = regexp.MustCompile(`^[A-Za-z0-9._/:@-]{1,128}$`)

// nanoCPUs is the pool's hard CPU quota as a spawn plan holds it.
func (pc PoolConfig) nanoCPUs() int64 { return int64(pc.CPUs * 1e9) }

func (pc PoolConfig) sameProfile(o PoolConfig) bool {
	return pc.Image == o.Image && pc.MemoryMB == o.MemoryMB && pc.CPUShares == o.CPUShares && pc.nanoCPUs() == o.nanoCPUs()
}

// checkUser validates "uid[:gid]" (numeric, so no passwd lookup inside the image) and
// refuses uid 0 unless allowRoot.
func checkUser(user string, allowRoot bool) error {
	uid, gid, hasGID := strings.Cut(user, ":")
	if !isNumeric(uid) || (hasGID && !isNumeric(gid)) {
		return fmt.Errorf("sandbox config: user %q must be numeric uid:gid", user)
	}
	if strings.Trim(uid, "0") == "" && !allowRoot {
		return fmt.Errorf("sandbox config: user %q is root; set allow_root to permit it", user)
	}
	return nil
}

func isNumeric(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path less its NUL).
const maxSocketPath = 107

// Smallest accepted limits (the engine refuses less memory; a share below 2 is
// meaningless).
const (
	minMemoryMB  = 6
	minCPUShares = 2
)

// minMemoryMBGVisor is the smallest memory limit under gVisor: runsc's own sandbox
// processes (and the engine's start hook) run inside the container's memory limit,
// and below about 32 MB creating the container fails on a loaded host (the runtime
// is killed with the limit's OOM before the workload starts).
const minMemoryMBGVisor = 64

// minMemory is the smallest memory limit a sandbox may have under runtime.
func minMemory(runtime string) int64 {
	if runtime == "runsc" {
		return minMemoryMBGVisor
	}
	return minMemoryMB
}
