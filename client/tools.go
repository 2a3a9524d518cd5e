package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/clawbox/clawbox/api"
)

// Execute runs a WASM tool.
func (c *Client) Execute(ctx context.Context, req api.ExecuteRequest) (*api.ExecuteResponse, error) {
	var out api.ExecuteResponse
	if err := c.do(ctx, http.MethodPost, "/execute", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Tools lists the loaded tools.
func (c *Client) Tools(ctx context.Context) ([]api.ToolInfo, error) {
	var out []api.ToolInfo
	if err := c.do(ctx, http.MethodGet, "/tools", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Tool returns one tool.
func (c *Client) Tool(ctx context.Context, name string) (*api.ToolInfo, error) {
	var out api.ToolInfo
	if err := c.do(ctx, http.MethodGet, "/tools/"+url.PathEscape(name), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ToolStatus reports whether the module in the server's tool directory as
// name.wasm is loaded, or why not (GET /tools/{name}/status).
func (c *Client) ToolStatus(ctx context.Context, name string) (*api.ToolStatus, error) {
	var out api.ToolStatus
	if err := c.do(ctx, http.MethodGet, "/tools/"+url.PathEscape(name)+"/status", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RegisterTool registers (or replaces) a tool manifest.
func (c *Client) RegisterTool(ctx context.Context, m api.ToolManifest) (*api.ToolRegisterResponse, error) {
	var out api.ToolRegisterResponse
	if err := c.do(ctx, http.MethodPost, "/tools/register", m, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReloadTools reloads the server's tool directory.
func (c *Client) ReloadTools(ctx context.Context) (*api.ToolReloadResponse, error) {
	var out api.ToolReloadResponse
	if err := c.do(ctx, http.MethodPost, "/tools/reload", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
