package daemon

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/egress"
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/sandbox/docker"
	"github.com/clawbox/clawbox/internal/secrets"
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
func (d *dockerSide) startSandboxes(ctx context.Context) (*sandbox.Manager, *docker.Backend, string, error) {
	log := d.log
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
		Config:     sandboxConfig(d.cfg, d.instanceID),
		Backend:    b,
		Store:      d.db,
		Doors:      doorOpener{d.gw},
		Audit:      d.sink,
		Logger:     log,
		Registerer: d.reg,
	}
	if d.creds != nil {
		opts.Credentials = credentialEnv{d.creds}
	}
	// Logs are redacted before they are stored: the credential store, or without a
	// master key the patterns-only scanner (never a nil store).
	opts.Redactor = d.scan
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
