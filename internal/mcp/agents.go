package mcp

import (
	"context"
	"fmt"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawbox/clawbox/api"
)

// The agent tools (named, long-lived sandboxes). A WASM tool with one of these
// names is not offered.
const (
	toolAgentCreate = "agent_create"
	toolAgentList   = "agent_list"
	toolAgentGet    = "agent_get"
	toolAgentStart  = "agent_start"
	toolAgentStop   = "agent_stop"
	toolAgentPause  = "agent_pause"
	toolAgentResume = "agent_resume"
	toolAgentExec   = "agent_exec"
	toolAgentRemove = "agent_remove"
)

// AgentBackend is the agents' part of the clawbox API (*client.Client implements
// it). A Backend without it offers no agent tools.
type AgentBackend interface {
	CreateAgent(ctx context.Context, cfg api.AgentConfig) (*api.AgentInfo, error)
	Agents(ctx context.Context) ([]api.AgentInfo, error)
	Agent(ctx context.Context, id string) (*api.AgentInfo, error)
	StartAgent(ctx context.Context, id string) (*api.AgentInfo, error)
	StopAgent(ctx context.Context, id string) (*api.AgentInfo, error)
	PauseAgent(ctx context.Context, id string) (*api.AgentInfo, error)
	ResumeAgent(ctx context.Context, id string) (*api.AgentInfo, error)
	RemoveAgent(ctx context.Context, id string, workspace bool) error
	AgentExec(ctx context.Context, id string, req api.ExecRequest) (api.ExecResult, error)
}

// AgentCreateArgs are the arguments of agent_create.
type AgentCreateArgs struct {
	AgentID          string            `json:"agent_id" jsonschema:"1 to 64 letters, digits and '-'; names the agent in every other agent_ tool"`
	Name             string            `json:"name,omitempty" jsonschema:"display name (default agent_id)"`
	Image            string            `json:"image,omitempty" jsonschema:"image to run (local and allowed by the server); empty: the server's default image"`
	Command          []string          `json:"command,omitempty" jsonschema:"the agent's main process; empty: it waits and you drive it with agent_exec"`
	Env              map[string]string `json:"env,omitempty" jsonschema:"extra environment variables"`
	NetworkAllowlist []string          `json:"network_allowlist,omitempty" jsonschema:"egress rules narrowing the server's policy; never widens it"`
	Credentials      []string          `json:"credentials,omitempty" jsonschema:"names of stored credentials the gateway may inject for this agent"`
	MemoryMB         int64             `json:"memory_mb,omitempty" jsonschema:"memory limit in MiB"`
	MaxIdleMS        *int64            `json:"max_idle_ms,omitempty" jsonschema:"stop (or pause) the agent after this many milliseconds without exec, file call or network request (default 1 hour; 0 never)"`
	IdleAction       string            `json:"idle_action,omitempty" jsonschema:"what idleness does: stop (default) or pause"`
	MaxLifetimeMS    int64             `json:"max_lifetime_ms,omitempty" jsonschema:"longest one start runs in milliseconds, paused time not counted (default the server's maximum)"`
	RestartOnCrash   bool              `json:"restart_on_crash,omitempty" jsonschema:"start the agent again when its main process fails"`
	MaxRestarts      *int              `json:"max_restarts,omitempty" jsonschema:"restarts in a row before the agent is failed (default 3)"`
	Start            bool              `json:"start,omitempty" jsonschema:"start the agent right away"`
}

// AgentIDArgs name one agent.
type AgentIDArgs struct {
	AgentID string `json:"agent_id" jsonschema:"the agent's id, from agent_create or agent_list"`
}

// AgentRemoveArgs are the arguments of agent_remove.
type AgentRemoveArgs struct {
	AgentID   string `json:"agent_id" jsonschema:"the agent's id"`
	Workspace bool   `json:"workspace,omitempty" jsonschema:"also delete the agent's /workspace files (default: they are kept)"`
}

