// Package door is the client of a clawbox sandbox's egress door, for Go programs
// that run inside a sandbox. The door is an HTTP server on a Unix socket
// ($CLAWBOX_PROXY_SOCKET); every request it forwards passes the gateway's policy,
// credential injection and leak detection. A refused request comes back as
// *api.Error with the gateway's code (blocked_by_policy, rate_limited, …), so
// callers can compare Code or use errors.Is with the containerd errdefs classes.
//
//	d, err := door.FromEnv()
//	if err != nil { ... }
//	resp, err := d.Get(ctx, "https://api.example.com/v1/things")
package door

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/clawbox/clawbox/api"
)

// maxAnswerBytes bounds what the client reads of one answer (the gateway's own
// response limit is smaller; the JSON envelope and base64 add to it).
const maxAnswerBytes = 64 << 20

// Options configure a Client.
type Options struct {
	// Socket is the door's Unix socket path. Required.
	Socket string
	// Token is the sandbox's door token. Required.
	Token string
	// Timeout bounds one request (dial to the end of the answer). Default 60 s;
	// the request's context bounds it too.
	Timeout time.Duration
}

// Client sends requests through one door. It is safe for concurrent use.
type Client struct {
	socket string
	token  string
	hc     *http.Client
}

// New returns a client of the door at opts.Socket.
func New(opts Options) (*Client, error) {
	if opts.Socket == "" {
		return nil, errors.New("door: no socket path")
	}
	if opts.Token == "" {
		return nil, errors.New("door: no token")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	sock := opts.Socket
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{socket: sock, token: opts.Token, hc: &http.Client{Transport: tr, Timeout: timeout}}, nil
}

// FromEnv returns a client of the sandbox's door: the socket from
// $CLAWBOX_PROXY_SOCKET, the token from $CLAWBOX_PROXY_TOKEN or else from the file
// named by $CLAWBOX_PROXY_TOKEN_FILE.
func FromEnv() (*Client, error) {
	return fromEnv(os.LookupEnv)
}

func fromEnv(lookup func(string) (string, bool)) (*Client, error) {
	sock, _ := lookup(api.EnvProxySocket)
	if sock == "" {
		return nil, fmt.Errorf("door: %s is not set: run inside a clawbox sandbox with a door (policy \"container\")", api.EnvProxySocket)
	}
	token, _ := lookup(api.EnvProxyToken)
	if token == "" {
		file, _ := lookup(api.EnvProxyTokenFile)
		if file == "" {
			return nil, fmt.Errorf("door: no token: neither %s nor %s is set", api.EnvProxyToken, api.EnvProxyTokenFile)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("door: token file (%s): %w", api.EnvProxyTokenFile, err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("door: token file %s is empty", file)
		}
	}
	return New(Options{Socket: sock, Token: token})
}

// Socket returns the door's socket path.
func (c *Client) Socket() string { return c.socket }

// Do sends req through the door and returns the upstream's answer. A refusal by
// the gateway (or the door) is *api.Error with its code; an upstream's 4xx or 5xx
// is not an error: it is in the answer's Status.
func (c *Client) Do(ctx context.Context, req api.ProxyRequest) (*api.ProxyResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("door: encode request: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://door"+api.ProxyPath, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("door: %w", err)
	}
	hr.Header.Set("Authorization", "Bearer "+c.token)
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("door: cannot reach the door at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("door: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e api.Error
		if json.Unmarshal(b, &e) != nil || e.Code == "" {
			return nil, &api.Error{Code: api.CodeInternal, Message: fmt.Sprintf("door answered %s: %s", resp.Status, bytes.TrimSpace(b))}
		}
		return nil, &e
	}
	var out api.ProxyResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("door: decode answer: %w", err)
	}
	return &out, nil
}

// Get sends a GET of url through the door.
func (c *Client) Get(ctx context.Context, url string) (*api.ProxyResponse, error) {
	return c.Do(ctx, api.ProxyRequest{URL: url, Method: http.MethodGet})
}

// Body returns the answer's body bytes, decoding BodyBase64 when the body was not
// UTF-8.
func Body(r *api.ProxyResponse) ([]byte, error) {
	if r.BodyBase64 != "" {
		return base64.StdEncoding.DecodeString(r.BodyBase64)
	}
	return []byte(r.Body), nil
}

// Close releases the client's idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}
