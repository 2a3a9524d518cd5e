// Package mcp serves clawbox to MCP clients (Claude Code, Cursor, agent frameworks):
// every WASM tool the server has loaded, with its manifest's input schema, plus the
// container sandbox tools (sandbox_spawn, sandbox_logs, sandbox_kill, sandbox_list,
// and in a running sandbox sandbox_exec, sandbox_read_file, sandbox_write_file and
// sandbox_list_files).
//
// It is built on the official Go SDK and knows nothing about HTTP or the daemon: it
// talks to clawbox through a Backend, which the Go client satisfies, so the stdio
// bridge (`clawbox mcp`) and the server's own /mcp endpoint see exactly the API's
// behaviour and errors. Failures come back to the model as tool results with IsError
// and a message that says what to do next, never as protocol errors.
package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/config"
)

// Backend is the part of the clawbox API the MCP server uses. *client.Client
// satisfies it.
type Backend interface {
	Tools(ctx context.Context) ([]api.ToolInfo, error)
	Execute(ctx context.Context, req api.ExecuteRequest) (*api.ExecuteResponse, error)
	Spawn(ctx context.Context, req api.ContainerSpawnRequest) (*api.ContainerInfo, error)
	ListContainers(ctx context.Context, f api.ContainerFilter) ([]api.ContainerInfo, error)
	Container(ctx context.Context, id string) (*api.ContainerInfo, error)
	Kill(ctx context.Context, id string) (*api.KillResponse, error)
	Logs(ctx context.Context, id string) (*api.ContainerLogs, error)
	Exec(ctx context.Context, id string, req api.ExecRequest) (api.ExecResult, error)
	ReadFile(ctx context.Context, id, path string, w io.Writer) (int64, error)
	WriteFile(ctx context.Context, id, path string, r io.Reader, mode uint32) (api.FileWritten, error)
	ListFiles(ctx context.Context, id, path string) (api.FileList, error)
}

// Config configures a Server.
type Config struct {
	// Backend is the clawbox API. Required.
	Backend Backend
	// Templates are the [images.templates] of the config, offered to sandbox_spawn.
	// Nil means none.
	Templates map[string]config.Template
	// Version is reported to clients as the server version.
	Version string
	// Ready, when set, holds tools/list back until it is closed (or the request
	// ends): the server closes it once the initial tool load is reflected in the
	// tool set, so a client's first list is complete. Nil: no wait.
	Ready <-chan struct{}
	// Logger receives diagnostics. Default: discard. (Never stdout: the stdio
	// transport owns it.)
	Logger *slog.Logger
}

// Server is an MCP server whose tool set follows the clawbox server's.
type Server struct {
	cfg Config
	log *slog.Logger
	srv *sdk.Server

	mu   sync.Mutex        // guards wasm and serializes Refresh
	wasm map[string]string // WASM tools now offered: name → fingerprint of its definition
}

// New returns a server offering the sandbox tools; call Refresh to add the WASM tools.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("mcp: no backend")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	s := &Server{cfg: cfg, log: cfg.Logger, wasm: map[string]string{}}
	s.srv = sdk.NewServer(&sdk.Implementation{Name: "clawbox", Title: "clawbox sandbox", Version: cfg.Version}, &sdk.ServerOptions{
		Instructions: instructions,
		Logger:       cfg.Logger,
		Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{ListChanged: true}},
	})
	s.addSandboxTools()
	s.addExecTools()
	if ab, ok := cfg.Backend.(AgentBackend); ok {
		s.addAgentTools(ab)
	}
	s.srv.AddReceivingMiddleware(s.unknownTools)
	return s, nil
}