// AgentExecArgs are the arguments of agent_exec.
type AgentExecArgs struct {
	AgentID   string            `json:"agent_id" jsonschema:"the running agent's id"`
	Cmd       []string          `json:"cmd" jsonschema:"program and arguments, no shell: use [\"sh\", \"-c\", \"...\"] for pipes and redirection"`
	Stdin     string            `json:"stdin,omitempty" jsonschema:"text written to the command's standard input (then closed)"`
	Workdir   string            `json:"workdir,omitempty" jsonschema:"absolute working directory inside the sandbox"`
	Env       map[string]string `json:"env,omitempty" jsonschema:"extra environment variables for this command"`
	TimeoutMS int64             `json:"timeout_ms,omitempty" jsonschema:"end the command after this many milliseconds"`
}

// AgentListResult is the structured result of agent_list.
type AgentListResult struct {
	Agents []api.AgentInfo `json:"agents"`
}

func needAgent(id string) *sdk.CallToolResult {
	if id == "" {
		return failure(api.CodeInvalidRequest, "agent_id is required: take it from agent_create or agent_list", nil)
	}
	return nil
}

func agentText(a *api.AgentInfo) string {
	text := fmt.Sprintf("Agent %s is %s", a.AgentID, a.Status)
	if a.ContainerID != nil {
		text += " in sandbox " + *a.ContainerID
	}
	if a.Reason != "" {
		text += " (" + a.Reason + ")"
	}
	switch a.Status {
	case api.AgentStatusRunning:
		text += ". Run commands with agent_exec; files in /workspace are kept across stops and starts."
	case api.AgentStatusPaused:
		text += ". Resume it with agent_resume before agent_exec."
	case api.AgentStatusIdle, api.AgentStatusFailed, api.AgentStatusTerminated:
		text += ". Start it with agent_start."
	default:
		text += "."
	}
	return text
}

