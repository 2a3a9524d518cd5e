// Package containers is the container sandboxes of a server: the sandbox manager on
// the Docker backend, brought up when the engine answers.
//
// Start connects to Docker and starts the manager (which reconciles what ran
// before). When the engine does not answer, the server still starts: Start keeps
// trying in the background and brings the sandboxes up as soon as Docker answers;
// until then [Side.Manager], [Side.Engine] and [Side.Policy] return a 503
// unavailable error with the reason, and [Side.Health] reports it. [Side.Close] is
// the one release path of the retry loop, the manager and the backend.
package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/egress"
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/sandbox/docker"
	"github.com/clawbox/clawbox/internal/sandbox/kubernetes"
	"github.com/clawbox/clawbox/internal/sandbox/workspace"
	"github.com/clawbox/clawbox/internal/secrets"
)

// DefaultRetry is how often an unreachable Docker engine is tried again.
const DefaultRetry = 5 * time.Second

// Options are the inputs of Start. Config, Store, Redactor and Logger are required.
type Options struct {
	// Config supplies [containers] and [container_policy] (see SandboxConfig).
	Config     *config.Config
	InstanceID string
	Store      sandbox.RecordStore
	// Gateway opens the sandboxes' egress doors; nil: doors cannot be opened and
	// every "container" spawn fails.
	Gateway *egress.Gateway
	// Credentials gives sandboxes the placeholders of their granted credentials;
	// nil (no master key): no credential is granted.
	Credentials *secrets.Store
	// Redactor removes secrets from sandbox logs before they are stored: the
	// credential store, or without a master key secrets.PatternsOnly(). A concrete
	// pointer, not an interface, so that the required-check cannot be passed by a
	// nil store inside a non-nil interface.
	Redactor   *secrets.Store
	Audit      sandbox.AuditSink
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Retry is how often Docker is tried again while it does not answer; default
	// DefaultRetry.
	Retry time.Duration
}

// SandboxConfig maps [containers] and [container_policy] to the manager's config.
func SandboxConfig(cfg *config.Config, instanceID string) sandbox.Config {
	c, p := cfg.Containers, cfg.ContainerPolicy
	return sandbox.Config{
		InstanceID:         instanceID,
		ProxiesDir:         c.ProxiesDir,
		AllowedImages:      c.AllowedImages,
		DefaultImage:       c.DefaultImage,
		User:               c.User,
		AllowRoot:          c.AllowRoot,
		PidsLimit:          c.PidsLimit,
		TmpfsSizeMB:        c.TmpfsSizeMB,
		DefaultMemoryMB:    c.DefaultMemoryMB,
		MaxMemoryMB:        c.MaxMemoryMB,
		DefaultCPUShares:   c.DefaultCPUShares,
		MaxCPUShares:       c.MaxCPUShares,
		MaxCPUs:            c.MaxCPUs,
		DefaultTimeout:     msDuration(c.DefaultTimeoutMS),
		MaxTimeout:         msDuration(c.MaxTimeoutMS),
		Nofile:             c.Nofile,
		StopGrace:          c.StopGrace,
		MaxLogBytes:        c.MaxLogBytes,
		Retention:          c.Retention,
		ReaperInterval:     c.ReaperInterval,
		Runtime:            c.Runtime,
		MaxContainers:      c.MaxContainers,
		KillOnShutdown:     c.KillOnShutdown,
		AllowedPolicies:    p.AllowedPolicies,
		NetworkAllowlist:   p.NetworkAllowlist,
		AllowedCredentials: p.AllowedCredentials,
		ExecTimeout:        msDuration(c.ExecTimeoutMS),
		MaxExecTimeout:     msDuration(c.MaxExecTimeoutMS),
		MaxExecOutputBytes: c.MaxExecOutputBytes,
		MaxExecs:           c.MaxExecs,
		MaxFileBytes:       c.MaxFileBytes,
		MaxWorkspaceMB:     c.MaxWorkspaceMB,
		SystemRootsFile:    c.SystemRootsFile,
		// The supervisor binary lives beside the socket dirs, in the state dir.
		SupervisorDir: filepath.Join(filepath.Dir(c.ProxiesDir), "supervisor"),
		Pools:         warmPools(cfg),
	}
}

