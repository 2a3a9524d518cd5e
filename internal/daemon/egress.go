package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/egress"
	"github.com/clawbox/clawbox/internal/secrets"
)

// newGateway builds the egress gateway from the [proxy] config. secrets is required:
// a server without a master key passes secrets.PatternsOnly(), so that the gateway
// always scans for credential patterns.
func newGateway(cfg *config.Config, secrets egress.Secrets, sink egress.AuditSink, reg prometheus.Registerer, log *slog.Logger) (*egress.Gateway, error) {
	if secrets == nil {
		return nil, errors.New("proxy: no leak scanner (internal error)")
	}
	var cidrs []netip.Prefix
	for _, c := range cfg.Proxy.AllowPrivateCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("proxy.allow_private_cidrs: %w", err)
		}
		cidrs = append(cidrs, p.Masked())
	}
	hosts := map[string][]netip.Addr{}
	for name, addrs := range cfg.Proxy.Hosts {
		for _, a := range addrs {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return nil, fmt.Errorf("proxy.hosts.%s: %w", name, err)
			}
			hosts[name] = append(hosts[name], ip)
		}
	}
	if len(cidrs) > 0 {
		log.Warn("egress: special-purpose address ranges opened by proxy.allow_private_cidrs", "ranges", cfg.Proxy.AllowPrivateCIDRs)
	}
	gcfg := egress.Config{
		MaxResponseBytes:     cfg.Proxy.MaxResponseBytes,
		MaxRequestBytes:      cfg.Proxy.MaxRequestBytes,
		Timeout:              time.Duration(cfg.Proxy.DefaultTimeoutMS) * time.Millisecond,
		RatePerSecond:        cfg.Proxy.RateLimit.RequestsPerSecond,
		RateBurst:            cfg.Proxy.RateLimit.Burst,
		RefusalsPerSecond:    cfg.Proxy.RateLimit.RefusalsPerSecond,
		RefusalBurst:         cfg.Proxy.RateLimit.RefusalBurst,
		MaxConcurrentPerDoor: cfg.Proxy.MaxConcurrentPerDoor,
		MaxStreamBytes:       cfg.Proxy.MaxStreamBytes,
		StreamTimeout:        time.Duration(cfg.Proxy.StreamTimeoutMS) * time.Millisecond,
		MaxStreamsPerDoor:    cfg.Proxy.MaxStreamsPerDoor,
		MaxTunnelsPerDoor:    cfg.Proxy.MaxTunnelsPerDoor,
		TunnelIdleTimeout:    time.Duration(cfg.Proxy.TunnelIdleTimeoutMS) * time.Millisecond,
		AllowPrivateCIDRs:    cidrs,
		Hosts:                hosts,
		UpstreamCAFile:       cfg.Proxy.UpstreamCAFile,
		Secrets:              secrets,
		Audit:                sink,
		Registerer:           reg,
		Logger:               log,
	}
	g, err := egress.New(gcfg)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return g, nil
}

// serverPolicy compiles [container_policy].network_allowlist, logging its warnings.
func serverPolicy(cfg *config.Config, log *slog.Logger) (*egress.Policy, error) {
	p, err := egress.ParsePolicy(cfg.ContainerPolicy.NetworkAllowlist)
	if err != nil {
		return nil, fmt.Errorf("config %s: container_policy.network_allowlist: %s", cfg.Path, errText(err))
	}
	for _, w := range p.Warnings() {
		log.Warn("egress: " + w)
	}
	return p, nil
}

func errText(err error) string {
	if e, ok := api.AsError(err); ok {
		return e.Message
	}
	return err.Error()
}

// policySource answers POST /policy/check.
type policySource struct {
	server []string
	// container and tool find the effective policy of a sandbox or tool; nil means
	// that kind of sandbox is not available.
	container func(ctx context.Context, id string) (*egress.Policy, error)
	tool      func(ctx context.Context, name string) (*egress.Policy, error)
}

func (s policySource) EffectivePolicy(ctx context.Context, containerID, tool string) (*egress.Policy, string, error) {
	switch {
	case containerID != "":
		if s.container == nil {
			return nil, "", api.Errorf(api.CodeNotFound, "container %q not found", containerID)
		}
		p, err := s.container(ctx, containerID)
		return p, "container " + containerID, err
	case tool != "":
		if s.tool == nil {
			return nil, "", api.Errorf(api.CodeToolNotFound, "tool %q not found", tool)
		}
		p, err := s.tool(ctx, tool)
		return p, "tool " + tool, err
	}
	p, err := egress.ParsePolicy(s.server)
	return p, "server", err
}

// The credential store is the gateway's Secrets.
var _ egress.Secrets = (*secrets.Store)(nil)

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
