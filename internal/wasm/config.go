package wasm

import (
	"log/slog"
	"time"

	"github.com/clawbox/clawbox/api"
)

// Config holds the engine's server-wide limits and dependencies. Zero fields take the
// documented defaults; limits from a tool manifest are clamped by these maxima.
type Config struct {
	// CacheDir holds wazero's compilation cache; empty means no on-disk cache.
	CacheDir string

	// DefaultTimeout is a call's wall-time limit when neither the manifest nor the
	// request sets one. Default 30s.
	DefaultTimeout time.Duration
	// MaxTimeout is the largest wall-time limit a manifest or request gets. Default 120s.
	MaxTimeout time.Duration
	// MaxMemoryMB caps an instance's linear memory (and is the limit when the
	// manifest sets none). Default 64.
	MaxMemoryMB int
	// MaxOutputBytes caps a call's stdout; beyond it the call fails with
	// output_too_large. Default 1 MiB.
	MaxOutputBytes int64
	// MaxStderrBytes is how much of a call's stderr is kept (the tail). Default 64 KiB.
	MaxStderrBytes int64
	// MaxHostCalls caps host calls per call. Default 100.
	MaxHostCalls int
	// MaxLogEntries caps the "log" entries kept per call. Default 100.
	MaxLogEntries int
	// MaxLogBytes caps the total size of log messages kept per call. Default 64 KiB.
	MaxLogBytes int
	// MaxHostRequestBytes caps one host_call request. Default 16 MiB.
	MaxHostRequestBytes int
	// Modules bounds the structure of a module, checked before compiling it.
	Modules ModuleLimits
	// MaxConcurrentCompiles bounds modules compiled at once (each uses every CPU:
	// wazero compiles its functions in parallel). Default 1.
	MaxConcurrentCompiles int
	// CompileTimeout bounds one compilation. wazero checks it between functions (one
	// function's compilation is bounded by the module limits instead). Default 120s.
	CompileTimeout time.Duration

	// PoolSize is how many instances, restored from its snapshot, each reactor
	// tool keeps ready. Default 2; a negative value disables snapshots and the
	// pool (each call then initialises its own instance).
	PoolSize int
	// PoolIdleTimeout is how long a pool stays full without a call; then its
	// instances are closed and its snapshot dropped until the next call. Pools are
	// filled on a tool's first call, not when it loads. Default 60s; a negative value keeps them full.
	PoolIdleTimeout time.Duration

	// HTTP performs the tools' http_request host calls; nil answers them with a
	// "network unavailable" error.
	HTTP HTTPDoer
	// Logger receives the engine's diagnostics; nil means slog.Default().
	Logger *slog.Logger

	// timer, in tests, replaces the pools' idle timer.
	timer timerFunc
}

const (
	defaultTimeout             = 30 * time.Second
	defaultMaxTimeout          = 120 * time.Second
	defaultMaxMemoryMB         = 64
	defaultMaxOutputBytes      = 1 << 20
	defaultMaxStderrBytes      = 64 << 10
	defaultMaxHostCalls        = 100
	defaultMaxLogEntries       = 100
	defaultMaxLogBytes         = 64 << 10
	defaultMaxHostRequestBytes = 16 << 20
	defaultPoolSize            = 2
	defaultPoolIdleTimeout     = 60 * time.Second
	defaultCompileTimeout      = 120 * time.Second

	// maxMemoryMBLimit is wasm32's 4 GiB address space.
	maxMemoryMBLimit = 4096
	// stderrTailBytes is how much of stderr goes into a tool_failed error's details.
	stderrTailBytes = 4 << 10
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = defaultTimeout
	}
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = defaultMaxTimeout
	}
	if c.DefaultTimeout > c.MaxTimeout {
		c.DefaultTimeout = c.MaxTimeout
	}
	if c.MaxMemoryMB <= 0 {
		c.MaxMemoryMB = defaultMaxMemoryMB
	}
	if c.MaxMemoryMB > maxMemoryMBLimit {
		c.MaxMemoryMB = maxMemoryMBLimit
	}
	if c.MaxOutputBytes <= 0 {
		c.MaxOutputBytes = defaultMaxOutputBytes
	}
	if c.MaxStderrBytes <= 0 {
		c.MaxStderrBytes = defaultMaxStderrBytes
	}
	if c.MaxHostCalls <= 0 {
		c.MaxHostCalls = defaultMaxHostCalls
	}
	if c.MaxLogEntries <= 0 {
		c.MaxLogEntries = defaultMaxLogEntries
	}
	if c.MaxLogBytes <= 0 {
		c.MaxLogBytes = defaultMaxLogBytes
	}
	if c.MaxHostRequestBytes <= 0 {
		c.MaxHostRequestBytes = defaultMaxHostRequestBytes
	}
	c.Modules = c.Modules.withDefaults()
	if c.MaxConcurrentCompiles <= 0 {
		c.MaxConcurrentCompiles = 1
	}
	if c.CompileTimeout <= 0 {
		c.CompileTimeout = defaultCompileTimeout
	}
	if c.PoolSize == 0 {
		c.PoolSize = defaultPoolSize
	}
	if c.PoolIdleTimeout == 0 {
		c.PoolIdleTimeout = defaultPoolIdleTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// limits are the resolved per-tool limits.
type limits struct {
	defaultTimeout time.Duration
	maxTimeout     time.Duration
	memoryPages    uint32
}

// toolLimits resolves a manifest's resources against the server maxima.
func (c Config) toolLimits(m *api.ToolManifest) limits {
	l := limits{
		defaultTimeout: c.DefaultTimeout,
		maxTimeout:     c.MaxTimeout,
		memoryPages:    mbToPages(c.MaxMemoryMB),
	}
	if m == nil || m.Resources == nil {
		return l
	}
	r := m.Resources
	if r.MaxTimeoutMS > 0 {
		l.maxTimeout = min(time.Duration(r.MaxTimeoutMS)*time.Millisecond, c.MaxTimeout)
	}
	if r.DefaultTimeoutMS > 0 {
		l.defaultTimeout = time.Duration(r.DefaultTimeoutMS) * time.Millisecond
	}
	l.defaultTimeout = min(l.defaultTimeout, l.maxTimeout)
	if r.DefaultMemoryMB > 0 && r.DefaultMemoryMB < int64(c.MaxMemoryMB) {
		l.memoryPages = mbToPages(int(r.DefaultMemoryMB))
	}
	return l
}

// timeout is the wall-time limit of one call that asked for requested (0: none).
func (l limits) timeout(requested time.Duration) time.Duration {
	if requested <= 0 {
		return l.defaultTimeout
	}
	return min(requested, l.maxTimeout)
}

func mbToPages(mb int) uint32 { return uint32(mb) * 16 } // 64 KiB pages