// warmPools maps [[containers.warm_pool]] to the manager's pools: a template
// entry takes the template's image and memory_mb (config.Load checked that the
// template exists); the policy checks are the manager's (sandbox.Config.Check).
func warmPools(cfg *config.Config) []sandbox.PoolConfig {
	var out []sandbox.PoolConfig
	for i, wp := range cfg.Containers.WarmPool {
		pc := sandbox.PoolConfig{
			Key: fmt.Sprintf("containers.warm_pool[%d]", i), Name: wp.Name, Image: wp.Image,
			MemoryMB: wp.MemoryMB, CPUShares: wp.CPUShares, CPUs: wp.CPUs, Runtime: wp.Runtime, Size: wp.Size,
		}
		if t, ok := cfg.Images.Templates[wp.Template]; ok && wp.Template != "" {
			pc.Image, pc.MemoryMB = t.Image, t.MemoryMB
			if pc.Name == "" {
				pc.Name = wp.Template
			}
		}
		out = append(out, pc)
	}
	return out
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// Side owns the container side of a server: the sandbox manager, its Docker
// backend, and while Docker does not answer, the loop that keeps trying.
type Side struct {
	opts Options

	mu      sync.Mutex // guards mgr, backend and why
	mgr     *sandbox.Manager
	backend backend
	why     string

	cancel    context.CancelFunc
	done      chan struct{} // closed when the retry loop has returned (or never ran)
	closeOnce sync.Once
}

// Start tries to bring the sandboxes up now; if Docker does not answer it starts
// the retry loop, which Close stops. Only a configuration error is returned.
func Start(ctx context.Context, opts Options) (*Side, error) {
	switch {
	case opts.Config == nil:
		return nil, errors.New("containers: no config (internal error)")
	case opts.Store == nil:
		return nil, errors.New("containers: no record store (internal error)")
	case opts.Redactor == nil:
		return nil, errors.New("containers: no log redactor (internal error)")
	case opts.Logger == nil:
		return nil, errors.New("containers: no logger (internal error)")
	}
	if opts.Retry <= 0 {
		opts.Retry = DefaultRetry
	}
	// The policy checks of the sandbox config (a warm pool's image and limits
	// among them) stop the server now, whether or not Docker answers.
	if err := SandboxConfig(opts.Config, opts.InstanceID).Check(); err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	s := &Side{opts: opts, done: make(chan struct{})}
	mgr, backend, why, err := s.bringUp(ctx)
	if err != nil {
		return nil, err
	}
	if mgr != nil {
		s.set(mgr, backend, "")
		close(s.done)
		return s, nil
	}
	s.set(nil, nil, why)
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	go s.retry(lctx)
	return s, nil
}

// backend is a sandbox.Backend that the side connects once and closes.
type backend interface {
	sandbox.Backend
	Connect(context.Context) error
	Close() error
}

// backendName names the configured backend (containers.backend) for messages.
func backendName(cfg *config.Config) string {
	if cfg.Containers.Backend == "kubernetes" {
		return "Kubernetes"
	}
	return "Docker"
}

// newBackend makes the configured backend (containers.backend).
func newBackend(o Options) (backend, error) {
	if o.Config.Containers.Backend == "kubernetes" {
		k := o.Config.Kubernetes
		b, err := kubernetes.New(kubernetes.Options{
			Kubeconfig: k.Kubeconfig, Namespace: k.Namespace, Node: k.Node, RuntimeClass: k.RuntimeClass,
			PullPolicy: corev1.PullPolicy(k.ImagePullPolicy), StopGrace: o.Config.Containers.StopGrace,
			DeadlineSlack: msDuration(o.Config.Containers.MaxTimeoutMS), StartTimeout: k.StartTimeout, Logger: o.Logger,
		})
		return b, err
	}
	return docker.New(docker.Options{Logger: o.Logger})
}

// bringUp connects to the backend and starts the sandbox manager (reconciling
// what ran before). Without a reachable backend it returns a nil manager and
// the reason.
func (s *Side) bringUp(ctx context.Context) (*sandbox.Manager, backend, string, error) {
	o := s.opts
	name := backendName(o.Config)
	b, err := newBackend(o)
	if err != nil {
		return nil, nil, fmt.Sprintf("%s client: %v", name, err), nil
	}
	if err := b.Connect(ctx); err != nil {
		b.Close()
		why := fmt.Sprintf("%s is not reachable: %v", name, err)
		o.Logger.Warn("container sandboxes disabled: " + why)
		return nil, nil, why, nil
	}
	mo := sandbox.Options{
		Config:     SandboxConfig(o.Config, o.InstanceID),
		Backend:    b,
		Store:      o.Store,
		Audit:      o.Audit,
		Redactor:   o.Redactor,
		Logger:     o.Logger,
		Registerer: o.Registerer,
	}
	if o.Gateway != nil {
		mo.Doors = doorOpener{o.Gateway}
	}
	if root := o.Config.Containers.WorkspaceRoot; root != "" {
		mo.Workspaces = &workspace.Manager{Root: root}
	}
	if o.Credentials != nil {
		mo.Credentials = credentialEnv{o.Credentials}
	}
	m, err := sandbox.New(mo)
	if err != nil {
		b.Close()
		return nil, nil, "", fmt.Errorf("containers: %w", err)
	}
	if err := m.Start(ctx); err != nil {
		b.Close()
		return nil, nil, "", fmt.Errorf("containers: start: %w", err)
	}
	o.Logger.Info("container sandboxes are available", "backend", o.Config.Containers.Backend)
	return m, b, "", nil
}

func (s *Side) retry(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.opts.Retry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mgr, backend, why, err := s.bringUp(ctx)
		if err != nil {
			s.opts.Logger.Error("containers: cannot start the sandbox manager", "err", err)
			s.set(nil, nil, "the sandbox manager failed to start; see the server log")
			return
		}
		if mgr != nil {
			s.set(mgr, backend, "")
			s.opts.Logger.Info("containers: Docker is reachable again; container sandboxes are available")
			return
		}
		s.set(nil, nil, why)
	}
}

