package egress

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/egress/tlsca"
)

// DoorSpec describes the door of one container sandbox.
type DoorSpec struct {
	// SandboxID is the sandbox behind the door: every request through it is that
	// sandbox's, whatever the request says.
	SandboxID string
	// SocketPath is where the Unix socket is created (mode 0666). Its directory must
	// exist. A stale socket file there is replaced; a live one is an error.
	SocketPath string
	// Allowlist is the server's container network allowlist; Narrow, when not nil, is
	// the spawn request's own list, which may only narrow it (see Effective). A
	// non-nil empty Narrow means no network.
	Allowlist []string
	Narrow    []string
	// Credentials are the credential names granted to the sandbox.
	Credentials []string
	// Authenticate reports whether token is this sandbox's token; it should compare in
	// constant time. Nil refuses every request.
	Authenticate func(token string) bool
	// CA is the sandbox's own certificate authority: CONNECT tunnels are
	// terminated with leaves it mints. Nil refuses every CONNECT that would be
	// intercepted.
	CA *tlsca.Authority
}

// Door is a sandbox's HTTP/1.1 server on its Unix socket.
type Door struct {
	g      *Gateway
	spec   DoorSpec
	key    string // the sandbox's rate-limit key, "container/<id>" (see callerKey)
	policy *Policy
	ln     net.Listener
	srv    *doorServer

	// mu guards closing and active. A handler joins inflight only under mu and only
	// while closing is false, so inflight.Add never races with the Wait in Close.
	mu        sync.Mutex
	closing   bool
	active    int // POST /proxy requests being served, at most MaxConcurrentPerDoor
	streams   int // forward and intercepted requests being served, at most MaxStreamsPerDoor
	tunnels   map[*tunnel]struct{}
	inflight  sync.WaitGroup // handlers still running
	served    chan struct{}  // closed when Serve has returned
	closeOnce sync.Once
	closeErr  error
}

// OpenDoor creates the socket and starts serving on it the routes GET /health and
// POST /proxy, forward-proxy requests (absolute form) and CONNECT.
func (g *Gateway) OpenDoor(spec DoorSpec) (*Door, error) {
	if spec.SandboxID == "" || spec.SocketPath == "" {
		return nil, errors.New("egress: a door needs a sandbox id and a socket path")
	}
	policy, err := Effective(spec.Allowlist, spec.Narrow)
	if err != nil {
		return nil, err
	}
	for _, w := range policy.Warnings() {
		g.log.Warn("egress door policy", "sandbox_id", spec.SandboxID, "warning", w)
	}
	if err := removeStaleSocket(spec.SocketPath); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", spec.SocketPath)
	if err != nil {
		return nil, fmt.Errorf("egress: door %q: %w", spec.SandboxID, err)
	}
	// The container's uid is unknown: the socket is open to all, the 0700 base
	// directory keeps other host users out, and the token keeps other processes out.
	if err := os.Chmod(spec.SocketPath, 0o666); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("egress: door %q: %w", spec.SandboxID, err)
	}
	d := &Door{g: g, spec: spec, key: callerKey(Call{ContainerID: spec.SandboxID}), policy: policy, ln: ln, served: make(chan struct{})}
	d.srv = newDoorServer(d, g.log)
	d.srv.readHeaderTimeout = 10 * time.Second
	d.srv.readTimeout = time.Minute
	d.srv.idleTimeout = 2 * time.Minute
	d.srv.writeTimeout = doorWriteTimeout(g.cfg)
	// Every request the door may serve at once, and as many idle keep-alive
	// connections again.
	d.srv.maxConns = 2 * (g.cfg.MaxConcurrentPerDoor + g.cfg.MaxStreamsPerDoor + g.cfg.MaxTunnelsPerDoor)
	d.srv.maxHeaderBytes = 64 << 10
	go func() {
		defer close(d.served)
		if err := d.srv.serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("egress door stopped", "sandbox_id", spec.SandboxID, "err", err)
		}
	}()
	return d, nil
}

// removeStaleSocket removes a socket file nobody listens on. A live socket, or a
// file that is not a socket, is an error.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("egress: socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("egress: %s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("egress: socket %s is in use by a live listener", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("egress: socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("egress: removing stale socket %s: %w", path, err)
	}
	return nil
}

// Path returns the socket path.
func (d *Door) Path() string { return d.spec.SocketPath }

