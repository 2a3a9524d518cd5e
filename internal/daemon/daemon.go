// Package daemon assembles and runs `clawbox serve`: it prepares the directories the
// configuration names, opens the store, builds each subsystem and the HTTP server,
// listens, and on shutdown stops them in reverse order. It is the one place where
// the domain packages are wired together.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/containers"
	"github.com/clawbox/clawbox/internal/egress"
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/sandbox/docker"
	"github.com/clawbox/clawbox/internal/secrets"
	"github.com/clawbox/clawbox/internal/server"
	"github.com/clawbox/clawbox/internal/store"
	"github.com/clawbox/clawbox/internal/toolexec"
	"github.com/clawbox/clawbox/internal/unixsock"
	"github.com/clawbox/clawbox/internal/version"
	"github.com/clawbox/clawbox/internal/wasm"
)

// Options are the process-level inputs of Run.
type Options struct {
	// Logger receives the server's logs. Default: built from cfg.Logging on Stderr.
	Logger *slog.Logger
	// Stderr receives logs when Logger is nil. Default os.Stderr.
	Stderr io.Writer
	// Ready, if set, is called once every listener is up, with their addresses.
	Ready func(addrs []string)
}

// NewLogger returns the slog logger that cfg.Logging describes, writing to w.
func NewLogger(l config.Logging, w io.Writer) *slog.Logger {
	var level slog.Level
	switch l.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Run serves clawbox with cfg until ctx is canceled, then shuts down gracefully.
// It starts the parts in order, each step registering the release of what it
// started, and stops them in reverse order on every path out, at most once.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	log := opts.Logger
	if log == nil {
		log = NewLogger(cfg.Logging, opts.Stderr)
	}
	p := &parts{cfg: cfg, log: log}
	defer p.shutdown(ctx)
	steps := []func(context.Context) error{
		p.prepare,
		p.limitMemory,
		p.openStore,
		p.newServer,
		p.startAudit,
		p.openCredentials,
		p.startGateway,
		p.startContainers,
		p.startAgents,
		p.startTools,
		p.listen,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return p.serve(ctx, opts.Ready)
}

// parts are the parts of a running server, filled in by Run's steps in order.
type parts struct {
	cfg *config.Config
	log *slog.Logger

	token      string
	db         *store.DB
	instanceID string
	reg        *prometheus.Registry
	srv        *server.Server
	audit      *audit.Writer
	creds      *secrets.Store // nil without a master key
	scan       *secrets.Store // never nil: creds, or secrets.PatternsOnly() without a master key
	gw         *egress.Gateway
	policies   policySource
	sandboxes  func() (*sandbox.Manager, error) // the container sandboxes' manager, or why there is none
	listeners  []net.Listener
	addrs      []string

	stops []stop // releases, in start order
}

// stop is the release of one started part, with the time it may take.
type stop struct {
	timeout time.Duration // 0: fn does not wait on anything that needs a deadline
	fn      func(context.Context)
}

// onStop registers the release of the part just started.
func (p *parts) onStop(timeout time.Duration, fn func(context.Context)) {
	p.stops = append(p.stops, stop{timeout: timeout, fn: fn})
}

// shutdown releases every started part in reverse start order. Each release is
// run once: a second shutdown does nothing.
func (p *parts) shutdown(ctx context.Context) {
	base := context.WithoutCancel(ctx)
	for i := len(p.stops) - 1; i >= 0; i-- {
		s := p.stops[i]
		sctx, cancel := base, context.CancelFunc(func() {})
		if s.timeout > 0 {
			sctx, cancel = context.WithTimeout(base, s.timeout)
		}
		s.fn(sctx)
		cancel()
	}
	p.stops = nil
}

// prepare reads the API token and creates the directories the configuration names.
func (p *parts) prepare(context.Context) error {
	token, err := p.cfg.Token()
	if err != nil {
		return err
	}
	p.token = token
	return prepareDirs(p.cfg)
}

// limitMemory sets the Go runtime's soft memory limit to server.memory_limit_mb,
// unless it is off (0) or a limit is already set (GOMEMLIMIT in the environment,
// or the program embedding the server): that one is kept. The previous limit is
// restored on shutdown.
func (p *parts) limitMemory(context.Context) error {
	mb := p.cfg.Server.MemoryLimitMB
	if mb <= 0 {
		return nil
	}
	if cur := debug.SetMemoryLimit(-1); cur != math.MaxInt64 {
		p.log.Info("keeping the Go memory limit already set", "limit_bytes", cur, "server.memory_limit_mb", mb)
		return nil
	}
	prev := debug.SetMemoryLimit(int64(mb) << 20)
	p.onStop(0, func(context.Context) { debug.SetMemoryLimit(prev) })
	return nil
}

// openStore opens the store and reads (or records) this server's instance ID.
func (p *parts) openStore(ctx context.Context) error {
	db, err := store.Open(ctx, p.cfg.Store.Path)
	if err != nil {
		return fmt.Errorf("store.path: %w", err)
	}
	p.db = db
	p.onStop(0, func(context.Context) { db.Close() })
	p.instanceID, err = db.MetaSetDefault(ctx, "instance_id", uuid.NewString())
	if err != nil {
		return fmt.Errorf("store.path: %s: %w", p.cfg.Store.Path, err)
	}
	p.log = p.log.With("instance", p.instanceID)
	return nil
}

// newServer builds the HTTP server and the metrics registry.
func (p *parts) newServer(context.Context) error {
	cfg := p.cfg
	p.reg = prometheus.NewRegistry()
	p.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := server.New(server.Config{
		Token:          p.token,
		MaxBodyBytes:   cfg.Server.MaxBodyBytes,
		PublicHealth:   cfg.Server.PublicHealth,
		PublicMetrics:  cfg.Server.PublicMetrics,
		AllowedHosts:   cfg.Server.AllowedHosts,
		AllowedOrigins: cfg.Server.AllowedOrigins,
		MaxConcurrent:  cfg.Server.MaxConcurrentExecutions,
		MaxQueued:      cfg.Server.MaxQueuedExecutions,
		Version:        version.String(),
		Logger:         p.log,
		Registry:       p.reg,
		Health: []server.HealthCheck{
			{Name: "store", Check: storeHealth(p.db)},
		},
	})
	if err != nil {
		return err
	}
	p.srv = srv
	return nil
}

// startAudit starts the audit writer and serves the audit routes.
func (p *parts) startAudit(context.Context) error {
	a := p.cfg.Audit
	w, err := audit.New(audit.Config{
		Dir:             p.cfg.Logging.AuditDir,
		MaxBytes:        p.cfg.Logging.AuditMaxBytes,
		MaxFiles:        p.cfg.Logging.AuditKeepFiles,
		RefusalBudget:   a.RefusalBudget,
		AggregateWindow: a.AggregateWindow,
		MaxAge:          a.MaxAge,
		IndexMaxBytes:   a.IndexMaxBytes,
		RetentionEvery:  a.RetentionInterval,
	}, audit.Deps{Index: p.db, Logger: p.log, Registerer: p.reg})
	if err != nil {
		return fmt.Errorf("logging.audit_dir: %w", err)
	}
	p.audit = w
	p.onStop(5*time.Second, func(ctx context.Context) {
		if err := w.Close(ctx); err != nil {
			p.log.Warn("audit log not fully flushed", "err", err)
		}
	})
	p.srv.RegisterAudit(auditLog{db: p.db, w: w})
	return nil
}

// openCredentials opens the credential store and serves the credential routes.
// Without a master key the routes answer 503 with the reason, and the leak scanner
// is the patterns-only one: egress is still scanned and output still redacted for
// the credential patterns.
func (p *parts) openCredentials(context.Context) error {
	creds, why, err := openCredentials(p.cfg, p.log)
	if err != nil {
		return err
	}
	if creds == nil {
		p.srv.RegisterCredentials(nil, why)
		p.scan = secrets.PatternsOnly()
		return nil
	}
	p.creds, p.scan = creds, creds
	p.onStop(0, func(context.Context) { creds.Close() })
	p.srv.RegisterCredentials(creds, "")
	return nil
}

// startGateway checks the server's egress policy and starts the egress gateway.
func (p *parts) startGateway(context.Context) error {
	if _, err := serverPolicy(p.cfg, p.log); err != nil {
		return err
	}
	gw, err := newGateway(p.cfg, p.scan, p.audit, p.reg, p.log)
	if err != nil {
		return err
	}
	p.gw = gw
	p.onStop(0, func(context.Context) { gw.Close() })
	p.policies = policySource{server: p.cfg.ContainerPolicy.NetworkAllowlist}
	return nil
}

// startContainers brings up the container sandboxes and serves their routes and
// the image routes. Without a reachable Docker the server still serves WASM tools,
// answers 503 for containers, and keeps trying to reach the engine.
func (p *parts) startContainers(ctx context.Context) error {
	side, err := containers.Start(ctx, containers.Options{
		Config: p.cfg, InstanceID: p.instanceID, Store: p.db, Gateway: p.gw,
		Credentials: p.creds, Redactor: p.scan, Audit: p.audit, Registerer: p.reg, Logger: p.log,
	})
	if err != nil {
		return err
	}
	p.onStop(30*time.Second, side.Close)
	p.sandboxes = side.Manager
	scan := p.scan
	p.srv.RegisterContainers(execService{sandbox.NewService(side.Manager, func(b []byte) []byte { out, _ := scan.Redact(b); return out })})
	p.srv.RegisterImages(docker.NewImages(docker.ImagesConfig{
		Backend: side.Engine, Allowed: p.cfg.Containers.AllowedImages, Logger: p.log, RequestID: server.RequestID,
	}))
	p.policies.container = side.Policy
	p.srv.AddHealth(server.HealthCheck{Name: side.HealthName(), Check: side.Health})
	return nil
}

// startTools starts loading the WASM tools in the background, serves the tool
// routes, the policy check and MCP. The first start compiles each module (seconds
// each): the tool routes wait for it, everything else serves at once.
func (p *parts) startTools(ctx context.Context) error {
	mcpEP, err := newMCPEndpoint(p.srv, p.token, p.cfg, p.log)
	if err != nil {
		return err
	}
	tm, err := toolexec.NewMetrics(p.reg)
	if err != nil {
		return err
	}
	tools := toolexec.StartLoader(ctx, toolexec.LoaderConfig{
		Load: func(ctx context.Context, onChange func()) (*wasm.Engine, *wasm.Registry, error) {
			return startTools(ctx, p.cfg, p.db, p.gw, p.log, onChange)
		},
		Redactor: p.scan, Audit: p.audit, Metrics: tm, Logger: p.log,
		OnChange: mcpEP.ToolsChanged,
	})
	p.onStop(10*time.Second, tools.Close)
	p.srv.RegisterTools(tools)
	p.srv.AddHealth(server.HealthCheck{Name: "wasm_engine", Check: tools.Health})
	p.policies.tool = tools.ToolPolicy
	p.srv.RegisterPolicy(p.policies)
	mcpEP.Start(ctx, tools.Ready())
	p.onStop(0, func(context.Context) { mcpEP.Close() })
	return nil
}

// listen opens the TCP listener and, if configured, the Unix socket.
func (p *parts) listen(context.Context) error {
	cfg := p.cfg
	// Serve closes the listeners; this release covers a failed start. Closing a
	// listener twice is harmless (the Unix one removes its socket once).
	p.onStop(0, func(context.Context) {
		for _, ln := range p.listeners {
			ln.Close()
		}
	})
	addr := net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Server.Port))
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("server.port: %s is already in use (is another clawbox running?): stop it, or choose another port with --port or %s", addr, config.EnvPort)
		}
		return fmt.Errorf("server.host/server.port: cannot listen on %s: %w", addr, err)
	}
	p.listeners = append(p.listeners, tcp)
	p.addrs = append(p.addrs, "http://"+tcp.Addr().String())
	if cfg.Server.UnixSocket != "" {
		uln, err := unixsock.Listen(cfg.Server.UnixSocket)
		if err != nil {
			return fmt.Errorf("server.unix_socket: %w", err)
		}
		p.listeners = append(p.listeners, uln)
		p.addrs = append(p.addrs, "unix://"+cfg.Server.UnixSocket)
	}
	return nil
}

