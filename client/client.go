// Package client is the Go SDK of the clawbox HTTP API. Errors from the server come
// back as *api.Error, so callers can compare codes or use errors.Is with the
// containerd errdefs classes; a server that cannot be reached gives an error for
// which errors.Is(err, ErrUnreachable) holds.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/clawbox/clawbox/api"
)

// ErrUnreachable classifies errors where no answer came from the server.
var ErrUnreachable = errors.New("cannot reach the clawbox server")

// UnreachableError says which server could not be reached and why.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the clawbox server at %s: %v (is it running? start it with: clawbox serve)", e.URL, e.Err)
}

// Unwrap returns the transport error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnreachable) hold.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// Client talks to one clawbox server. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// NoAnswerError says that the server accepted the connection but sent no answer
// before the request's time ran out (Options.Timeout or the context): the server is
// up but busy, so this is not ErrUnreachable. errors.Is(err,
// context.DeadlineExceeded) holds.
type NoAnswerError struct {
	URL string
	Err error
}

func (e *NoAnswerError) Error() string {
	return fmt.Sprintf("the clawbox server at %s accepted the request but did not answer in time: %v", e.URL, e.Err)
}

// Unwrap returns the transport's error.
func (e *NoAnswerError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, context.DeadlineExceeded) hold.
func (e *NoAnswerError) Is(target error) bool { return target == context.DeadlineExceeded }

// DefaultTimeout bounds a non-streaming call when Options.Timeout is zero.
const DefaultTimeout = 60 * time.Second

// Options configure a Client. Zero values take defaults.
type Options struct {
	// Token is the API bearer token.
	Token string
	// Timeout bounds each non-streaming call (DefaultTimeout when zero; negative:
	// only the context bounds it). Ignored when HTTPClient is set.
	Timeout time.Duration
	// HTTPClient is the transport. Default: a client with Options.Timeout.
	HTTPClient *http.Client
	// UnixSocket, if set, connects to the server's Unix socket instead of TCP.
	UnixSocket string
}

// New returns a client for the server at baseURL ("http://127.0.0.1:9800").
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: %q is not an http(s) URL", baseURL)
	}
	hc := opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if opts.UnixSocket != "" {
			sock := opts.UnixSocket
			tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			}
		}
		timeout := opts.Timeout
		switch {
		case timeout == 0:
			timeout = DefaultTimeout
		case timeout < 0:
			timeout = 0
		}
		hc = &http.Client{Transport: tr, Timeout: timeout}
	}
	return &Client{base: u, token: opts.Token, hc: hc}, nil
}

// BaseURL returns the server's URL.
func (c *Client) BaseURL() string { return c.base.String() }

// Health returns GET /health (with details when the client has a valid token).
func (c *Client) Health(ctx context.Context) (*api.HealthResponse, error) {
	var h api.HealthResponse
	if err := c.do(ctx, http.MethodGet, "/health", nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// do sends a request with an optional JSON body and decodes a JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s response: %w", method, path, err)
	}
	return nil
}

// send performs the request with an optional JSON body and returns the response of
// a 2xx answer; any other status is returned as *api.Error.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	if in == nil {
		return c.sendRaw(ctx, c.hc, method, path, "", nil)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	return c.sendRaw(ctx, c.hc, method, path, "application/json", bytes.NewReader(b))
}

// sendRaw performs the request on hc with body (nil: none) of contentType.
func (c *Client) sendRaw(ctx context.Context, hc *http.Client, method, path, contentType string, body io.Reader) (*http.Response, error) {
	u := c.base.String() + path
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// A request that got a connection reached the server: if no answer comes, that is
	// a busy server, not an unreachable one.
	var connected atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { connected.Store(true) },
	}))
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ne net.Error
		if connected.Load() && errors.As(err, &ne) && ne.Timeout() {
			return nil, &NoAnswerError{URL: c.base.String(), Err: err}
		}
		return nil, &UnreachableError{URL: c.base.String(), Err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp)
}

// streaming returns the HTTP client for calls that last as long as their context
// (streams, execs, file transfers): Options.Timeout does not apply.
func (c *Client) streaming() *http.Client {
	sc := *c.hc
	sc.Timeout = 0
	return &sc
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e api.Error
	if err := json.Unmarshal(b, &e); err != nil || e.Code == "" {
		return &api.Error{Code: api.CodeInternal, Message: fmt.Sprintf("server answered %s", resp.Status)}
	}
	return &e
}
