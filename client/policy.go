package client

import (
	"context"
	"net/http"

	"github.com/clawbox/clawbox/api"
)

// PolicyCheck asks what the egress gateway would decide for a request, without
// sending it.
func (c *Client) PolicyCheck(ctx context.Context, req api.PolicyCheckRequest) (*api.PolicyCheckResponse, error) {
	var out api.PolicyCheckResponse
	if err := c.do(ctx, http.MethodPost, "/policy/check", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