func (s *Side) set(mgr *sandbox.Manager, b backend, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mgr, s.backend, s.why = mgr, b, why
}

// current returns the manager and backend, or the reason they are not available.
func (s *Side) current() (*sandbox.Manager, backend, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mgr, s.backend, s.why
}

// Close stops the retry loop, then shuts the manager down (leaving or killing the
// running sandboxes as configured) and closes the backend. It is idempotent: a
// later call releases nothing again.
func (s *Side) Close(ctx context.Context) {
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		<-s.done
		mgr, backend, _ := s.current()
		if mgr == nil {
			return
		}
		if err := mgr.Shutdown(ctx); err != nil {
			s.opts.Logger.Warn("containers: shutdown incomplete", "err", err)
		}
		backend.Close()
	})
}

// Manager returns the sandbox manager, or 503 with the reason there is none.
func (s *Side) Manager() (*sandbox.Manager, error) {
	mgr, _, why := s.current()
	if mgr == nil {
		return nil, api.Errorf(api.CodeUnavailable, "container sandboxes are not available: %s", why)
	}
	return mgr, nil
}

// Engine returns the Docker backend, or 503 with the reason there is none
// (image management is Docker's: a cluster pulls its own images).
func (s *Side) Engine() (*docker.Backend, error) {
	if s.opts.Config.Containers.Backend == "kubernetes" {
		return nil, api.Errorf(api.CodeUnavailable, "images are managed by the Kubernetes cluster, not by clawbox (containers.backend = \"kubernetes\"): the kubelet pulls them (kubernetes.image_pull_policy)")
	}
	_, b, why := s.current()
	if b == nil {
		return nil, api.Errorf(api.CodeUnavailable, "images are not available: %s", why)
	}
	return b.(*docker.Backend), nil
}

// HealthName is the health component of the backend: "docker" or "kubernetes".
func (s *Side) HealthName() string { return s.opts.Config.Containers.Backend }

// Policy is the effective egress policy of the container sandbox id.
func (s *Side) Policy(ctx context.Context, id string) (*egress.Policy, error) {
	mgr, err := s.Manager()
	if err != nil {
		return nil, err
	}
	rec, err := mgr.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return egress.Effective(s.opts.Config.ContainerPolicy.NetworkAllowlist, rec.Allowlist)
}

// Health reports whether the engine answers, and how many sandboxes run.
func (s *Side) Health(ctx context.Context) api.ComponentHealth {
	mgr, b, why := s.current()
	if mgr == nil {
		return api.ComponentHealth{Status: api.StatusUnavailable, Detail: why}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := b.Ping(ctx); err != nil {
		return api.ComponentHealth{Status: api.StatusUnavailable, Detail: backendName(s.opts.Config) + " does not answer"}
	}
	running, err := mgr.List(ctx, api.ContainerStatusRunning)
	if err != nil {
		return api.ComponentHealth{Status: "error", Detail: "cannot list sandboxes"}
	}
	d := api.ContainersHealth{ActiveContainers: len(running), Pools: mgr.Pools()}
	return api.ComponentHealth{Status: api.StatusOK, Detail: d}
}

// doorOpener opens sandbox doors on the egress gateway.
type doorOpener struct{ gw *egress.Gateway }

func (d doorOpener) OpenDoor(spec sandbox.DoorSpec) (io.Closer, error) {
	door, err := d.gw.OpenDoor(egress.DoorSpec(spec))
	if err != nil {
		return nil, err
	}
	return door, nil
}

// credentialEnv gives sandboxes the placeholders of their granted credentials. A
// credential whose name is a reserved environment key is refused, not set.
type credentialEnv struct{ st *secrets.Store }

func (c credentialEnv) CredentialEnv(_ string, names []string) (map[string]string, error) {
	env := c.st.Placeholders(names)
	if err := sandbox.CheckEnv(env); err != nil {
		return nil, err
	}
	return env, nil
}
