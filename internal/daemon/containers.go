package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/egress"
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/sandbox/docker"
	"github.com/clawbox/clawbox/internal/secrets"
	"github.com/clawbox/clawbox/internal/server"
	"github.com/clawbox/clawbox/internal/store"
)

// sandboxConfig maps [containers] and [container_policy] to the manager's config.
func sandboxConfig(cfg *config.Config, instanceID string) sandbox.Config {
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
	}
}

// startSandboxes connects to Docker and starts the sandbox manager (reconciling what
// ran before). Without a reachable Docker it returns a nil manager and the reason:
// the server still serves WASM tools.
func startSandboxes(ctx context.Context, cfg *config.Config, instanceID string, db *store.DB, gw *egress.Gateway,
	creds *secrets.Store, sink sandbox.AuditSink, reg prometheus.Registerer, log *slog.Logger) (*sandbox.Manager, *docker.Backend, string, error) {
	b, err := docker.New(docker.Options{Logger: log})
	if err != nil {
		return nil, nil, fmt.Sprintf("Docker client: %v", err), nil
	}
	if err := b.Connect(ctx); err != nil {
		b.Close()
		why := fmt.Sprintf("Docker is not reachable: %v", err)
		log.Warn("container sandboxes disabled: " + why)
		return nil, nil, why, nil
	}
	opts := sandbox.Options{
		Config:     sandboxConfig(cfg, instanceID),
		Backend:    b,
		Store:      db,
		Doors:      doorOpener{gw},
		Audit:      sink,
		Logger:     log,
		Registerer: reg,
	}
	if creds != nil {
		opts.Credentials = credentialEnv{creds}
	}
	m, err := sandbox.New(opts)
	if err != nil {
		b.Close()
		return nil, nil, "", fmt.Errorf("containers: %w", err)
	}
	if err := m.Start(ctx); err != nil {
		b.Close()
		return nil, nil, "", fmt.Errorf("containers: start: %w", err)
	}
	return m, b, "", nil
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

// containerService is the HTTP routes' view of the manager: wire types, with every
// log redacted of known secrets.
type containerService struct {
	m      *sandbox.Manager
	redact func([]byte) []byte
}

var _ server.Sandboxes = containerService{}

func (c containerService) Spawn(ctx context.Context, req api.ContainerSpawnRequest) (api.ContainerInfo, error) {
	rec, err := c.m.Spawn(ctx, req)
	if err != nil {
		return api.ContainerInfo{}, err
	}
	return rec.Info(), nil
}

func (c containerService) Get(ctx context.Context, id string) (api.ContainerInfo, error) {
	rec, err := c.m.Get(ctx, id)
	if err != nil {
		return api.ContainerInfo{}, err
	}
	return rec.Info(), nil
}

func (c containerService) List(ctx context.Context, status string) ([]api.ContainerInfo, error) {
	recs, err := c.m.List(ctx, status)
	if err != nil {
		return nil, err
	}
	out := make([]api.ContainerInfo, len(recs))
	for i, r := range recs {
		out[i] = r.Info()
	}
	return out, nil
}

func (c containerService) Kill(ctx context.Context, id string) (api.KillResponse, error) {
	rec, err := c.m.Kill(ctx, id)
	if err != nil {
		return api.KillResponse{}, err
	}
	res := rec.KillResponse()
	if res.Output != nil {
		out := string(c.redact([]byte(*res.Output)))
		res.Output = &out
	}
	return res, nil
}

func (c containerService) Logs(ctx context.Context, id string) (api.ContainerLogs, error) {
	rec, err := c.m.Logs(ctx, id)
	if err != nil {
		return api.ContainerLogs{}, err
	}
	l := rec.LogsInfo()
	l.Stdout = string(c.redact([]byte(l.Stdout)))
	l.Stderr = string(c.redact([]byte(l.Stderr)))
	return l, nil
}

func (c containerService) FollowLogs(ctx context.Context, id string, stdout, stderr io.Writer) error {
	out := &lineRedactor{w: stdout, redact: c.redact}
	errw := &lineRedactor{w: stderr, redact: c.redact}
	err := c.m.FollowLogs(ctx, id, out, errw)
	out.Flush()
	errw.Flush()
	return err
}

func (c containerService) Wait(ctx context.Context, id string) (api.ContainerInfo, error) {
	rec, err := c.m.Wait(ctx, id)
	if err != nil {
		return api.ContainerInfo{}, err
	}
	return rec.Info(), nil
}

// lineRedactor passes output on a line at a time, redacted, so that a secret is
// never split across two writes and missed. A line longer than maxLine is passed
// on in maxLine pieces.
type lineRedactor struct {
	mu     sync.Mutex
	w      io.Writer
	redact func([]byte) []byte
	buf    []byte
}

const maxLine = 64 << 10

func (l *lineRedactor) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) < maxLine {
				return len(b), nil
			}
			i = maxLine - 1
		}
		line := l.buf[:i+1]
		if _, err := l.w.Write(l.redact(line)); err != nil {
			return 0, err
		}
		l.buf = l.buf[i+1:]
	}
}

// Flush writes what is left of an unterminated last line.
func (l *lineRedactor) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.w.Write(l.redact(l.buf))
		l.buf = nil
	}
}

// dockerHealth reports whether the engine answers, and how many sandboxes run.
func dockerHealth(m *sandbox.Manager, b *docker.Backend, why string) func(context.Context) api.ComponentHealth {
	return func(ctx context.Context) api.ComponentHealth {
		if m == nil {
			return api.ComponentHealth{Status: api.StatusUnavailable, Detail: why}
		}
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err := b.Ping(ctx); err != nil {
			return api.ComponentHealth{Status: api.StatusUnavailable, Detail: "Docker does not answer"}
		}
		running, err := m.List(ctx, api.ContainerStatusRunning)
		if err != nil {
			return api.ComponentHealth{Status: "error", Detail: "cannot list sandboxes"}
		}
		return api.ComponentHealth{Status: api.StatusOK, Detail: map[string]int{"active_containers": len(running)}}
	}
}
