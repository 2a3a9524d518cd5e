package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
)

// Doors 2 and 3 (SPEC 3.1): the forward proxy and CONNECT, on the same socket as
// POST /proxy, through the same pipeline, with streamed bodies.

// handshakeTimeout bounds the TLS handshake of an intercepted tunnel and the wait
// for its first bytes.
const handshakeTimeout = 10 * time.Second

// authenticateProxy checks the sandbox token of a forward or CONNECT request: from
// Proxy-Authorization only (Bearer, or Basic with the token as the password);
// Authorization belongs to the upstream.
func (d *Door) authenticateProxy(r *http.Request) bool {
	if d.spec.Authenticate == nil {
		return false
	}
	pa := r.Header.Get("Proxy-Authorization")
	if tok, ok := bearer(pa); ok {
		return d.spec.Authenticate(tok)
	}
	if scheme, cred, ok := strings.Cut(pa, " "); ok && strings.EqualFold(scheme, "Basic") {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return false
		}
		if _, pass, ok := strings.Cut(string(raw), ":"); ok && pass != "" {
			return d.spec.Authenticate(pass)
		}
	}
	return false
}

// proxyRecord is the audit record of a forward or CONNECT request refused before
// the pipeline: the destination it names, redacted.
func (d *Door) proxyRecord(r *http.Request, reqID, door string) audit.Record {
	rec := audit.Record{
		Kind:        audit.KindRequest,
		ContainerID: d.spec.SandboxID,
		RequestID:   reqID,
		Door:        door,
		Method:      validMethodOrEmpty(r.Method),
	}
	if door == DoorConnect {
		rec.URL, rec.Host = "https://"+r.Host, r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			rec.Host = h
		}
	} else if r.URL != nil {
		rec.URL, rec.Host = audit.RedactURL(r.URL), r.URL.Hostname()
	}
	rec.URL = d.g.redactString(rec.URL)
	rec.Host = d.g.redactString(rec.Host)
	return rec
}

// refuseProxy audits and answers a forward or CONNECT request refused before the
// pipeline.
func (d *Door) refuseProxy(w http.ResponseWriter, rec audit.Record, dec audit.Decision, reason string, err *api.Error) {
	rec.Decision, rec.Reason, rec.Error = dec, reason, err.Code+": "+err.Message
	d.g.auditRefusal(rec)
	if refused(dec) {
		d.g.refusals.allow(d.key, d.g.now())
	}
	switch err.Code {
	case api.CodeProxyAuthRequired:
		w.Header().Add("Proxy-Authenticate", `Basic realm="clawbox"`)
		w.Header().Add("Proxy-Authenticate", `Bearer realm="clawbox"`)
	case api.CodeRateLimited:
		w.Header().Set("Retry-After", "1")
	}
	writeProxyError(w, err)
}

// admitProxy runs the checks every forward and CONNECT request passes before its
// pipeline: the token and the refusal budget.
func (d *Door) admitProxy(w http.ResponseWriter, r *http.Request, reqID, door string) bool {
	if !d.authenticateProxy(r) {
		d.refuseProxy(w, d.proxyRecord(r, reqID, door), audit.DecisionBlocked, "unauthorized: missing or wrong sandbox token",
			api.Errorf(api.CodeProxyAuthRequired, "missing or wrong sandbox token in Proxy-Authorization"))
		return false
	}
	if d.g.refusalBudgetSpent(d.key) {
		d.refuseProxy(w, d.proxyRecord(r, reqID, door), audit.DecisionRateLimited, "refusal budget spent", errRefusalBudget())
		return false
	}
	return true
}