// SandboxID returns the sandbox behind the door.
func (d *Door) SandboxID() string { return d.spec.SandboxID }

// Close stops accepting connections, waits up to the gateway's DoorShutdownTimeout
// for in-flight requests, cuts off what is left, and removes the socket file. It is
// idempotent and returns the first result to every caller.
func (d *Door) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closing = true
		d.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), d.g.cfg.DoorShutdownTimeout)
		defer cancel()
		// CONNECT tunnels are hijacked connections, which Shutdown does not track:
		// they are ended beside it, with the same grace.
		tunnelsEnded := make(chan struct{})
		go func() {
			defer close(tunnelsEnded)
			d.endTunnels(ctx)
		}()
		if err := d.srv.Shutdown(ctx); err != nil {
			// In-flight requests did not finish in time: closing their connections
			// cancels their contexts, and the pipeline returns promptly.
			_ = d.srv.Close()
		}
		<-tunnelsEnded
		<-d.served
		d.inflight.Wait()
		if err := os.Remove(d.spec.SocketPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.closeErr = fmt.Errorf("egress: door %q: %w", d.spec.SandboxID, err)
		}
	})
	return d.closeErr
}

// ProxyRequest is the body of POST /proxy (the public wire type).
type ProxyRequest = api.ProxyRequest

// ProxyResponse is the answer of POST /proxy (the public wire type).
type ProxyResponse = api.ProxyResponse

// ServeHTTP implements http.Handler for the door's routes.
func (d *Door) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !d.enter() {
		writeError(w, api.Errorf(api.CodeUnavailable, "the door is closing"), "")
		return
	}
	defer d.inflight.Done()
	reqID := uuid.NewString()
	w.Header().Set("X-Request-Id", reqID)
	if r.Method == http.MethodConnect {
		d.connect(w, r, reqID)
		return
	}
	if r.RequestURI != "*" && !strings.HasPrefix(r.RequestURI, "/") {
		d.forward(w, r, reqID)
		return
	}
	switch r.URL.Path {
	case "/health":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, methodNotAllowed(r.Method, "GET"), "GET")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"container_id": d.spec.SandboxID, "status": "ok"})
	case "/proxy":
		if r.Method != http.MethodPost {
			writeError(w, methodNotAllowed(r.Method, "POST"), "POST")
			return
		}
		if !d.authenticate(r) {
			// Step 1 of the pipeline refuses: that is audited like every refusal. The
			// request body is not read, so the record names no destination.
			d.g.auditRefusal(audit.Record{
				Kind:        audit.KindRequest,
				ContainerID: d.spec.SandboxID,
				RequestID:   reqID,
				Door:        DoorProxy,
				Method:      http.MethodPost,
				URL:         "/proxy",
				Decision:    audit.DecisionBlocked,
				Reason:      "unauthorized: missing or wrong sandbox token",
				Error:       api.CodeUnauthorized,
			})
			w.Header().Set("WWW-Authenticate", `Bearer realm="clawbox"`)
			writeError(w, api.Errorf(api.CodeUnauthorized, "missing or wrong sandbox token"), "")
			return
		}
		if !d.acquire() {
			d.refuseEarly(w, reqID, "too many concurrent requests through this door",
				api.Errorf(api.CodeRateLimited, "more than %d concurrent requests through this door; retry later", d.g.cfg.MaxConcurrentPerDoor))
			return
		}
		defer d.release()
		if d.g.refusalBudgetSpent(d.key) {
			d.refuseEarly(w, reqID, "refusal budget spent", errRefusalBudget())
			return
		}
		d.proxy(w, r, reqID)
	default:
		writeError(w, api.Errorf(api.CodeNotFound, "no route %s", r.URL.Path), "")
	}
}

// enter joins inflight unless the door is closing.
func (d *Door) enter() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return false
	}
	d.inflight.Add(1)
	return true
}

// acquire takes one of the door's MaxConcurrentPerDoor request slots, without waiting.
func (d *Door) acquire() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active >= d.g.cfg.MaxConcurrentPerDoor {
		return false
	}
	d.active++
	return true
}

func (d *Door) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.active--
}

