package client

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/clawbox/clawbox/api"
)

func agentPath(id string) string { return "/agents/" + url.PathEscape(id) }

// CreateAgent registers an agent (status idle): a named, long-lived sandbox
// with a lifecycle policy and its own workspace. A duplicate id is 409 conflict.
func (c *Client) CreateAgent(ctx context.Context, cfg api.AgentConfig) (*api.AgentInfo, error) {
	var out api.AgentInfo
	if err := c.do(ctx, http.MethodPost, "/agents", cfg, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Agents lists the agents, oldest first.
func (c *Client) Agents(ctx context.Context) ([]api.AgentInfo, error) {
	var out api.AgentList
	if err := c.do(ctx, http.MethodGet, "/agents", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Agent returns one agent.
func (c *Client) Agent(ctx context.Context, id string) (*api.AgentInfo, error) {
	var out api.AgentInfo
	if err := c.do(ctx, http.MethodGet, agentPath(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) agentOp(ctx context.Context, id, op string) (*api.AgentInfo, error) {
	var out api.AgentInfo
	if err := c.do(ctx, http.MethodPost, agentPath(id)+"/"+op, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StartAgent starts an idle, failed or terminated agent; any other status is 409
// conflict.
func (c *Client) StartAgent(ctx context.Context, id string) (*api.AgentInfo, error) {
	return c.agentOp(ctx, id, "start")
}

// StopAgent stops a running, paused or restarting agent (status idle).
func (c *Client) StopAgent(ctx context.Context, id string) (*api.AgentInfo, error) {
	return c.agentOp(ctx, id, "stop")
}

// PauseAgent freezes a running agent and stops its lifetime clock.
func (c *Client) PauseAgent(ctx context.Context, id string) (*api.AgentInfo, error) {
	return c.agentOp(ctx, id, "pause")
}

// ResumeAgent thaws a paused agent.
func (c *Client) ResumeAgent(ctx context.Context, id string) (*api.AgentInfo, error) {
	return c.agentOp(ctx, id, "resume")
}

// RemoveAgent deletes an agent, ending its sandbox; with workspace its
// workspace is deleted too (otherwise it is kept on the server's disk).
func (c *Client) RemoveAgent(ctx context.Context, id string, workspace bool) error {
	p := agentPath(id)
	if workspace {
		p += "?workspace=true"
	}
	return c.do(ctx, http.MethodDelete, p, nil, nil)
}

// AgentExec runs req.Cmd in a running agent's sandbox and returns its whole
// output (POST /agents/{id}/exec?stream=false), like Exec.
func (c *Client) AgentExec(ctx context.Context, id string, req api.ExecRequest) (api.ExecResult, error) {
	return c.execAt(ctx, agentPath(id)+"/exec", req)
}

// AgentWriteFile writes r to path in a running agent's sandbox, like WriteFile.
func (c *Client) AgentWriteFile(ctx context.Context, id, path string, r io.Reader, mode uint32) (api.FileWritten, error) {
	return c.writeFileAt(ctx, agentPath(id)+"/files", path, r, mode)
}

// AgentReadFile copies the file at path in a running agent's sandbox to w, like
// ReadFile.
func (c *Client) AgentReadFile(ctx context.Context, id, path string, w io.Writer) (int64, error) {
	return c.readFileAt(ctx, agentPath(id)+"/files", path, w)
}
