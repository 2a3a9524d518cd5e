package mcp

import (
	"context"
	"fmt"
	"sort"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawbox/clawbox/api"
)

// The sandbox tools. A WASM tool with one of these names is not offered.
const (
	toolSpawn = "sandbox_spawn"
	toolLogs  = "sandbox_logs"
	toolKill  = "sandbox_kill"
	toolList  = "sandbox_list"
)

var sandboxToolNames = map[string]bool{toolSpawn: true, toolLogs: true, toolKill: true, toolList: true,
	toolExec: true, toolReadFile: true, toolWriteFile: true, toolListFiles: true,
	toolAgentCreate: true, toolAgentList: true, toolAgentGet: true, toolAgentStart: true, toolAgentStop: true,
	toolAgentPause: true, toolAgentResume: true, toolAgentExec: true, toolAgentRemove: true}

// SpawnArgs are the arguments of sandbox_spawn.
type SpawnArgs struct {
	Template         string            `json:"template,omitempty" jsonschema:"name of an [images.templates] preset of the server's config; the other fields override it"`
	Image            string            `json:"image,omitempty" jsonschema:"image to run (local and allowed by containers.allowed_images); empty: the template's or the server's default image"`
	Command          []string          `json:"command,omitempty" jsonschema:"command and arguments, replacing the image's CMD"`
	Task             string            `json:"task,omitempty" jsonschema:"short description of the work, recorded and shown in sandbox_list"`
	Env              map[string]string `json:"env,omitempty" jsonschema:"extra environment variables"`
	NetworkAllowlist []string          `json:"network_allowlist,omitempty" jsonschema:"egress rules narrowing the server's policy, such as api.github.com or GET https://example.com/path; never widens it"`
	Credentials      []string          `json:"credentials,omitempty" jsonschema:"names of stored credentials the gateway may inject for this sandbox"`
	TimeoutMS        int64             `json:"timeout_ms,omitempty" jsonschema:"lifetime in milliseconds; the sandbox is stopped when it expires"`
	MemoryMB         int64             `json:"memory_mb,omitempty" jsonschema:"memory limit in MiB"`
	Labels           map[string]string `json:"labels,omitempty" jsonschema:"your own key/value tags, shown in sandbox_list and selectable with its label filter"`
	Workspace        bool              `json:"workspace,omitempty" jsonschema:"mount a quota-bounded read-write /workspace that is kept after the sandbox ends (for files to keep and programs to build and run)"`
}

// IDArgs name one sandbox.
type IDArgs struct {
	ContainerID string `json:"container_id" jsonschema:"the sandbox id returned by sandbox_spawn or sandbox_list (clawbox-...)"`
}

// ListArgs are the arguments of sandbox_list.
type ListArgs struct {
	Status string            `json:"status,omitempty" jsonschema:"only sandboxes with this status: creating, running, completed, failed, timed_out, killed or lost"`
	Label  map[string]string `json:"label,omitempty" jsonschema:"only sandboxes carrying every one of these labels (key: value)"`
}

// LogsResult is the structured result of sandbox_logs.
type LogsResult struct {
	ContainerID string `json:"container_id"`
	Status      string `json:"status"`
	ExitCode    *int   `json:"exit_code,omitempty"`
	Stdout      string `json:"stdout"`
	Stderr      string `json:"stderr"`
	Truncated   bool   `json:"truncated"`
}

// ListResult is the structured result of sandbox_list.
type ListResult struct {
	Containers []api.ContainerInfo `json:"containers"`
}

func (s *Server) addSandboxTools() {
	b := s.cfg.Backend
	sdk.AddTool(s.srv, &sdk.Tool{
		Name:        toolSpawn,
		Description: s.spawnDescription(),
		Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(true)},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in SpawnArgs) (*sdk.CallToolResult, any, error) {
		req, hint := s.spawnRequest(in)
		if hint != "" {
			return failure(api.CodeInvalidRequest, hint, nil), nil, nil
		}
		info, err := b.Spawn(ctx, req)
		if err != nil {
			return errorResult(err, hintContext{image: req.Image}), nil, nil
		}
		text := fmt.Sprintf("Sandbox %s is %s (image %s). Read its output and status with sandbox_logs; stop it with sandbox_kill.",
			info.ContainerID, info.Status, info.Image)
		return success(text, info), nil, nil
	})
	sdk.AddTool(s.srv, &sdk.Tool{
		Name:        toolLogs,
		Description: "Read a container sandbox's status, exit code and kept output (stdout and stderr). Call it again to see more output while the sandbox runs.",
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in IDArgs) (*sdk.CallToolResult, any, error) {
		if in.ContainerID == "" {
			return failure(api.CodeInvalidRequest, "container_id is required: take it from sandbox_spawn or sandbox_list", nil), nil, nil
		}
		info, err := b.Container(ctx, in.ContainerID)
		if err != nil {
			return errorResult(err, hintContext{container: in.ContainerID}), nil, nil
		}
		logs, err := b.Logs(ctx, in.ContainerID)
		if err != nil {
			return errorResult(err, hintContext{container: in.ContainerID}), nil, nil
		}
		out := LogsResult{ContainerID: info.ContainerID, Status: info.Status, ExitCode: info.ExitCode,
			Stdout: logs.Stdout, Stderr: logs.Stderr, Truncated: logs.Truncated}
		text := fmt.Sprintf("Sandbox %s is %s", out.ContainerID, out.Status)
		if out.ExitCode != nil {
			text += fmt.Sprintf(" (exit code %d)", *out.ExitCode)
		}
		text += ".\n--- stdout ---\n" + out.Stdout + "\n--- stderr ---\n" + out.Stderr
		if out.Truncated {
			text += "\n(output was truncated at the server's log cap)"
		}
		return success(text, out), nil, nil
	})
	sdk.AddTool(s.srv, &sdk.Tool{
		Name:        toolKill,
		Description: "Stop a container sandbox and return its final status and output. Killing a sandbox that already finished returns its final record.",
		Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in IDArgs) (*sdk.CallToolResult, any, error) {
		if in.ContainerID == "" {
			return failure(api.CodeInvalidRequest, "container_id is required: take it from sandbox_spawn or sandbox_list", nil), nil, nil
		}
		res, err := b.Kill(ctx, in.ContainerID)
		if err != nil {
			return errorResult(err, hintContext{container: in.ContainerID}), nil, nil
		}
		return success(fmt.Sprintf("Sandbox %s is %s.", res.ContainerID, res.Status), res), nil, nil
	})
	sdk.AddTool(s.srv, &sdk.Tool{
		Name:        toolList,
		Description: "List container sandboxes, newest first, with their status, image, task and deadline.",
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in ListArgs) (*sdk.CallToolResult, any, error) {
		list, err := b.ListContainers(ctx, api.ContainerFilter{Status: in.Status, Labels: in.Label})
		if err != nil {
			return errorResult(err, hintContext{}), nil, nil
		}
		if list == nil {
			list = []api.ContainerInfo{}
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "%d sandbox(es).", len(list))
		for _, c := range list {
			fmt.Fprintf(&sb, "\n%s %s %s %q", c.ContainerID, c.Status, c.Image, c.TaskSummary)
		}
		return success(sb.String(), ListResult{Containers: list}), nil, nil
	})
}