func (s *Server) addAgentTools(b AgentBackend) {
	sdk.AddTool(s.srv, &sdk.Tool{
		Name: toolAgentCreate,
		Description: "Create an agent: a named, long-lived container sandbox with its own /workspace (kept across stops and starts) and a lifecycle policy " +
			"(idle stop or pause, max lifetime, restart on crash). It is held to the same policy as sandbox_spawn. With start: true it starts at once.",
		Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(true)},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in AgentCreateArgs) (*sdk.CallToolResult, any, error) {
		if r := needAgent(in.AgentID); r != nil {
			return r, nil, nil
		}
		cfg := api.AgentConfig{AgentID: in.AgentID, Name: in.Name, Image: in.Image, Command: in.Command, Env: in.Env}
		if cfg.Name == "" {
			cfg.Name = in.AgentID
		}
		caps := &api.ContainerCapabilities{Credentials: in.Credentials}
		if in.NetworkAllowlist != nil {
			caps.Network = &api.ContainerNetwork{Allowlist: in.NetworkAllowlist}
		}
		if in.MemoryMB > 0 {
			m := in.MemoryMB
			caps.Resources = &api.ContainerResources{MemoryMB: &m}
		}
		cfg.Capabilities = caps
		lc := &api.AgentLifecycle{MaxIdleMS: in.MaxIdleMS, IdleAction: in.IdleAction, RestartOnCrash: in.RestartOnCrash, MaxRestarts: in.MaxRestarts}
		if in.MaxLifetimeMS > 0 {
			v := in.MaxLifetimeMS
			lc.MaxLifetimeMS = &v
		}
		cfg.Lifecycle = lc
		a, err := b.CreateAgent(ctx, cfg)
		if err != nil {
			return errorResult(err, hintContext{image: in.Image}), nil, nil
		}
		if in.Start {
			if a, err = b.StartAgent(ctx, in.AgentID); err != nil {
				return errorResult(err, hintContext{image: in.Image}), nil, nil
			}
		}
		return success(agentText(a), a), nil, nil
	})
	sdk.AddTool(s.srv, &sdk.Tool{
		Name:        toolAgentList,
		Description: "List the agents with their status (idle, starting, running, paused, stopping, failed, terminated) and current sandbox.",
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
		list, err := b.Agents(ctx)
		if err != nil {
			return errorResult(err, hintContext{}), nil, nil
		}
		if list == nil {
			list = []api.AgentInfo{}
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "%d agents.", len(list))
		for i := range list {
			sb.WriteString("\n" + agentText(&list[i]))
		}
		return success(sb.String(), AgentListResult{Agents: list}), nil, nil
	})
	for _, op := range []struct {
		name, desc string
		ro         bool
		fn         func(context.Context, string) (*api.AgentInfo, error)
	}{
		{toolAgentGet, "Read one agent's status, current sandbox, activity and restart count.", true, b.Agent},
		{toolAgentStart, "Start an idle, failed or terminated agent (a new sandbox, the same /workspace).", false, b.StartAgent},
		{toolAgentStop, "Stop a running, paused or restarting agent; its /workspace is kept.", false, b.StopAgent},
		{toolAgentPause, "Pause a running agent: its processes freeze and its lifetime clock stops until agent_resume.", false, b.PauseAgent},
		{toolAgentResume, "Resume a paused agent.", false, b.ResumeAgent},
	} {
		ann := &sdk.ToolAnnotations{ReadOnlyHint: op.ro}
		if !op.ro {
			ann.DestructiveHint = ptr(op.name == toolAgentStop)
		}
		sdk.AddTool(s.srv, &sdk.Tool{Name: op.name, Description: op.desc, Annotations: ann},
			func(ctx context.Context, _ *sdk.CallToolRequest, in AgentIDArgs) (*sdk.CallToolResult, any, error) {
				if r := needAgent(in.AgentID); r != nil {
					return r, nil, nil
				}
				a, err := op.fn(ctx, in.AgentID)
				if err != nil {
					return errorResult(err, hintContext{}), nil, nil
				}
				return success(agentText(a), a), nil, nil
			})
	}
	sdk.AddTool(s.srv, &sdk.Tool{
		Name: toolAgentExec,
		Description: "Run a command in a running agent (as the sandbox user) and return its stdout, stderr and exit code once it ends. " +
			"State persists between calls; files under /workspace persist across stops and starts. It counts as the agent's activity.",
		Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(true), OpenWorldHint: ptr(true)},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in AgentExecArgs) (*sdk.CallToolResult, any, error) {
		if r := needAgent(in.AgentID); r != nil {
			return r, nil, nil
		}
		if len(in.Cmd) == 0 {
			return failure(api.CodeInvalidRequest, `cmd must name a program, for example ["ls", "-la", "/workspace"]`, nil), nil, nil
		}
		if in.TimeoutMS < 0 {
			return failure(api.CodeInvalidRequest, "timeout_ms must be positive (or left out for the server's default)", nil), nil, nil
		}
		res, err := b.AgentExec(ctx, in.AgentID, api.ExecRequest{Cmd: in.Cmd, Stdin: in.Stdin, Workdir: in.Workdir, Env: in.Env, TimeoutMS: in.TimeoutMS})
		if err != nil {
			return errorResult(err, hintContext{}), nil, nil
		}
		return execToolResult(res), nil, nil
	})
	sdk.AddTool(s.srv, &sdk.Tool{
		Name:        toolAgentRemove,
		Description: "Remove an agent, ending its sandbox. Its /workspace files are kept on the server unless workspace is true.",
		Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: false},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in AgentRemoveArgs) (*sdk.CallToolResult, any, error) {
		if r := needAgent(in.AgentID); r != nil {
			return r, nil, nil
		}
		if err := b.RemoveAgent(ctx, in.AgentID, in.Workspace); err != nil {
			return errorResult(err, hintContext{}), nil, nil
		}
		return success("Agent "+in.AgentID+" removed.", map[string]any{"agent_id": in.AgentID, "removed": true, "workspace_removed": in.Workspace}), nil, nil
	})
}