// forward serves an absolute-form request (door 2).
func (d *Door) forward(w http.ResponseWriter, r *http.Request, reqID string) {
	if !d.admitProxy(w, r, reqID, DoorForward) {
		return
	}
	if !d.acquireStream() {
		d.refuseProxy(w, d.proxyRecord(r, reqID, DoorForward), audit.DecisionRateLimited, "too many concurrent requests through this door",
			api.Errorf(api.CodeRateLimited, "more than %d concurrent proxied requests through this door; retry later", d.g.cfg.MaxStreamsPerDoor))
		return
	}
	defer d.releaseStream()
	var t *tunnel
	if isUpgrade(r.Header) {
		// An allowed upgrade becomes a tunnel, ended by Door.Close.
		if t = d.openTunnel(); t == nil {
			d.refuseProxy(w, d.proxyRecord(r, reqID, DoorForward), audit.DecisionRateLimited, "too many tunnels through this door",
				api.Errorf(api.CodeRateLimited, "more than %d tunnels open through this door; retry later", d.g.cfg.MaxTunnelsPerDoor))
			return
		}
		defer d.closeTunnel(t)
	}
	d.stream(w, streamCall{
		ctx: r.Context(), door: DoorForward, reqID: reqID, method: r.Method, url: r.RequestURI,
		header: r.Header, body: r.Body, length: r.ContentLength, tunnel: t,
	})
}

// parseConnectTarget parses the authority of CONNECT host:port: a DNS name (made
// canonical) or an IP literal (IPv6 in brackets), and a port 1-65535, which is
// required. It returns the canonical host and the port.
func parseConnectTarget(s string) (string, int, error) {
	if s == "" || len(s) > 262 || strings.ContainsAny(s, "/?#@ \t\\%") {
		return "", 0, errorString("CONNECT needs host:port")
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil || h == "" || p == "" {
		return "", 0, errorString("CONNECT needs host:port")
	}
	port, err := parsePort(p)
	if err != nil {
		return "", 0, err
	}
	t, err := connectTarget(h, port)
	if err != nil {
		return "", 0, err
	}
	if t.addr.IsValid() {
		if strings.Contains(h, ":") && !strings.HasPrefix(s, "[") {
			return "", 0, errorString("CONNECT needs host:port")
		}
		return t.addr.String(), port, nil
	}
	return t.host, port, nil
}

// authority returns host:port in URL form (IPv6 in brackets), the port dropped
// when it is https's default.
func authority(host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == 443 {
		return host
	}
	return host + ":" + strconv.Itoa(port)
}

// connect serves CONNECT host:port (door 3): policy is decided on host:port before
// any TLS; then the tunnel is intercepted with a leaf of the sandbox's CA, or
// spliced to the upstream when a pass-through rule says so.
func (d *Door) connect(w http.ResponseWriter, r *http.Request, reqID string) {
	if !d.admitProxy(w, r, reqID, DoorConnect) {
		return
	}
	rec := d.proxyRecord(r, reqID, DoorConnect)
	host, port, err := parseConnectTarget(r.RequestURI)
	if err != nil {
		d.refuseProxy(w, rec, audit.DecisionBlocked, "invalid CONNECT target",
			&api.Error{Code: api.CodeInvalidRequest, Message: "CONNECT target: " + err.Error(), Details: map[string]any{"field": "authority"}})
		return
	}
	rec.URL, rec.Host = "https://"+authority(host, port), host
	cd := d.policy.DecideConnect(host, port)
	rec.Rule = cd.Rule
	if !cd.Allowed {
		d.refuseProxy(w, rec, audit.DecisionBlocked, cd.Reason, &api.Error{
			Code:    api.CodeBlockedByPolicy,
			Message: "CONNECT " + authority(host, port) + " is not allowed by the network policy: " + cd.Reason,
			Details: map[string]any{"rule": cd.Rule},
		})
		return
	}
	if !cd.Passthrough && d.spec.CA == nil {
		d.refuseProxy(w, rec, audit.DecisionError, "no CA for TLS interception",
			api.Errorf(api.CodeUnavailable, "this sandbox has no certificate authority: its CONNECT tunnels cannot be intercepted"))
		return
	}
	// Every tunnel costs a rate-limit token, intercepted or not: a handshake costs
	// the server a key exchange and a signature (and a leaf for a new name).
	if !d.g.limits.allow(d.key, d.g.now()) {
		d.refuseProxy(w, rec, audit.DecisionRateLimited, "rate limit exceeded", api.Errorf(api.CodeRateLimited, "rate limit exceeded for this sandbox; retry later"))
		return
	}
	t := d.openTunnel()
	if t == nil {
		d.refuseProxy(w, rec, audit.DecisionRateLimited, "too many tunnels through this door",
			api.Errorf(api.CodeRateLimited, "more than %d CONNECT tunnels open through this door; retry later", d.g.cfg.MaxTunnelsPerDoor))
		return
	}
	defer d.closeTunnel(t)
	if cd.Passthrough {
		rec.Passthrough = true
		d.passthrough(w, r, t, rec, host, port)
		return
	}
	d.intercept(w, t, rec, host, port)
}

// hijack takes over the client connection and answers 200 to the CONNECT. The
// returned reader holds what the client sent after its request.
func hijack(w http.ResponseWriter) (net.Conn, *bufio.Reader, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	if _, err := brw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		conn.Close()
		return nil, nil, err
	}
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, brw.Reader, nil
}