// serve serves on the listeners until ctx is canceled.
func (p *parts) serve(ctx context.Context, ready func(addrs []string)) error {
	p.log.Info("clawbox listening", "addresses", strings.Join(p.addrs, " "), "version", version.String())
	if ready != nil {
		ready(p.addrs)
	}
	err := p.srv.Serve(ctx, p.cfg.Server.ShutdownTimeout, p.listeners...)
	p.log.Info("clawbox stopped")
	return err
}

func storeHealth(db *store.DB) func(context.Context) api.ComponentHealth {
	return func(ctx context.Context) api.ComponentHealth {
		if err := db.Ping(ctx); err != nil {
			return api.ComponentHealth{Status: "error", Detail: "store does not answer"}
		}
		return api.ComponentHealth{Status: "ok"}
	}
}

// openCredentials opens the credential store with the master key from
// CLAWBOX_MASTER_KEY or credentials.key_file. Without a key the server runs without
// stored credentials (the reason is returned); a store that cannot be read with the
// key is an error, never silently ignored.
func openCredentials(cfg *config.Config, log *slog.Logger) (*secrets.Store, string, error) {
	envKey, _ := config.MasterKeyHex(nil)
	key, err := secrets.LoadMasterKey(envKey, cfg.Credentials.KeyFile)
	if errors.Is(err, secrets.ErrNoMasterKey) {
		why := fmt.Sprintf("no master key: set %s or create credentials.key_file (%s) with clawbox init", config.EnvMasterKey, cfg.Credentials.KeyFile)
		log.Warn("credentials disabled: " + why)
		return nil, why, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("credentials.key_file: %w", err)
	}
	st, err := secrets.Open(secrets.Config{Path: cfg.Credentials.StorePath, Key: key, Logger: log})
	if err != nil {
		return nil, "", fmt.Errorf("credentials.store_path: %w", err)
	}
	return st, "", nil
}