// unknownTools sends a call of a tool this server does not list to the backend
// anyway, instead of the SDK's protocol error: the clawbox server is the authority
// (a tool added since the last refresh runs; an unknown one gives tool_not_found,
// as a result the model can read and act on).
func (s *Server) unknownTools(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		if method == "tools/list" && s.cfg.Ready != nil {
			select {
			case <-s.cfg.Ready:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if r, ok := req.(*sdk.CallToolRequest); ok && method == "tools/call" && r.Params != nil {
			if !s.offers(r.Params.Name) {
				return s.executeHandler(r.Params.Name)(ctx, r)
			}
			if res := s.checkRequired(ctx, next, r); res != nil {
				return res, nil
			}
		}
		return next(ctx, method, req)
	}
}

// offers reports whether name is one of the tools now listed.
func (s *Server) offers(name string) bool {
	if sandboxToolNames[name] {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.wasm[name]
	return ok
}

const instructions = `clawbox runs code in sandboxes. Its WASM tools run one call each in a fresh WebAssembly
instance; sandbox_spawn starts a hardened Docker container (no network except clawbox's
egress gateway, read-only root, time and memory limits), sandbox_logs reads its output
and status, sandbox_kill stops it, sandbox_list lists them. In a running sandbox,
sandbox_exec runs commands one after another (state persists between them),
sandbox_write_file and sandbox_read_file move files in and out, and sandbox_list_files
lists a directory. agent_create makes a named, long-lived sandbox (an agent) whose
/workspace is kept across stops and starts; agent_start, agent_exec, agent_pause,
agent_resume, agent_stop, agent_list and agent_remove drive it. Tool errors say what
to do next.`

// MCP returns the SDK server, to connect transports or build an HTTP handler.
func (s *Server) MCP() *sdk.Server { return s.srv }

// Run serves one session on t until the client disconnects or ctx ends.
func (s *Server) Run(ctx context.Context, t sdk.Transport) error { return s.srv.Run(ctx, t) }

// Refresh re-reads the backend's tools and adds, replaces or removes MCP tools so
// that they match. Connected clients get notifications/tools/list_changed when
// anything changed. It reports whether the set changed.
func (s *Server) Refresh(ctx context.Context) (bool, error) {
	infos, err := s.cfg.Backend.Tools(ctx)
	if err != nil {
		return false, fmt.Errorf("list tools: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	changed := false
	for _, info := range infos {
		name := info.Tool.Name
		if sandboxToolNames[name] {
			s.log.Warn("mcp: WASM tool hidden: its name is taken by a sandbox tool", "tool", name)
			continue
		}
		seen[name] = true
		t := s.wasmTool(info)
		fp, err := json.Marshal(t)
		if err != nil {
			return changed, err
		}
		if s.wasm[name] == string(fp) {
			continue
		}
		s.srv.AddTool(t, s.executeHandler(name))
		s.wasm[name] = string(fp)
		changed = true
	}
	var gone []string
	for name := range s.wasm {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		sort.Strings(gone)
		s.srv.RemoveTools(gone...)
		for _, n := range gone {
			delete(s.wasm, n)
		}
		changed = true
	}
	return changed, nil
}

// wasmTool is the MCP definition of a WASM tool.
func (s *Server) wasmTool(info api.ToolInfo) *sdk.Tool {
	desc := info.Tool.Description
	if desc == "" {
		desc = "clawbox WASM tool " + info.Tool.Name
	}
	return &sdk.Tool{
		Name:        info.Tool.Name,
		Description: desc,
		InputSchema: inputSchema(info.InputSchema),
		Annotations: &sdk.ToolAnnotations{OpenWorldHint: ptr(info.Network != nil && len(info.Network.Allowlist) > 0)},
	}
}

// permissiveSchema accepts any arguments object.
var permissiveSchema = json.RawMessage(`{"type":"object","additionalProperties":true}`)

// inputSchema returns a manifest's input schema as an MCP input schema: a JSON
// object whose type is "object" (set when missing). Anything else (absent, not an
// object, another type) gives the permissive object schema, since MCP arguments are
// always an object.
func inputSchema(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return permissiveSchema
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return permissiveSchema
	}
	switch t := m["type"].(type) {
	case nil:
		m["type"] = "object"
	case string:
		if t != "object" {
			return permissiveSchema
		}
	default:
		return permissiveSchema
	}
	b, err := json.Marshal(m)
	if err != nil {
		return permissiveSchema
	}
	return b
}

// executeHandler calls POST /execute for the WASM tool name.
func (s *Server) executeHandler(name string) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		args := req.Params.Arguments
		if len(bytes.TrimSpace(args)) == 0 || string(bytes.TrimSpace(args)) == "null" {
			args = json.RawMessage(`{}`)
		}
		res, err := s.cfg.Backend.Execute(ctx, api.ExecuteRequest{Tool: name, Params: args})
		if err != nil {
			return errorResult(err, hintContext{tool: name}), nil
		}
		out := res.Output
		if len(out) == 0 {
			out = json.RawMessage(`null`)
		}
		logs := res.Metadata.Logs
		if logs == nil {
			logs = []api.LogEntry{}
		}
		return &sdk.CallToolResult{
			Content: []sdk.Content{&sdk.TextContent{Text: string(out)}},
			StructuredContent: ExecuteResult{
				Output:          out,
				ExecutionTimeMS: res.Metadata.ExecutionTimeMS,
				Logs:            logs,
				Redactions:      res.Metadata.Sanitization.IssuesFound,
			},
		}, nil
	}
}

// ExecuteResult is the structured result of a WASM tool call.
type ExecuteResult struct {
	// Output is the tool's JSON output (a string for output that is not JSON).
	Output          json.RawMessage `json:"output"`
	ExecutionTimeMS int64           `json:"execution_time_ms"`
	// Logs are the tool's log host calls.
	Logs []api.LogEntry `json:"logs"`
	// Redactions counts the secrets redacted from the output.
	Redactions int `json:"redactions"`
}

func ptr[T any](v T) *T { return &v }

// Serve serves one session on t until the client disconnects or ctx ends, and
// meanwhile re-reads the backend's tools every poll (when poll > 0), so that the
// client hears of tools added or removed on the server. The polling goroutine ends
// before Serve returns.
func (s *Server) Serve(ctx context.Context, t sdk.Transport, poll time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if poll > 0 {
		wg.Go(func() { s.poll(ctx, poll) })
	}
	return s.srv.Run(ctx, t)
}

func (s *Server) poll(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		changed, err := s.Refresh(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				s.log.Warn("mcp: cannot refresh the tool list; retrying", "err", err)
			}
			failing = true
		case err == nil:
			if failing {
				s.log.Info("mcp: tool list refreshed again")
			}
			failing = false
			if changed {
				s.log.Debug("mcp: tool list changed")
			}
		}
	}
}