// intercept terminates the client's TLS with a leaf for host and serves HTTP/1.1
// on the decrypted connection; each request goes through the pipeline as
// https://host:port/path.
func (d *Door) intercept(w http.ResponseWriter, t *tunnel, rec audit.Record, host string, port int) {
	g := d.g
	start := g.now()
	recorded := false
	// A tunnel in which no request was served (the client sent nothing, or only a
	// handshake) is audited too, when it ends: every tunnel leaves a record.
	defer func() {
		if recorded || t.requests.Load() > 0 {
			return
		}
		r := rec
		r.Decision, r.Reason = audit.DecisionAllowed, "CONNECT tunnel closed without a request"
		r.LatencyMS = g.now().Sub(start).Milliseconds()
		g.auditRefusal(r) // not a refusal: auditRefusal stamps, counts and records it
	}()
	// fail audits the refusal, then tells the client (when answer) and hangs up.
	fail := func(conn net.Conn, reason string, e *api.Error, answer bool) {
		recorded = true
		rec.Decision, rec.Reason, rec.Error = audit.DecisionBlocked, reason, e.Code+": "+e.Message
		g.auditRefusal(rec)
		g.refusals.allow(d.key, g.now())
		if answer {
			writeRawError(conn, e)
		}
		conn.Close()
	}
	conn, br, err := hijack(w)
	if err != nil {
		g.log.Debug("egress connect: hijack failed", "request_id", rec.RequestID, "err", err)
		return
	}
	defer conn.Close()
	t.setCloser(conn)
	_ = conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	first, err := br.Peek(1)
	if err != nil {
		return // the client left, or sent nothing
	}
	if first[0] != 0x16 { // a TLS record of type handshake
		e := api.Errorf(api.CodeProtocolUnsupported, "the CONNECT tunnel does not speak TLS; only TLS (https) is supported through CONNECT")
		// The client may be speaking HTTP in the tunnel: tell it.
		fail(conn, "tunnel does not speak TLS", e, true)
		return
	}
	ca := d.spec.CA
	tc := tls.Server(&prefixConn{Conn: conn, r: br}, &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return ca.Leaf(host)
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	err = tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		fail(conn, "TLS handshake with the client failed", api.Errorf(api.CodeProtocolUnsupported, "the TLS handshake in the CONNECT tunnel failed"), false)
		return
	}
	t.setCloser(tc)
	tbr := bufio.NewReader(tc)
	if !looksLikeHTTP(tbr) {
		e := api.Errorf(api.CodeProtocolUnsupported, "the TLS in the CONNECT tunnel does not carry HTTP/1.1")
		fail(tc, "TLS in the tunnel is not HTTP", e, true)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})

	connDone := make(chan struct{})
	var doneOnce sync.Once
	ln := newOneConnListener(&prefixConn{Conn: tc, r: tbr})
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { d.tunnelRequest(w, r, t, host, port) }),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       g.cfg.TunnelIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(d.g.log.Handler(), slog.LevelDebug),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				doneOnce.Do(func() { close(connDone) })
				ln.Close()
			}
		},
	}
	srv.SetKeepAlivesEnabled(true)
	if !t.setServer(srv) {
		return
	}
	_ = srv.Serve(ln)
	if c := ln.take(); c != nil {
		// The tunnel was ended before Serve took the connection.
		_ = c.Close()
		doneOnce.Do(func() { close(connDone) })
	}
	<-connDone
	_ = srv.Close()
	t.wait()
}