// auditSyncTimeout bounds how long GET /audit waits for the writer to index what
// it holds.
const auditSyncTimeout = 2 * time.Second

// auditLog answers queries from the store's index and streams from the writer.
type auditLog struct {
	db *store.DB
	w  *audit.Writer
}

// QueryAudit first lets the writer index what it holds (records wait up to the
// audit index's linger), so a query sees every record made before it; past a short
// bound it answers from the index as it is.
func (a auditLog) QueryAudit(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
	sctx, cancel := context.WithTimeout(ctx, auditSyncTimeout)
	_ = a.w.Sync(sctx) // best effort: a slow index still answers what it has
	cancel()
	return a.db.QueryAudit(ctx, f)
}

func (a auditLog) Subscribe(ctx context.Context, f audit.Filter) (<-chan audit.Record, func()) {
	return a.w.Subscribe(ctx, f)
}

// prepareDirs creates the directories the configuration names, if missing, with
// private modes. An existing directory is left as it is.
func prepareDirs(cfg *config.Config) error {
	dirs := []struct {
		key, path string
		mode      fs.FileMode
	}{
		{"store.path", filepath.Dir(cfg.Store.Path), 0o700},
		{"logging.audit_dir", cfg.Logging.AuditDir, 0o700},
		{"containers.proxies_dir", cfg.Containers.ProxiesDir, 0o700},
		{"containers.workspace_root", cfg.Containers.WorkspaceRoot, 0o700},
		{"sandbox.cache_dir", cfg.Sandbox.CacheDir, 0o700},
		{"sandbox.tool_dir", cfg.Sandbox.ToolDir, 0o755},
	}
	for _, d := range dirs {
		if d.path == "" {
			continue
		}
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("%s: cannot create %s: %w", d.key, d.path, err)
		}
		if st, err := os.Stat(d.path); err != nil {
			return fmt.Errorf("%s: %w", d.key, err)
		} else if !st.IsDir() {
			return fmt.Errorf("%s: %s is not a directory", d.key, d.path)
		}
		// Check that we can write there now, not at the first request.
		probe, err := os.CreateTemp(d.path, ".clawbox-write-check-*")
		if err != nil {
			return fmt.Errorf("%s: %s is not writable: %w", d.key, d.path, err)
		}
		probe.Close()
		os.Remove(probe.Name())
	}
	return nil
}
