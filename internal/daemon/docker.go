package daemon

import (
	"context"
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
	"github.com/clawbox/clawbox/internal/store"
)

// dockerRetry is how often an unreachable Docker engine is tried again.
const dockerRetry = 5 * time.Second

// dockerSide owns the container side of the server: the sandbox manager and its
// Docker backend. When the engine cannot be reached at start, it keeps trying in the
// background and brings container sandboxes up as soon as it answers; until then
// their routes answer 503 unavailable with the reason.
type dockerSide struct {
	cfg        *config.Config
	instanceID string
	db         *store.DB
	gw         *egress.Gateway
	creds      *secrets.Store
	scan       *secrets.Store // never nil: creds, or secrets.PatternsOnly() without a master key
	sink       sandbox.AuditSink
	reg        prometheus.Registerer
	log        *slog.Logger
	redact     func([]byte) []byte

	mu      sync.Mutex // guards mgr, backend and why
	mgr     *sandbox.Manager
	backend *docker.Backend
	why     string

	cancel context.CancelFunc
	done   chan struct{} // closed when the retry loop has returned
}

// start tries to bring the sandboxes up now; if Docker does not answer it starts the
// retry loop. Only a configuration error is returned.
func (d *dockerSide) start(ctx context.Context) error {
	d.done = make(chan struct{})
	mgr, backend, why, err := d.startSandboxes(ctx)
	if err != nil {
		close(d.done)
		return err
	}
	if mgr != nil {
		d.set(mgr, backend, "")
		close(d.done)
		return nil
	}
	d.set(nil, nil, why)
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	go d.retry(lctx)
	return nil
}

func (d *dockerSide) set(mgr *sandbox.Manager, b *docker.Backend, why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mgr, d.backend, d.why = mgr, b, why
}

// current returns the manager and backend, or the reason they are not available.
func (d *dockerSide) current() (*sandbox.Manager, *docker.Backend, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mgr, d.backend, d.why
}

func (d *dockerSide) retry(ctx context.Context) {
	defer close(d.done)
	t := time.NewTicker(dockerRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mgr, backend, why, err := d.startSandboxes(ctx)
		if err != nil {
			d.log.Error("containers: cannot start the sandbox manager", "err", err)
			d.set(nil, nil, "the sandbox manager failed to start; see the server log")
			return
		}
		if mgr != nil {
			d.set(mgr, backend, "")
			d.log.Info("containers: Docker is reachable again; container sandboxes are available")
			return
		}
		d.set(nil, nil, why)
	}
}

// Close stops the retry loop, then shuts the manager down (leaving or killing the
// running sandboxes as configured) and closes the backend.
func (d *dockerSide) Close(ctx context.Context) {
	if d.cancel != nil {
		d.cancel()
	}
	if d.done != nil {
		<-d.done
	}
	mgr, backend, _ := d.current()
	if mgr != nil {
		if err := mgr.Shutdown(ctx); err != nil {
			d.log.Warn("containers: shutdown incomplete", "err", err)
		}
		backend.Close()
	}
}

func (d *dockerSide) unavailable(why string) error {
	return api.Errorf(api.CodeUnavailable, "container sandboxes are not available: %s", why)
}

// manager returns the sandbox manager, or 503 with the reason there is none.
func (d *dockerSide) manager() (*sandbox.Manager, error) {
	mgr, _, why := d.current()
	if mgr == nil {
		return nil, d.unavailable(why)
	}
	return mgr, nil
}

// policy is the effective egress policy of a container sandbox.
func (d *dockerSide) policy(ctx context.Context, id string) (*egress.Policy, error) {
	mgr, err := d.manager()
	if err != nil {
		return nil, err
	}
	rec, err := mgr.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return egress.Effective(d.cfg.ContainerPolicy.NetworkAllowlist, rec.Allowlist)
}

func (d *dockerSide) health(ctx context.Context) api.ComponentHealth {
	mgr, backend, why := d.current()
	return dockerHealth(mgr, backend, why)(ctx)
}

// engine returns the Docker backend, or 503 with the reason there is none.
func (d *dockerSide) engine() (*docker.Backend, error) {
	_, b, why := d.current()
	if b == nil {
		return nil, api.Errorf(api.CodeUnavailable, "images are not available: %s", why)
	}
	return b, nil
}
