package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/clawbox/clawbox/api"
)

// Spawn starts a container sandbox.
func (c *Client) Spawn(ctx context.Context, req api.ContainerSpawnRequest) (*api.ContainerInfo, error) {
	var out api.ContainerInfo
	if err := c.do(ctx, http.MethodPost, "/containers/spawn", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Containers lists container sandboxes, newest first; status filters when not empty.
func (c *Client) Containers(ctx context.Context, status string) ([]api.ContainerInfo, error) {
	v := url.Values{}
	if status != "" {
		v.Set("status", status)
	}
	var out api.ContainerList
	if err := c.do(ctx, http.MethodGet, withQuery("/containers", v), nil, &out); err != nil {
		return nil, err
	}
	return out.Containers, nil
}

// ListContainers lists container sandboxes, newest first, that match f: in
// f.Status when not empty, carrying every label of f.Labels.
func (c *Client) ListContainers(ctx context.Context, f api.ContainerFilter) ([]api.ContainerInfo, error) {
	v := url.Values{}
	if f.Status != "" {
		v.Set("status", f.Status)
	}
	keys := make([]string, 0, len(f.Labels))
	for k := range f.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Add("label", k+"="+f.Labels[k])
	}
	var out api.ContainerList
	if err := c.do(ctx, http.MethodGet, withQuery("/containers", v), nil, &out); err != nil {
		return nil, err
	}
	return out.Containers, nil
}

// Extend sets a running sandbox's deadline to d from now (shorter or longer than
// before; at most the server's containers.max_timeout_ms) and returns the record.
// A sandbox that is no longer running is 409 conflict.
func (c *Client) Extend(ctx context.Context, id string, d time.Duration) (*api.ContainerInfo, error) {
	ms := d.Milliseconds()
	var out api.ContainerInfo
	if err := c.do(ctx, http.MethodPatch, "/containers/"+url.PathEscape(id), api.ContainerUpdateRequest{TimeoutMS: &ms}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Container returns one container sandbox.
func (c *Client) Container(ctx context.Context, id string) (*api.ContainerInfo, error) {
	var out api.ContainerInfo
	if err := c.do(ctx, http.MethodGet, "/containers/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Kill stops a container sandbox (idempotent) and returns its final record.
func (c *Client) Kill(ctx context.Context, id string) (*api.KillResponse, error) {
	var out api.KillResponse
	if err := c.do(ctx, http.MethodDelete, "/containers/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Logs returns a sandbox's kept stdout and stderr.
func (c *Client) Logs(ctx context.Context, id string) (*api.ContainerLogs, error) {
	var out api.ContainerLogs
	if err := c.do(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/logs", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FollowLogs calls fn with each frame of a sandbox's output as it is written, until
// the sandbox stops (the last frame has Stream "status"), ctx ends (then it returns
// nil) or fn returns an error.
func (c *Client) FollowLogs(ctx context.Context, id string, fn func(api.LogFrame) error) error {
	resp, err := c.stream(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/logs?follow=true")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var f api.LogFrame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return fmt.Errorf("decode log frame: %w", err)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}