// looksLikeHTTP reports whether what br starts with is an HTTP/1.x request line's
// method: a token of at most MaxMethodLen bytes followed by a space.
func looksLikeHTTP(br *bufio.Reader) bool {
	for i := 1; i <= MaxMethodLen+1; i++ {
		b, err := br.Peek(i)
		if err != nil {
			return false
		}
		c := b[i-1]
		if c == ' ' {
			return i > 1
		}
		if !isToken(string(c)) {
			return false
		}
	}
	return false
}

// writeRawError writes e as an HTTP/1.1 response on a raw connection.
func writeRawError(c net.Conn, e *api.Error) {
	body, _ := json.Marshal(e)
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c, "HTTP/1.1 "+strconv.Itoa(e.Status())+" "+http.StatusText(e.Status())+"\r\n"+
		"Content-Type: application/json\r\nX-Clawbox-Error: "+e.Code+"\r\nConnection: close\r\n"+
		"Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+string(body))
}

// tunnelRequest serves one decrypted request of an intercepted tunnel.
func (d *Door) tunnelRequest(w http.ResponseWriter, r *http.Request, t *tunnel, host string, port int) {
	if !t.enter() {
		writeProxyError(w, api.Errorf(api.CodeUnavailable, "the door is closing"))
		return
	}
	defer t.done()
	t.requests.Add(1)
	// A refusal's write is bounded as on the door (a streamed answer sets its
	// own deadline); this also replaces what an earlier request set.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(doorWriteTimeout(d.g.cfg)))
	reqID := uuid.NewString()
	w.Header().Set("X-Request-Id", reqID)
	target := "https://" + authority(host, port)
	rec := audit.Record{
		Kind: audit.KindRequest, ContainerID: d.spec.SandboxID, RequestID: reqID, Door: DoorConnect,
		Method: validMethodOrEmpty(r.Method), URL: target, Host: host,
	}
	rawURL := target + r.RequestURI
	switch {
	case r.Method == http.MethodConnect:
		d.refuseProxy(w, rec, audit.DecisionBlocked, "CONNECT inside a tunnel",
			api.Errorf(api.CodeProtocolUnsupported, "CONNECT inside a CONNECT tunnel is not supported"))
		return
	case !strings.HasPrefix(r.RequestURI, "/"):
		// Absolute form inside the tunnel: it must name the tunnel's destination.
		u, err := url.Parse(r.RequestURI)
		if err != nil || !strings.EqualFold(u.Scheme, "https") || !sameAuthority(u.Host, host, port) {
			d.refuseProxy(w, rec, audit.DecisionBlocked, "request names another host than its tunnel",
				api.Errorf(api.CodeHostMismatch, "the request names another destination than its CONNECT tunnel (%s)", authority(host, port)))
			return
		}
		rawURL = r.RequestURI
	}
	if !sameAuthority(r.Host, host, port) {
		d.refuseProxy(w, rec, audit.DecisionBlocked, "Host differs from the tunnel's host",
			api.Errorf(api.CodeHostMismatch, "the Host header names another destination than its CONNECT tunnel (%s)", authority(host, port)))
		return
	}
	if !d.acquireStream() {
		d.refuseProxy(w, rec, audit.DecisionRateLimited, "too many concurrent requests through this door",
			api.Errorf(api.CodeRateLimited, "more than %d concurrent proxied requests through this door; retry later", d.g.cfg.MaxStreamsPerDoor))
		return
	}
	defer d.releaseStream()
	d.stream(w, streamCall{
		ctx: r.Context(), door: DoorConnect, reqID: reqID, method: r.Method, url: rawURL,
		header: r.Header, body: r.Body, length: r.ContentLength, tunnel: t,
	})
}

