package toolexec

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/egress"
	"github.com/clawbox/clawbox/internal/wasm"
)

// LoaderConfig configures StartLoader. Every field but OnChange is required.
type LoaderConfig struct {
	// Load builds the engine and the registry, passing onChange on to the registry.
	// It may take seconds: the first start compiles every module.
	Load func(ctx context.Context, onChange func()) (*wasm.Engine, *wasm.Registry, error)
	// Redactor, Audit and Metrics are the Service's.
	Redactor Redactor
	Audit    AuditSink
	Metrics  *Metrics
	Logger   *slog.Logger
	// OnChange is called once the tools have loaded and whenever the set of loaded
	// tools or one of their manifests changes.
	OnChange func()
}

// Loader loads the tools in the background and serves the tool routes meanwhile:
// the calls that need the registry wait until it is ready, the others answer at
// once. It owns the engine and the registry: Close releases them.
type Loader struct {
	cfg    LoaderConfig
	ready  chan struct{} // closed once svc or err is set
	svc    *Service
	err    error
	eng    *wasm.Engine
	reg    atomic.Pointer[wasm.Registry]
	cancel context.CancelFunc
	done   chan struct{} // closed when the loading goroutine has returned
}

// StartLoader starts loading the tools; Close stops it and releases them.
func StartLoader(ctx context.Context, cfg LoaderConfig) *Loader {
	l := &Loader{cfg: cfg, ready: make(chan struct{}), done: make(chan struct{})}
	if l.cfg.OnChange == nil {
		l.cfg.OnChange = func() {}
	}
	ctx, l.cancel = context.WithCancel(ctx)
	go l.load(ctx)
	return l
}

func (l *Loader) load(ctx context.Context) {
	defer close(l.done)
	eng, reg, err := l.cfg.Load(ctx, l.changed)
	if err != nil {
		l.cfg.Logger.Error("WASM tools disabled", "err", err)
		l.err = err
		close(l.ready)
		return
	}
	l.reg.Store(reg)
	l.cfg.Metrics.loaded.Set(float64(len(reg.List())))
	l.svc = NewService(reg, l.cfg.Redactor, l.cfg.Audit, l.cfg.Metrics)
	l.eng = eng
	close(l.ready)
	l.cfg.OnChange()
	l.cfg.Logger.Info("WASM tools loaded", "tools", len(reg.List()))
}

// changed is the registry's OnChange.
func (l *Loader) changed() {
	if r := l.reg.Load(); r != nil {
		l.cfg.Metrics.loaded.Set(float64(len(r.List())))
	}
	l.cfg.OnChange()
}

// Close stops loading, waits for the loader, then closes the registry and the
// engine. Call it once.
func (l *Loader) Close(ctx context.Context) {
	l.cancel()
	<-l.done
	if r := l.reg.Load(); r != nil {
		r.Close(ctx)
		l.eng.Close(ctx)
	}
}

// wait returns the service once loading has finished, or why there is none. The
// loading error stays in the server log: it names paths and engine internals.
func (l *Loader) wait(ctx context.Context) (*Service, error) {
	select {
	case <-l.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if l.err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "WASM tools are not available: they could not be loaded; see the server log")
	}
	return l.svc, nil
}

// Ready is closed once the initial load has finished, loaded or failed.
func (l *Loader) Ready() <-chan struct{} { return l.ready }

// loaded returns the service if loading has finished.
func (l *Loader) loaded() *Service {
	select {
	case <-l.ready:
		return l.svc
	default:
		return nil
	}
}

// List returns the loaded tools (none while loading).
func (l *Loader) List() []api.ToolInfo {
	if s := l.loaded(); s != nil {
		return s.List()
	}
	return nil
}

// Get returns a loaded tool (none while loading).
func (l *Loader) Get(name string) (api.ToolInfo, bool) {
	if s := l.loaded(); s != nil {
		return s.Get(name)
	}
	return api.ToolInfo{}, false
}

// Status reports whether a tool's module in the directory is loaded; while the
// initial load runs it says only that the tools are loading.
func (l *Loader) Status(ctx context.Context, name string) (api.ToolStatus, error) {
	select {
	case <-l.ready:
	default:
		return api.ToolStatus{Name: name, Loading: true}, nil
	}
	s, err := l.wait(ctx)
	if err != nil {
		return api.ToolStatus{}, err
	}
	return s.Status(name), nil
}

// Register waits for loading, then registers a manifest.
func (l *Loader) Register(ctx context.Context, m *api.ToolManifest) (bool, error) {
	s, err := l.wait(ctx)
	if err != nil {
		return false, err
	}
	return s.Register(ctx, m)
}

// Reload waits for loading, then reloads the tool directory.
func (l *Loader) Reload(ctx context.Context) (api.ToolReloadResponse, error) {
	s, err := l.wait(ctx)
	if err != nil {
		return api.ToolReloadResponse{}, err
	}
	return s.Reload(ctx)
}

// Execute waits for loading, then runs a tool.
func (l *Loader) Execute(ctx context.Context, req api.ExecuteRequest, requestID string) (*api.ExecuteResponse, error) {
	s, err := l.wait(ctx)
	if err != nil {
		return nil, err
	}
	return s.Execute(ctx, req, requestID)
}

// ToolPolicy is a loaded tool's effective egress policy (for POST /policy/check).
func (l *Loader) ToolPolicy(ctx context.Context, name string) (*egress.Policy, error) {
	if _, err := l.wait(ctx); err != nil {
		return nil, err
	}
	info, ok := l.Get(name)
	if !ok {
		return nil, api.Errorf(api.CodeToolNotFound, "tool %q not found", name)
	}
	return Policy(&info.ToolManifest, nil)
}

// Health reports whether the tools are loading, loaded or failed.
func (l *Loader) Health(context.Context) api.ComponentHealth {
	select {
	case <-l.ready:
	default:
		return api.ComponentHealth{Status: api.StatusOK, Detail: map[string]any{"loading": true}}
	}
	if l.err != nil {
		return api.ComponentHealth{Status: "error", Detail: map[string]any{"loading": false, "error": "tools could not be loaded; see the server log"}}
	}
	return api.ComponentHealth{Status: api.StatusOK, Detail: map[string]any{"loading": false, "tools_loaded": len(l.List())}}
}
