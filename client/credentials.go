package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/clawbox/clawbox/api"
)

// Credentials lists the stored credentials (never their values).
func (c *Client) Credentials(ctx context.Context) ([]api.Credential, error) {
	var out api.CredentialList
	if err := c.do(ctx, http.MethodGet, "/credentials", nil, &out); err != nil {
		return nil, err
	}
	return out.Credentials, nil
}

// PutCredential creates or replaces a credential.
func (c *Client) PutCredential(ctx context.Context, name string, req api.PutCredentialRequest) (*api.Credential, error) {
	var out api.Credential
	if err := c.do(ctx, http.MethodPut, "/credentials/"+url.PathEscape(name), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteCredential removes a credential.
func (c *Client) DeleteCredential(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/credentials/"+url.PathEscape(name), nil, nil)
}
