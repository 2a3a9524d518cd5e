package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/egress"
	"github.com/clawbox/clawbox/internal/secrets"
	"github.com/clawbox/clawbox/internal/server"
	"github.com/clawbox/clawbox/internal/store"
	"github.com/clawbox/clawbox/internal/wasm"
)

// startTools builds the WASM engine and the tool registry over [sandbox].tool_dir.
func startTools(ctx context.Context, cfg *config.Config, db *store.DB, gw *egress.Gateway, log *slog.Logger, onChange func()) (*wasm.Engine, *wasm.Registry, error) {
	eng, err := wasm.NewEngine(ctx, wasm.Config{
		CacheDir:       cfg.Sandbox.CacheDir,
		DefaultTimeout: msDuration(cfg.Sandbox.DefaultTimeoutMS),
		MaxTimeout:     msDuration(cfg.Sandbox.MaxTimeoutMS),
		MaxMemoryMB:    cfg.Sandbox.MaxMemoryMB,
		MaxOutputBytes: cfg.Sandbox.MaxOutputBytes,
		MaxStderrBytes: cfg.Sandbox.MaxStderrBytes,
		MaxHostCalls:   cfg.Sandbox.MaxHostCalls,
		Modules: wasm.ModuleLimits{
			MaxFunctions:      cfg.Sandbox.MaxModuleFunctions,
			MaxFunctionLocals: cfg.Sandbox.MaxFunctionLocals,
			MaxLocals:         cfg.Sandbox.MaxModuleLocals,
			MaxFunctionBytes:  cfg.Sandbox.MaxFunctionBytes,
			MaxCodeBytes:      cfg.Sandbox.MaxCodeBytes,
			MaxDataBytes:      cfg.Sandbox.MaxDataBytes,
			MaxTableElements:  cfg.Sandbox.MaxTableElements,
			MaxImports:        cfg.Sandbox.MaxModuleImports,
			MaxExports:        cfg.Sandbox.MaxModuleExports,
		},
		MaxConcurrentCompiles: cfg.Sandbox.MaxConcurrentCompiles,
		CompileTimeout:        msDuration(cfg.Sandbox.CompileTimeoutMS),
		HTTP:                  toolHTTP{gw: gw},
		Logger:                log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: WASM engine: %w", err)
	}
	reg, err := wasm.NewRegistry(ctx, wasm.RegistryConfig{
		Engine:         eng,
		Dir:            cfg.Sandbox.ToolDir,
		MaxModuleBytes: cfg.Sandbox.MaxModuleBytes,
		Store:          db,
		Watch:          cfg.Sandbox.WatchTools,
		OnChange:       onChange,
		Logger:         log,
	})
	if err != nil {
		eng.Close(context.WithoutCancel(ctx))
		return nil, nil, fmt.Errorf("sandbox.tool_dir: %w", err)
	}
	return eng, reg, nil
}

// toolGrants are the credentials a tool call may use: those its manifest makes
// available and, when the request names credentials, only those it requested.
func toolGrants(m *api.ToolManifest, caps *api.ExecuteCapabilities) []string {
	if m == nil || m.Credentials == nil {
		return nil
	}
	avail := m.Credentials.Available
	if caps == nil || caps.Credentials == nil {
		return avail
	}
	var out []string
	for _, c := range caps.Credentials {
		if slices.Contains(avail, c) {
			out = append(out, c)
		}
	}
	return out
}

// toolPolicy is a tool's effective egress policy: its manifest's allowlist, narrowed
// by the request's when it gives one.
func toolPolicy(m *api.ToolManifest, caps *api.ExecuteCapabilities) (*egress.Policy, error) {
	var allow []string
	if m != nil && m.Network != nil {
		allow = m.Network.Allowlist
	}
	var narrow []string
	if caps != nil && caps.Network != nil {
		narrow = caps.Network.Allowlist
		if narrow == nil {
			narrow = []string{}
		}
	}
	return egress.Effective(allow, narrow)
}

// toolHTTP sends the tools' http_request host calls through the egress pipeline with
// the tool's own policy and credentials.
type toolHTTP struct{ gw *egress.Gateway }

func (t toolHTTP) Do(ctx context.Context, call wasm.CallInfo, req wasm.HTTPRequest) (wasm.HTTPResponse, error) {
	p, err := toolPolicy(call.Manifest, call.Capabilities)
	if err != nil {
		return wasm.HTTPResponse{}, err
	}
	h := http.Header{}
	for k, v := range req.Headers {
		h.Set(k, v)
	}
	resp, err := t.gw.Do(ctx, egress.Call{
		Tool:      call.Tool,
		Policy:    p,
		Grants:    toolGrants(call.Manifest, call.Capabilities),
		RequestID: call.RequestID,
		Method:    req.Method,
		URL:       req.URL,
		Header:    h,
		Body:      req.Body,
	})
	if err != nil {
		return wasm.HTTPResponse{}, err
	}
	out := wasm.HTTPResponse{Status: resp.Status, Headers: map[string]string{}, Body: resp.Body, Truncated: resp.Truncated}
	for k, vs := range resp.Header {
		if len(vs) > 0 {
			out.Headers[http.CanonicalHeaderKey(k)] = vs[0]
			for _, v := range vs[1:] {
				out.Headers[http.CanonicalHeaderKey(k)] += ", " + v
			}
		}
	}
	return out, nil
}

// toolService is the HTTP routes' view of the registry: output, logs and error
// details redacted of secrets, an audit record and metrics for every execution.
type toolService struct {
	reg   *wasm.Registry
	creds *secrets.Store // nil: patterns only
	audit sink
	m     *toolMetrics
	log   *slog.Logger
}

type sink interface{ Record(audit.Record) }

var _ server.Tools = toolService{}

func (t toolService) List() []api.ToolInfo                 { return t.reg.List() }
func (t toolService) Get(name string) (api.ToolInfo, bool) { return t.reg.Get(name) }

func (t toolService) Register(ctx context.Context, m *api.ToolManifest) (bool, error) {
	created, err := t.reg.Register(ctx, m)
	if err == nil {
		t.m.loaded.Set(float64(len(t.reg.List())))
	}
	return created, err
}

func (t toolService) Reload(ctx context.Context) (api.ToolReloadResponse, error) {
	res, err := t.reg.Reload(ctx)
	if err == nil {
		t.m.loaded.Set(float64(len(t.reg.List())))
	}
	return res, err
}

func (t toolService) Execute(ctx context.Context, req api.ExecuteRequest, requestID string) (*api.ExecuteResponse, error) {
	start := time.Now()
	label := "unknown"
	if _, ok := t.reg.Get(req.Tool); ok {
		label = req.Tool
	}
	res, err := t.reg.Execute(ctx, req, requestID)
	elapsed := time.Since(start)
	rec := audit.Record{Kind: audit.KindExecution, Tool: req.Tool, RequestID: requestID, LatencyMS: elapsed.Milliseconds()}
	if err != nil {
		err = t.redactError(err)
		rec.Event = "failed"
		if e, ok := api.AsError(err); ok {
			rec.Error = e.Code + ": " + e.Message
			if d, ok := e.Details.(map[string]any); ok {
				if code, ok := d["exit_code"].(int64); ok {
					c := int(code)
					rec.ExitCode = &c
				}
			}
		} else {
			rec.Error = api.CodeInternal
		}
		t.audit.Record(rec)
		t.m.executions.WithLabelValues(label, "error").Inc()
		t.m.duration.WithLabelValues(label).Observe(float64(elapsed.Milliseconds()))
		return nil, err
	}
	resp := res.Response(requestID)
	issues := 0
	if len(resp.Output) > 0 {
		out, n, rerr := t.creds.RedactJSON(resp.Output)
		if rerr != nil {
			// Not JSON after all: RedactJSON redacted it as text; keep it as a string.
			b, _ := jsonString(out)
			out = b
		}
		resp.Output, issues = out, issues+n
	}
	for i := range resp.Metadata.Logs {
		b, n := t.creds.Redact([]byte(resp.Metadata.Logs[i].Message))
		resp.Metadata.Logs[i].Message = string(b)
		issues += n
	}
	if issues > 0 {
		resp.Metadata.Sanitization.IssuesFound = issues
		resp.Metadata.Sanitization.ActionsTaken = append(resp.Metadata.Sanitization.ActionsTaken, "redacted "+strconv.Itoa(issues)+" secret(s)")
		t.m.sanitized.Inc()
	}
	rec.Event = "executed"
	t.audit.Record(rec)
	t.m.executions.WithLabelValues(label, "ok").Inc()
	t.m.duration.WithLabelValues(label).Observe(float64(elapsed.Milliseconds()))
	return resp, nil
}

// redactError scrubs a tool error's message and details (the stderr tail comes from
// the tool and may hold anything).
func (t toolService) redactError(err error) error {
	e, ok := api.AsError(err)
	if !ok {
		return err
	}
	c := *e
	b, _ := t.creds.Redact([]byte(c.Message))
	c.Message = string(b)
	if d, ok := c.Details.(map[string]any); ok {
		nd := make(map[string]any, len(d))
		for k, v := range d {
			if s, ok := v.(string); ok {
				rb, _ := t.creds.Redact([]byte(s))
				v = string(rb)
			}
			nd[k] = v
		}
		c.Details = nd
	}
	return &c
}

type toolMetrics struct {
	executions *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	fuel       *prometheus.HistogramVec
	sanitized  prometheus.Counter
	loaded     prometheus.Gauge
}

func newToolMetrics(reg prometheus.Registerer) (*toolMetrics, error) {
	m := &toolMetrics{
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clawbox_wasm_executions_total", Help: "WASM tool executions by tool (unknown for names not loaded) and status.",
		}, []string{"tool", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clawbox_wasm_execution_ms", Help: "WASM tool execution wall time in milliseconds.",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000},
		}, []string{"tool"}),
		fuel: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clawbox_wasm_fuel_consumed", Help: "Kept for compatibility: wazero has no fuel, so this is never observed.",
		}, []string{"tool"}),
		sanitized: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clawbox_sanitization_issues_total", Help: "Executions whose output had secrets redacted.",
		}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "clawbox_tools_loaded", Help: "Tools currently loaded.",
		}),
	}
	for _, c := range []prometheus.Collector{m.executions, m.duration, m.fuel, m.sanitized, m.loaded} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// jsonString encodes b as a JSON string.
