package toolexec

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/wasm"
)

// Redactor scrubs known secrets and credential patterns from text.
type Redactor interface {
	// Redact returns b with every secret replaced, and how many were.
	Redact(b []byte) ([]byte, int)
	// RedactJSON redacts inside a JSON document's values, keeping it valid JSON; for
	// text that is not JSON it returns the text redacted and an error.
	RedactJSON(raw []byte) ([]byte, int, error)
}

// AuditSink receives one record per execution.
type AuditSink interface{ Record(audit.Record) }

// Service is the tool routes' view of a registry: output, logs and error details
// redacted of secrets, an audit record and metrics for every execution.
type Service struct {
	reg     *wasm.Registry
	redact  Redactor
	audit   AuditSink
	metrics *Metrics
}

// NewService returns the service over reg. Every argument is required.
func NewService(reg *wasm.Registry, redact Redactor, sink AuditSink, m *Metrics) *Service {
	return &Service{reg: reg, redact: redact, audit: sink, metrics: m}
}

// List returns the loaded tools.
func (t *Service) List() []api.ToolInfo { return t.reg.List() }

// Get returns one loaded tool.
func (t *Service) Get(name string) (api.ToolInfo, bool) { return t.reg.Get(name) }

// Status reports whether a tool's module in the directory is loaded (wasm.Registry.Status).
func (t *Service) Status(name string) api.ToolStatus { return t.reg.Status(name) }

// Register registers (or replaces) a tool's manifest.
func (t *Service) Register(ctx context.Context, m *api.ToolManifest) (bool, error) {
	created, err := t.reg.Register(ctx, m)
	if err == nil {
		t.metrics.loaded.Set(float64(len(t.reg.List())))
	}
	return created, err
}

// Reload reloads the tool directory.
func (t *Service) Reload(ctx context.Context) (api.ToolReloadResponse, error) {
	res, err := t.reg.Reload(ctx)
	if err == nil {
		t.metrics.loaded.Set(float64(len(t.reg.List())))
	}
	return res, err
}

// Execute runs a tool, audits it, counts it and redacts what it returns.
func (t *Service) Execute(ctx context.Context, req api.ExecuteRequest, requestID string) (*api.ExecuteResponse, error) {
	start := time.Now()
	label := "unknown"
	if _, ok := t.reg.Get(req.Tool); ok {
		label = req.Tool
	}
	res, err := t.reg.Execute(ctx, req, requestID)
	elapsed := time.Since(start)
	rec := audit.Record{Kind: audit.KindExecution, Tool: req.Tool, RequestID: requestID, LatencyMS: elapsed.Milliseconds()}
	if err != nil {
		var te *wasm.ToolError
		if errors.As(err, &te) {
			rec.ExitCode = te.ExitCode
		}
		err = t.redactError(err)
		rec.Event = "failed"
		if e, ok := api.AsError(err); ok {
			rec.Error = e.Code + ": " + e.Message
		} else {
			rec.Error = api.CodeInternal
		}
		t.audit.Record(rec)
		t.metrics.executions.WithLabelValues(label, "error").Inc()
		t.metrics.duration.WithLabelValues(label).Observe(float64(elapsed.Milliseconds()))
		return nil, err
	}
	resp := res.Response(requestID)
	issues := 0
	if len(resp.Output) > 0 {
		out, n, rerr := t.redact.RedactJSON(resp.Output)
		if rerr != nil {
			// Not JSON after all: RedactJSON redacted it as text; keep it as a string.
			b, _ := json.Marshal(string(out))
			out = b
		}
		resp.Output, issues = out, issues+n
	}
	for i := range resp.Metadata.Logs {
		b, n := t.redact.Redact([]byte(resp.Metadata.Logs[i].Message))
		resp.Metadata.Logs[i].Message = string(b)
		issues += n
	}
	if issues > 0 {
		resp.Metadata.Sanitization.IssuesFound = issues
		resp.Metadata.Sanitization.ActionsTaken = append(resp.Metadata.Sanitization.ActionsTaken, "redacted "+strconv.Itoa(issues)+" secret(s)")
		t.metrics.sanitized.Inc()
	}
	rec.Event = "executed"
	t.audit.Record(rec)
	t.metrics.executions.WithLabelValues(label, "ok").Inc()
	t.metrics.duration.WithLabelValues(label).Observe(float64(elapsed.Milliseconds()))
	return resp, nil
}

// redactError scrubs a tool error's message and details (the stderr tail comes from
// the tool and may hold anything).
func (t *Service) redactError(err error) error {
	e, ok := api.AsError(err)
	if !ok {
		return err
	}
	c := *e
	b, _ := t.redact.Redact([]byte(c.Message))
	c.Message = string(b)
	if d, ok := c.Details.(map[string]any); ok {
		nd := make(map[string]any, len(d))
		for k, v := range d {
			if s, ok := v.(string); ok {
				rb, _ := t.redact.Redact([]byte(s))
				v = string(rb)
			}
			nd[k] = v
		}
		c.Details = nd
	}
	return &c
}
