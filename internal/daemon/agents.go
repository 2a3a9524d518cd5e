package daemon

import (
	"context"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/agents"
	"github.com/clawbox/clawbox/internal/server"
)

// startAgents loads the agents (adopting the running ones' sandboxes, restarting
// per their policy) and serves their routes; their watchers stop before the
// container sandboxes do.
func (p *parts) startAgents(ctx context.Context) error {
	sandboxes := p.sandboxes
	m, err := agents.New(agents.Options{
		Store: p.db,
		Sandboxes: func() (agents.Sandboxes, error) {
			mgr, err := sandboxes()
			if err != nil {
				return nil, err
			}
			return mgr, nil
		},
		Audit:         p.audit,
		WorkspaceRoot: p.cfg.Containers.WorkspaceRoot,
		Logger:        p.log,
	})
	if err != nil {
		return err
	}
	if err := m.Load(ctx); err != nil {
		m.Close(context.WithoutCancel(ctx))
		return err
	}
	p.onStop(10*time.Second, func(ctx context.Context) {
		if err := m.Close(ctx); err != nil {
			p.log.Warn("agents: close incomplete", "err", err)
		}
	})
	p.srv.RegisterAgents(m)
	p.srv.AddHealth(server.HealthCheck{Name: "agents", Check: func(context.Context) api.ComponentHealth {
		total, running := m.Count()
		return api.ComponentHealth{Status: api.StatusOK, Detail: map[string]int{"active_agents": total, "running_agents": running}}
	}})
	return nil
}