func jsonString(b []byte) ([]byte, error) { return json.Marshal(string(b)) }

// lazyTools serves the tool routes while the registry is still loading (the first
// start compiles every tool, which takes seconds): calls wait until it is ready.
type lazyTools struct {
	ready chan struct{} // closed once svc or err is set
	svc   server.Tools
	err   error
}

func (l *lazyTools) wait(ctx context.Context) (server.Tools, error) {
	select {
	case <-l.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if l.err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "WASM tools are not available: %v", l.err)
	}
	return l.svc, nil
}

// loaded returns the service if loading has finished.
func (l *lazyTools) loaded() server.Tools {
	select {
	case <-l.ready:
		return l.svc
	default:
		return nil
	}
}

func (l *lazyTools) List() []api.ToolInfo {
	if s := l.loaded(); s != nil {
		return s.List()
	}
	return nil
}

func (l *lazyTools) Get(name string) (api.ToolInfo, bool) {
	if s := l.loaded(); s != nil {
		return s.Get(name)
	}
	return api.ToolInfo{}, false
}

func (l *lazyTools) Register(ctx context.Context, m *api.ToolManifest) (bool, error) {
	s, err := l.wait(ctx)
	if err != nil {
		return false, err
	}
	return s.Register(ctx, m)
}

func (l *lazyTools) Reload(ctx context.Context) (api.ToolReloadResponse, error) {
	s, err := l.wait(ctx)
	if err != nil {
		return api.ToolReloadResponse{}, err
	}
	return s.Reload(ctx)
}

func (l *lazyTools) Execute(ctx context.Context, req api.ExecuteRequest, requestID string) (*api.ExecuteResponse, error) {
	s, err := l.wait(ctx)
	if err != nil {
		return nil, err
	}
	return s.Execute(ctx, req, requestID)
}
