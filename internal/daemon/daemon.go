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
	"net"
	"os"
	"path/filepath"
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
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/sandbox/docker"
	"github.com/clawbox/clawbox/internal/secrets"
	"github.com/clawbox/clawbox/internal/server"
	"github.com/clawbox/clawbox/internal/store"
	"github.com/clawbox/clawbox/internal/toolexec"
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
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	log := opts.Logger
	if log == nil {
		log = NewLogger(cfg.Logging, opts.Stderr)
	}
	token, err := cfg.Token()
	if err != nil {
		return err
	}
	if err := prepareDirs(cfg); err != nil {
		return err
	}

	db, err := store.Open(ctx, cfg.Store.Path)
	if err != nil {
		return fmt.Errorf("store.path: %w", err)
	}
	defer db.Close()
	instanceID, err := db.MetaSetDefault(ctx, "instance_id", uuid.NewString())
	if err != nil {
		return fmt.Errorf("store.path: %s: %w", cfg.Store.Path, err)
	}
	log = log.With("instance", instanceID)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	srv, err := server.New(server.Config{
		Token:          token,
		MaxBodyBytes:   cfg.Server.MaxBodyBytes,
		PublicHealth:   cfg.Server.PublicHealth,
		PublicMetrics:  cfg.Server.PublicMetrics,
		AllowedHosts:   cfg.Server.AllowedHosts,
		AllowedOrigins: cfg.Server.AllowedOrigins,
		MaxConcurrent:  cfg.Server.MaxConcurrentExecutions,
		MaxQueued:      cfg.Server.MaxQueuedExecutions,
		Version:        version.String(),
		Logger:         log,
		Registry:       reg,
		Health: []server.HealthCheck{
			{Name: "store", Check: storeHealth(db)},
		},
	})
	if err != nil {
		return err
	}

	auditW, err := audit.New(audit.Config{
		Dir:             cfg.Logging.AuditDir,
		MaxBytes:        cfg.Logging.AuditMaxBytes,
		MaxFiles:        cfg.Logging.AuditKeepFiles,
		RefusalBudget:   cfg.Audit.RefusalBudget,
		AggregateWindow: cfg.Audit.AggregateWindow,
		MaxAge:          cfg.Audit.MaxAge,
		IndexMaxBytes:   cfg.Audit.IndexMaxBytes,
		RetentionEvery:  cfg.Audit.RetentionInterval,
	}, audit.Deps{Index: db, Logger: log, Registerer: reg})
	if err != nil {
		return fmt.Errorf("logging.audit_dir: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := auditW.Close(cctx); err != nil {
			log.Warn("audit log not fully flushed", "err", err)
		}
	}()
	srv.RegisterAudit(auditLog{db: db, w: auditW})

	creds, why, err := openCredentials(cfg, log)
	if err != nil {
		return err
	}
	defer creds.Close()
	if creds != nil {
		srv.RegisterCredentials(creds, "")
	} else {
		srv.RegisterCredentials(nil, why)
	}

	if _, err := serverPolicy(cfg, log); err != nil {
		return err
	}
	// Without a master key there is no credential, but egress is still scanned and
	// output still redacted for the credential patterns: scan is never nil.
	scan := creds
	if scan == nil {
		scan = secrets.PatternsOnly()
	}
	gw, err := newGateway(cfg, scan, auditW, reg, log)
	if err != nil {
		return err
	}
	defer gw.Close()
	policies := policySource{server: cfg.ContainerPolicy.NetworkAllowlist}

	// Container sandboxes: without a reachable Docker the server still serves WASM
	// tools, answers 503 for containers, and keeps trying to reach the engine.
	dock := &dockerSide{cfg: cfg, instanceID: instanceID, db: db, gw: gw, creds: creds, scan: scan, sink: auditW, reg: reg, log: log,
		redact: func(b []byte) []byte { out, _ := scan.Redact(b); return out }}
	if err := dock.start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		dock.Close(sctx)
	}()
	srv.RegisterContainers(sandbox.NewService(dock.manager, dock.redact))
	srv.RegisterImages(docker.NewImages(docker.ImagesConfig{
		Backend: dock.engine, Allowed: cfg.Containers.AllowedImages, Logger: log, RequestID: server.RequestID,
	}))
	policies.container = dock.policy
	srv.AddHealth(server.HealthCheck{Name: "docker", Check: dock.health})

	mcpEP, err := newMCPEndpoint(srv, token, cfg, log)
	if err != nil {
		return err
	}
	tm, err := toolexec.NewMetrics(reg)
	if err != nil {
		return err
	}
	// Tools load in the background: the first start compiles each module (seconds
	// each); the tool routes wait for it, everything else serves at once.
	tools := toolexec.StartLoader(ctx, toolexec.LoaderConfig{
		Load: func(ctx context.Context, onChange func()) (*wasm.Engine, *wasm.Registry, error) {
			return startTools(ctx, cfg, db, gw, log, onChange)
		},
		Redactor: scan, Audit: auditW, Metrics: tm, Logger: log,
		OnChange: mcpEP.ToolsChanged,
	})
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		tools.Close(cctx)
	}()
	srv.RegisterTools(tools)
	srv.AddHealth(server.HealthCheck{Name: "wasm_engine", Check: tools.Health})
	policies.tool = tools.ToolPolicy
	srv.RegisterPolicy(policies)
	mcpEP.Start(ctx, tools.Ready())
	defer mcpEP.Close()

	var listeners []net.Listener
	defer func() {
		for _, ln := range listeners {
			ln.Close()
		}
	}()
	addr := net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Server.Port))
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("server.port: %s is already in use (is another clawbox running?): stop it, or choose another port with --port or %s", addr, config.EnvPort)
		}
		return fmt.Errorf("server.host/server.port: cannot listen on %s: %w", addr, err)
	}
	listeners = append(listeners, tcp)
	addrs := []string{"http://" + tcp.Addr().String()}
	if cfg.Server.UnixSocket != "" {
		uln, err := ListenUnix(cfg.Server.UnixSocket)
		if err != nil {
			return fmt.Errorf("server.unix_socket: %w", err)
		}
		listeners = append(listeners, uln)
		addrs = append(addrs, "unix://"+cfg.Server.UnixSocket)
	}

	log.Info("clawbox listening", "addresses", strings.Join(addrs, " "), "version", version.String())
	if opts.Ready != nil {
		opts.Ready(addrs)
	}
	err = srv.Serve(ctx, cfg.Server.ShutdownTimeout, listeners...)
	listeners = nil // Serve closed them
	log.Info("clawbox stopped")
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

// auditLog answers queries from the store's index and streams from the writer.
type auditLog struct {
	db *store.DB
	w  *audit.Writer
}

func (a auditLog) QueryAudit(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
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
