package client

import (
	"context"
	"time"

	"github.com/clawbox/clawbox/api"
)

// FinalStatus reports whether a container sandbox status is final (completed,
// failed, timed_out, killed or lost): the sandbox will not change again.
func FinalStatus(status string) bool {
	switch status {
	case api.ContainerStatusCreating, api.ContainerStatusRunning:
		return false
	}
	return status != ""
}

// Wait polls the sandbox id until its status is final and returns its info then.
// The interval starts at 50 ms and doubles to at most 1 s; ctx bounds the wait (its
// error is returned when it ends first). An error of the server (not_found, …) ends
// the wait.
func (c *Client) Wait(ctx context.Context, id string) (*api.ContainerInfo, error) {
	const maxInterval = time.Second
	interval := 50 * time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		info, err := c.Container(ctx, id)
		if err != nil {
			return nil, err
		}
		if FinalStatus(info.Status) {
			return info, nil
		}
		t.Reset(interval)
		interval = min(2*interval, maxInterval)
	}
}