func (s *Server) spawnDescription() string {
	d := "Start a hardened container sandbox (read-only root, no capabilities, no network except clawbox's egress gateway at /run/clawbox/proxy.sock, time and memory limits) running command in image. Returns the sandbox id; read its output with sandbox_logs and stop it with sandbox_kill."
	if names := s.templateNames(); len(names) > 0 {
		d += " Templates: " + strings.Join(names, ", ") + "."
	}
	return d
}

func (s *Server) templateNames() []string {
	names := make([]string, 0, len(s.cfg.Templates))
	for n := range s.cfg.Templates {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// spawnRequest builds the spawn body from the arguments and a template; a non-empty
// hint says what is wrong with the arguments.
func (s *Server) spawnRequest(in SpawnArgs) (api.ContainerSpawnRequest, string) {
	var req api.ContainerSpawnRequest
	caps := api.ContainerCapabilities{}
	res := api.ContainerResources{}
	if in.Template != "" {
		t, ok := s.cfg.Templates[in.Template]
		if !ok {
			names := s.templateNames()
			if len(names) == 0 {
				return req, fmt.Sprintf("no template %q: the server's config defines no [images.templates]; pass image (and command) instead", in.Template)
			}
			return req, fmt.Sprintf("no template %q; use one of: %s, or pass image instead", in.Template, strings.Join(names, ", "))
		}
		req.Image, req.Task, req.Command = t.Image, t.Description, t.Command
		req.Env = map[string]string{}
		for k, v := range t.Env {
			req.Env[k] = v
		}
		if t.NetworkAllowlist != nil {
			caps.Network = &api.ContainerNetwork{Allowlist: t.NetworkAllowlist}
		}
		caps.Credentials = t.Credentials
		if t.MaxLifetimeMS > 0 {
			res.TimeoutMS = ptr(t.MaxLifetimeMS)
		}
		if t.MemoryMB > 0 {
			res.MemoryMB = ptr(t.MemoryMB)
		}
		caps.Workspace = t.Workspace
	}
	if in.Image != "" {
		req.Image = in.Image
	}
	if len(in.Command) > 0 {
		req.Command = in.Command
	}
	if len(in.Labels) > 0 {
		req.Labels = in.Labels
	}
	if in.Task != "" {
		req.Task = in.Task
	}
	if req.Task == "" {
		req.Task = "mcp: " + strings.Join(append([]string{orDefault(req.Image, "(default image)")}, req.Command...), " ")
	}
	if len(in.Env) > 0 {
		if req.Env == nil {
			req.Env = map[string]string{}
		}
		for k, v := range in.Env {
			req.Env[k] = v
		}
	}
	if in.NetworkAllowlist != nil {
		caps.Network = &api.ContainerNetwork{Allowlist: in.NetworkAllowlist}
	}
	if len(in.Credentials) > 0 {
		caps.Credentials = in.Credentials
	}
	if in.TimeoutMS < 0 || in.MemoryMB < 0 {
		return req, "timeout_ms and memory_mb must be positive (or left out for the server's defaults)"
	}
	if in.TimeoutMS > 0 {
		res.TimeoutMS = ptr(in.TimeoutMS)
	}
	if in.MemoryMB > 0 {
		res.MemoryMB = ptr(in.MemoryMB)
	}
	if res != (api.ContainerResources{}) {
		caps.Resources = &res
	}
	if in.Workspace {
		caps.Workspace = true
	}
	if caps.Network != nil || len(caps.Credentials) > 0 || caps.Resources != nil || caps.Workspace {
		req.Capabilities = &caps
	}
	return req, ""
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