// sameAuthority reports whether hostport (a Host header or URL authority; no port
// means 443) names host:port.
func sameAuthority(hostport, host string, port int) bool {
	h, p := hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.HasSuffix(hostport, "]") {
		h, p = hostport[:i], hostport[i+1:]
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	n := 443
	if p != "" {
		var err error
		if n, err = parsePort(p); err != nil {
			return false
		}
	}
	if n != port || h == "" {
		return false
	}
	t, err := connectTarget(h, n)
	if err != nil {
		return false
	}
	if t.addr.IsValid() {
		return t.addr.String() == host
	}
	return t.host == host
}

// passthrough splices the tunnel to host:port: no interception, so no injection,
// no scan and no per-request policy. The upstream is dialed through the SSRF-safe
// dialer (the CONNECT took a rate-limit token); the tunnel is audited when it
// opens and when it ends, with its byte counts, and is bounded like a stream
// (StreamTimeout, MaxStreamBytes each way) as well as by TunnelIdleTimeout.
func (d *Door) passthrough(w http.ResponseWriter, r *http.Request, t *tunnel, rec audit.Record, host string, port int) {
	g := d.g
	start := g.now()
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.ConnectTimeout)
	up, err := g.dial(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	cancel()
	if err != nil {
		e := g.upstreamError(ctx, rec.RequestID, err)
		dec := audit.DecisionError
		if e.Code == api.CodePrivateAddress {
			dec = audit.DecisionBlocked
		}
		d.refuseProxy(w, rec, dec, e.Message, e)
		return
	}
	defer up.Close()
	conn, br, err := hijack(w)
	if err != nil {
		return
	}
	defer conn.Close()
	t.setCloser(conn, up)
	opened := rec
	opened.Decision, opened.Reason = audit.DecisionAllowed, "TLS pass-through opened: not intercepted"
	g.auditRefusal(opened) // not a refusal: auditRefusal stamps, counts and records it

	act := g.newActivity()
	var wg sync.WaitGroup
	var in, out int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		out = act.splice(up, br, conn)
		closeWrite(up)
	}()
	go func() {
		defer wg.Done()
		in = act.splice(conn, up, up)
		closeWrite(conn)
	}()
	wg.Wait()
	rec.Decision = audit.DecisionAllowed
	rec.Reason = "TLS pass-through closed: not intercepted"
	rec.BytesOut, rec.BytesIn = out, in
	rec.LatencyMS = g.now().Sub(start).Milliseconds()
	g.metrics.bytesOut().Add(float64(out))
	g.metrics.bytesIn().Add(float64(in))
	g.auditRefusal(rec) // not a refusal: auditRefusal stamps, counts and records it
}

// activity is the last time a byte crossed a pass-through tunnel either way: the
// tunnel ends when none has for idle.
type activity struct {
	idle time.Duration
	end  time.Time    // the splice ends then, busy or not
	max  int64        // bytes each way; past it the splice ends
	last atomic.Int64 // unix nanoseconds
}

// newActivity starts the clock of a splice: idle after TunnelIdleTimeout, over after
// StreamTimeout or MaxStreamBytes either way.
func (g *Gateway) newActivity() *activity {
	a := &activity{idle: g.cfg.TunnelIdleTimeout, end: time.Now().Add(g.cfg.StreamTimeout), max: g.cfg.MaxStreamBytes}
	a.touch()
	return a
}

// readDeadline is when a read of the splice gives up: idle after the last byte,
// and never past the end.
func (a *activity) readDeadline() time.Time {
	dl := time.Unix(0, a.last.Load()).Add(a.idle)
	if !a.end.IsZero() && a.end.Before(dl) {
		dl = a.end
	}
	return dl
}

func (a *activity) touch() { a.last.Store(time.Now().UnixNano()) }