// refuseEarly refuses a request with 429 before its body is read, and audits it
// (the audit writer aggregates a flood of them). The record names no destination:
// none has been read.
func (d *Door) refuseEarly(w http.ResponseWriter, reqID, reason string, err *api.Error) {
	d.g.auditRefusal(audit.Record{
		Kind:        audit.KindRequest,
		ContainerID: d.spec.SandboxID,
		RequestID:   reqID,
		Door:        DoorProxy,
		Method:      http.MethodPost,
		URL:         "/proxy",
		Decision:    audit.DecisionRateLimited,
		Reason:      reason,
		Error:       api.CodeRateLimited,
	})
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Connection", "close")
	writeError(w, err, "")
}

func methodNotAllowed(method, allow string) *api.Error {
	return api.Errorf(api.CodeMethodNotAllowed, "method %s is not allowed here; use %s", method, allow)
}

// authenticate checks the sandbox token from Authorization: Bearer, or from
// Proxy-Authorization: Bearer or Basic (the token is the password).
func (d *Door) authenticate(r *http.Request) bool {
	if d.spec.Authenticate == nil {
		return false
	}
	if tok, ok := bearer(r.Header.Get("Authorization")); ok {
		return d.spec.Authenticate(tok)
	}
	return d.authenticateProxy(r)
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func (d *Door) proxy(w http.ResponseWriter, r *http.Request, reqID string) {
	limit := d.g.cfg.MaxRequestBytes
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		writeError(w, tooLarge(limit), "")
		return
	}
	env, err := readEnvelope(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
	if err != nil {
		writeError(w, err, "")
		return
	}
	req := env.req
	if req.URL == "" {
		writeError(w, invalidField("url", "url is required"), "")
		return
	}
	resp, err := d.g.Do(r.Context(), Call{
		ContainerID: d.spec.SandboxID,
		Policy:      d.policy,
		Grants:      d.spec.Credentials,
		RequestID:   reqID,
		Door:        DoorProxy,
		Method:      req.Method,
		URL:         req.URL,
		Headers:     req.Headers,
		LoadBody:    env.decodeBody,
	})
	if err != nil {
		if e, ok := api.AsError(err); ok && e.Code == api.CodeRateLimited {
			w.Header().Set("Retry-After", "1")
		}
		if _, ok := api.AsError(err); !ok {
			d.g.log.Error("egress door request failed", "request_id", reqID, "err", d.g.redactString(err.Error()))
		}
		writeError(w, err, "")
		return
	}
	writeProxyAnswer(w, resp)
}

func tooLarge(limit int64) *api.Error {
	return api.Errorf(api.CodeTooLarge, "the request body is larger than %d bytes", limit)
}

var proxyRequestFields = map[string]bool{"url": true, "method": true, "headers": true, "body": true, "body_base64": true}

// decodeProxyRequest reads one POST /proxy body and decodes it fully (the door
// itself decodes the body field only once the policy allows the request).
func decodeProxyRequest(r io.Reader) (ProxyRequest, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return ProxyRequest{}, api.Errorf(api.CodeInvalidRequest, "could not read the request body")
	}
	env, err := parseEnvelope(data)
	if err != nil {
		return ProxyRequest{}, err
	}
	req := env.req
	base64Field := env.base64
	b, err := env.decodeBody()
	if err != nil {
		return ProxyRequest{}, err
	}
	if env.body != nil {
		str := string(b)
		if base64Field {
			str = base64.StdEncoding.EncodeToString(b)
			req.BodyBase64 = &str
		} else {
			req.Body = &str
		}
	}
	return req, nil
}

// decodeError maps a JSON decoding error to the error the caller sees; a
// *http.MaxBytesError is passed through for the caller to map.
func decodeError(err error) error {
	var mbe *http.MaxBytesError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.As(err, &te):
		return api.Errorf(api.CodeInvalidRequest, "the body must be a JSON object")
	default:
		return api.Errorf(api.CodeInvalidJSON, "the body is not valid JSON")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes err in the API error shape. An error that is not an *api.Error
// is our fault: the client gets a generic 500 (the caller has logged the detail).
func writeError(w http.ResponseWriter, err error, allow string) {
	e, ok := api.AsError(err)
	if !ok {
		e = api.Errorf(api.CodeInternal, "internal error")
	}
	if allow != "" {
		w.Header().Set("Allow", allow)
	}
	writeJSON(w, e.Status(), e)
}

// doorWriteTimeout bounds writing the answer of one request that does not stream
// (POST /proxy, a refusal): the body's read (a minute at most), the upstream
// request (cfg.Timeout) and a minute more. A streamed answer has StreamTimeout.
func doorWriteTimeout(cfg Config) time.Duration {
	return 2*time.Minute + cfg.Timeout
}
