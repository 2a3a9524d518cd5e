// Package server is clawbox's HTTP API: the route table, bearer authentication, the
// one mapping from errors to HTTP statuses and stable codes, request decoding, the
// execution concurrency limit, metrics and the OpenAPI document generated from the
// same route table that serves the requests.
//
// The server knows HTTP and nothing else: each domain (sandboxes, tools, the gateway)
// is reached through a small interface declared here and wired by `clawbox serve`.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clawbox/clawbox/api"
)

// Config is what the server needs. Zero values take the documented defaults.
type Config struct {
	// Token is the API bearer token. Required.
	Token string
	// MaxBodyBytes caps request bodies. Default 10 MiB.
	MaxBodyBytes int64
	// PublicHealth and PublicMetrics serve those routes without a token.
	PublicHealth  bool
	PublicMetrics bool
	// MaxConcurrent and MaxQueued size the execution limiter. Defaults 10 and 100.
	MaxConcurrent int
	MaxQueued     int
	// MaxExecs bounds the exec sessions (streamed, interactive or not) open at once
	// across the server; beyond it an exec is refused with 503 busy. Execs do not
	// take a slot of the execution limiter. Default 128.
	MaxExecs int
	// AllowedHosts are Host names (with an optional port) answered besides
	// localhost, 127.0.0.1, [::1] and the address a connection arrived at.
	AllowedHosts []string
	// AllowedOrigins are browser origins (scheme://host[:port]) allowed besides the
	// server's own.
	AllowedOrigins []string
	// Version is reported by an authenticated GET /health.
	Version string
	// Logger receives request logs and the details of internal errors. Default: discard.
	Logger *slog.Logger
	// Registry collects the server's metrics and is served at /metrics. Default: a new
	// registry with the Go and process collectors.
	Registry *prometheus.Registry
	// Health lists the components reported by an authenticated GET /health.
	Health []HealthCheck
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// HealthCheck reports the state of one component for GET /health.
type HealthCheck struct {
	Name  string
	Check func(ctx context.Context) api.ComponentHealth
}

// Server serves the clawbox API. Create it with New, add routes with Handle before
// serving, then call Handler or Serve.
type Server struct {
	cfg     Config
	log     *slog.Logger
	started time.Time
	limiter *Limiter
	execs   chan struct{} // one token per open exec session (Config.MaxExecs)
	metrics *httpMetrics
	guard   *browserGuard

	// stopping is closed when shutdown begins, so long-lived streams end promptly.
	stopping     chan struct{}
	stoppingOnce sync.Once

	mu       sync.Mutex // guards routes and mux while routes are being added
	routes   []Route
	patterns map[string]*patternRoutes
	mux      *http.ServeMux
	handler  http.Handler
}

// New returns a server with the built-in routes (/health, /metrics, /openapi.json).
func New(cfg Config) (*Server, error) {
	if cfg.Token == "" {
		return nil, errors.New("server: no auth token")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 10 << 20
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 10
	}
	if cfg.MaxExecs <= 0 {
		cfg.MaxExecs = 128
	}
	if cfg.MaxQueued < 0 {
		cfg.MaxQueued = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	guard, err := newBrowserGuard(cfg.AllowedHosts, cfg.AllowedOrigins)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	m, err := newHTTPMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		started:  cfg.Now(),
		limiter:  NewLimiter(cfg.MaxConcurrent, cfg.MaxQueued),
		execs:    make(chan struct{}, cfg.MaxExecs),
		metrics:  m,
		guard:    guard,
		patterns: map[string]*patternRoutes{},
		mux:      http.NewServeMux(),
		stopping: make(chan struct{}),
	}
	s.mux.Handle("/", http.HandlerFunc(s.noRoute))
	s.mountUI()
	s.handler = s.middleware(s.canonicalPaths(s.mux))

	auth := AuthRequired
	if cfg.PublicHealth {
		auth = AuthOptional
	}
	s.Handle(Route{Method: http.MethodGet, Pattern: "/health", Auth: auth, Handler: s.health, Doc: Doc{
		Summary:   "Server health",
		Describe:  "Public by default and then minimal ({\"status\"}); with a valid token it adds the version, uptime and each component's state.",
		Tags:      []string{"server"},
		Responses: []Response{{Status: 200, Body: api.HealthResponse{}}},
	}})
	mauth := AuthRequired
	if cfg.PublicMetrics {
		mauth = AuthPublic
	}
	metricsHandler := promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError)})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/metrics", Auth: mauth, Handler: func(w http.ResponseWriter, r *http.Request) error {
		metricsHandler.ServeHTTP(w, r)
		return nil
	}, Doc: Doc{
		Summary:   "Prometheus metrics",
		Tags:      []string{"server"},
		Responses: []Response{{Status: 200, ContentType: "text/plain"}},
	}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/openapi.json", Auth: AuthPublic, Handler: s.openAPI, Doc: Doc{
		Summary:   "This API's OpenAPI 3.1 document",
		Tags:      []string{"server"},
		Responses: []Response{{Status: 200, ContentType: "application/json"}},
	}})
	return s, nil
}

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler { return s.handler }

// AddHealth adds a component to GET /health. Call it before serving.
func (s *Server) AddHealth(hc HealthCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Health = append(s.cfg.Health, hc)
}

// Stopping is closed when the server begins to shut down; streaming handlers end then.
func (s *Server) Stopping() <-chan struct{} { return s.stopping }

// Limiter returns the execution limiter, for routes that acquire it themselves.
func (s *Server) Limiter() *Limiter { return s.limiter }

// Routes returns the route table, sorted by pattern then method.
func (s *Server) Routes() []Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]Route(nil), s.routes...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pattern != out[j].Pattern {
			return out[i].Pattern < out[j].Pattern
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// Serve serves the API on each listener until ctx is done, then shuts down
// gracefully within timeout. It returns the first serving error, if any.
func (s *Server) Serve(ctx context.Context, timeout time.Duration, listeners ...net.Listener) error {
	servers := make([]*http.Server, len(listeners))
	errc := make(chan error, len(listeners))
	for i, ln := range listeners {
		hs := &http.Server{
			Handler:           s.handler,
			ReadHeaderTimeout: 10 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
			BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		}
		servers[i] = hs
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
				return
			}
			errc <- nil
		}()
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
		if first == nil {
			first = errors.New("a listener stopped unexpectedly")
		}
	}
	s.stoppingOnce.Do(func() { close(s.stopping) })
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	for _, hs := range servers {
		if err := hs.Shutdown(sctx); err != nil {
			s.log.Warn("graceful shutdown incomplete, closing connections", "err", err)
			hs.Close()
		}
	}
	// Collect every serving goroutine (one result each; the first may already be in).
	pending := len(listeners)
	if first != nil {
		pending--
	}
	for ; pending > 0; pending-- {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}