// splice copies src to dst until src ends, either side fails, or no byte has
// crossed the tunnel either way for idle; it returns the bytes copied. under is
// the connection under src, whose read deadline is pushed on (nil: none; the other
// way's deadline and closing end it).
func (a *activity) splice(dst io.Writer, src io.Reader, under net.Conn) int64 {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		if under != nil {
			_ = under.SetReadDeadline(a.readDeadline())
		}
		k, err := src.Read(buf)
		if k > 0 {
			if a.max > 0 && n+int64(k) > a.max {
				return n
			}
			a.touch()
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return n
			}
			n += int64(k)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && time.Now().Before(a.readDeadline()) {
			continue // the other way was busy
		}
		if err != nil {
			return n
		}
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	_ = c.Close()
}

// prefixConn is a connection whose reads come first from r (what was buffered
// while peeking).
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// oneConnListener hands one connection to http.Server.Serve, then blocks Accept
// until it is closed.
type oneConnListener struct {
	mu     sync.Mutex
	conn   net.Conn
	closed chan struct{}
	once   sync.Once
}

func newOneConnListener(c net.Conn) *oneConnListener {
	return &oneConnListener{conn: c, closed: make(chan struct{})}
}

// take returns the connection unless Accept has handed it out.
func (l *oneConnListener) take() net.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.conn
	l.conn = nil
	return c
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if c := l.take(); c != nil {
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return tunnelAddr{} }

type tunnelAddr struct{}

func (tunnelAddr) Network() string { return "tunnel" }
func (tunnelAddr) String() string  { return "tunnel" }

// tunnel is one open CONNECT tunnel of a door: Door.Close ends it.
type tunnel struct {
	mu       sync.Mutex
	closed   bool
	closers  []io.Closer
	srv      *http.Server
	wg       sync.WaitGroup // requests being served inside it
	requests atomic.Int64   // requests received inside it
}

// setCloser registers what ending the tunnel closes (closed at once when the
// tunnel has already been ended).
func (t *tunnel) setCloser(cs ...io.Closer) {
	t.mu.Lock()
	t.closers = append(t.closers, cs...)
	closed := t.closed
	t.mu.Unlock()
	if closed {
		for _, c := range cs {
			_ = c.Close()
		}
	}
}

// setServer registers the tunnel's HTTP server; false when the tunnel has ended.
func (t *tunnel) setServer(s *http.Server) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.srv = s
	return true
}

// enter joins the tunnel's requests unless it has ended.
func (t *tunnel) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tunnel) done() { t.wg.Done() }

// wait waits for the requests being served inside the tunnel.
func (t *tunnel) wait() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}

// end ends the tunnel: gracefully (ctx bounds the wait for requests in it), then
// by closing its connections.
func (t *tunnel) end(ctx context.Context) {
	t.mu.Lock()
	t.closed = true
	srv, closers := t.srv, t.closers
	t.mu.Unlock()
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}
	for _, c := range closers {
		_ = c.Close()
	}
}

// openTunnel registers a new tunnel, or returns nil when the door is closing or
// MaxTunnelsPerDoor are open.
func (d *Door) openTunnel() *tunnel {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing || len(d.tunnels) >= d.g.cfg.MaxTunnelsPerDoor {
		return nil
	}
	t := &tunnel{}
	if d.tunnels == nil {
		d.tunnels = map[*tunnel]struct{}{}
	}
	d.tunnels[t] = struct{}{}
	return t
}

func (d *Door) closeTunnel(t *tunnel) {
	d.mu.Lock()
	delete(d.tunnels, t)
	d.mu.Unlock()
}

// acquireStream takes one of the door's MaxStreamsPerDoor slots, without waiting.
func (d *Door) acquireStream() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.streams >= d.g.cfg.MaxStreamsPerDoor {
		return false
	}
	d.streams++
	return true
}

func (d *Door) releaseStream() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.streams--
}

// endTunnels ends every open tunnel of the door, each bounded by ctx, and waits.
func (d *Door) endTunnels(ctx context.Context) {
	d.mu.Lock()
	ts := make([]*tunnel, 0, len(d.tunnels))
	for t := range d.tunnels {
		ts = append(ts, t)
	}
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.end(ctx)
		}()
	}
	wg.Wait()
}
