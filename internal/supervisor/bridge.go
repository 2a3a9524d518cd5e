package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bridge limits. The door has its own size and time limits on bodies; these
// bound only what the bridge itself reads and waits for.
const (
	// bridgeMaxHeaderBytes bounds a client's request head.
	bridgeMaxHeaderBytes = 64 << 10
	// bridgeMaxResponseHeaderBytes bounds the door's response head.
	bridgeMaxResponseHeaderBytes = 256 << 10
	// bridgeReadHeaderTimeout bounds how long a client may take to send a head.
	bridgeReadHeaderTimeout = 30 * time.Second
	// bridgeIdleTimeout closes a client's idle keep-alive connection.
	bridgeIdleTimeout = 2 * time.Minute
	// bridgeDialTimeout bounds a dial of the door's Unix socket.
	bridgeDialTimeout = 10 * time.Second
	// bridgeConnectTimeout bounds the wait for the door's answer to a CONNECT
	// (the door decides on policy before any TLS).
	bridgeConnectTimeout = 60 * time.Second
	// bridgeResponseHeaderTimeout is a backstop on the door's answer to a
	// forwarded request (the door's own upstream timeouts answer 504 first): a
	// door that accepts and never answers gives 502, not a hang.
	bridgeResponseHeaderTimeout = 10 * time.Minute
	// bridgeMaxErrorBody bounds a refused CONNECT's body relayed to the client.
	bridgeMaxErrorBody = 64 << 10
)

// Bridge is the sandbox's HTTP proxy: it listens on loopback inside the
// sandbox (127.0.0.1:3128) and relays every client connection to the sandbox's
// egress door (a Unix socket), putting the sandbox's own proxy credentials on
// every request in place of whatever the client sent, so the workload needs
// none. Absolute-form requests (GET http://host/path) are relayed one by one
// over pooled connections to the door, bodies streamed both ways; a CONNECT is
// relayed to the door and, once the door answers 2xx, the two connections are
// spliced both ways. Whatever the door decides (policy, interception) is the
// door's: the bridge adds credentials and nothing else.
//
// Serve it once; it stops, and waits for everything it started, when its
// context ends.
type Bridge struct {
	// DoorSocket is the path of the door's Unix socket.
	DoorSocket string
	// Token is the sandbox's door token, sent as Proxy-Authorization: Bearer.
	Token string
	Logf  func(format string, args ...any)

	mu      sync.Mutex // guards ctx, tunnels and closed
	ctx     context.Context
	tunnels map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup // handlers and tunnel pumps
}

func (b *Bridge) logf(format string, args ...any) {
	if b.Logf != nil {
		b.Logf(format, args...)
	}
}

// Serve serves ln until ctx ends, then closes ln and every client and door
// connection and waits for its goroutines. It returns nil after ctx ended.
func (b *Bridge) Serve(ctx context.Context, ln net.Listener) error {
	b.mu.Lock()
	b.ctx = ctx
	b.tunnels = map[net.Conn]struct{}{}
	b.mu.Unlock()
	tr := &http.Transport{
		// Every request goes to the door as to an HTTP proxy: absolute-form
		// request line, Host kept, over the door's Unix socket.
		Proxy: func(*http.Request) (*url.URL, error) { return &url.URL{Scheme: "http", Host: "door"}, nil },
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: bridgeDialTimeout}
			return d.DialContext(ctx, "unix", b.DoorSocket)
		},
		DisableCompression:     true, // relay bytes as the upstream sent them
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: bridgeMaxResponseHeaderBytes,
		ExpectContinueTimeout:  time.Second,
		ResponseHeaderTimeout:  bridgeResponseHeaderTimeout,
	}
	defer tr.CloseIdleConnections()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The hop-by-hop headers, the client's Proxy-Authorization among
			// them, are gone already: only the sandbox's own credentials go on.
			pr.Out.Header.Set("Proxy-Authorization", "Bearer "+b.Token)
		},
		Transport:     tr,
		FlushInterval: -1, // stream: every write of the door's body reaches the client at once
		ErrorHandler:  b.proxyError,
	}
	srv := &http.Server{
		Handler:           b.handler(rp),
		ReadHeaderTimeout: bridgeReadHeaderTimeout,
		IdleTimeout:       bridgeIdleTimeout,
		MaxHeaderBytes:    bridgeMaxHeaderBytes,
		ErrorLog:          log.New(io.Discard, "", 0), // client misbehaviour is not the workload's output
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	// Stop intake, then close what serves: client connections (the server's
	// and the hijacked tunnels), so that every handler ends, then wait.
	_ = srv.Close()
	if err == nil {
		<-errc
	}
	b.mu.Lock()
	b.closed = true
	for c := range b.tunnels {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (b *Bridge) serveCtx() context.Context {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ctx
}

// handler counts every request in b.wg so that Serve waits for them.
func (b *Bridge) handler(rp *httputil.ReverseProxy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			bridgeError(w, http.StatusServiceUnavailable, "unavailable", "the sandbox's proxy bridge is shutting down")
			return
		}
		b.wg.Add(1)
		b.mu.Unlock()
		defer b.wg.Done()
		switch {
		case r.Method == http.MethodConnect:
			b.connect(w, r)
		case r.URL.IsAbs() && r.URL.Scheme == "http" && r.URL.Host != "":
			// The door's answer may start before the request body ends (an
			// upload answered as it streams): keep reading it meanwhile.
			_ = http.NewResponseController(w).EnableFullDuplex()
			rp.ServeHTTP(w, r)
		case r.URL.IsAbs():
			bridgeError(w, http.StatusBadRequest, "invalid_request",
				fmt.Sprintf("the proxy relays http:// absolute-form requests and CONNECT, not %q URLs (an https client uses CONNECT)", r.URL.Scheme))
		default:
			bridgeError(w, http.StatusBadRequest, "invalid_request",
				"this is the sandbox's HTTP proxy: send absolute-form requests (GET http://host/path) or CONNECT host:port, for example through HTTP_PROXY")
		}
	})
}

// bridgeError answers with the API's error shape.
func bridgeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(wireError{Code: code, Message: "clawbox proxy bridge: " + msg})
}

// proxyError answers a request the door did not answer: 502 with a body, the
// detail logged.
func (b *Bridge) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	b.logf("clawbox-supervisor: bridge: %s %s: %v", r.Method, redactedURL(r.URL), err)
	bridgeError(w, http.StatusBadGateway, "upstream_error", doorErrorMessage(err))
}

func doorErrorMessage(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return "the sandbox's egress door is not reachable (it is closed or the server is restarting); retry later"
	case errors.As(err, &ne) && ne.Timeout():
		return "the sandbox's egress door did not answer in time"
	}
	return "the sandbox's egress door failed to answer the request"
}

// redactedURL drops a URL's query and user information before it is logged.
func redactedURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

// connect relays a CONNECT to the door and, once the door answers 2xx,
// splices the client's connection with the door's both ways. A refusal is
// relayed to the client as the door sent it (status, headers, body).
func (b *Bridge) connect(w http.ResponseWriter, r *http.Request) {
	target := r.Host
	if target == "" {
		target = r.URL.Host
	}
	if target == "" {
		bridgeError(w, http.StatusBadRequest, "invalid_request", "CONNECT needs a host:port")
		return
	}
	// Not the request's context: a client may half-close right after its
	// CONNECT (printf ... | nc), which ends that context, and still wait for
	// the answer. The bridge's own end cancels this one.
	ctx, cancel := context.WithTimeout(b.serveCtx(), bridgeConnectTimeout)
	defer cancel()
	d := net.Dialer{Timeout: bridgeDialTimeout}
	door, err := d.DialContext(ctx, "unix", b.DoorSocket)
	if err != nil {
		b.logf("clawbox-supervisor: bridge: CONNECT %s: %v", target, err)
		bridgeError(w, http.StatusBadGateway, "upstream_error", doorErrorMessage(err))
		return
	}
	if !b.track(door) {
		bridgeError(w, http.StatusServiceUnavailable, "unavailable", "the sandbox's proxy bridge is shutting down")
		return
	}
	ok := false
	defer func() {
		if !ok {
			b.untrack(door)
		}
	}()
	// The deadline covers writing the CONNECT and reading the door's answer;
	// the spliced tunnel has none (the door bounds it).
	dl, _ := ctx.Deadline()
	_ = door.SetDeadline(dl)
	out := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: target},
		Host:   target,
		Header: http.Header{"Proxy-Authorization": {"Bearer " + b.Token}},
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		out.Header.Set("User-Agent", ua)
	}
	if err := out.Write(door); err != nil {
		b.logf("clawbox-supervisor: bridge: CONNECT %s: %v", target, err)
		bridgeError(w, http.StatusBadGateway, "upstream_error", doorErrorMessage(err))
		return
	}
	dr := bufio.NewReader(io.LimitReader(door, bridgeMaxResponseHeaderBytes))
	resp, err := http.ReadResponse(dr, out)
	if err != nil {
		b.logf("clawbox-supervisor: bridge: CONNECT %s: %v", target, err)
		bridgeError(w, http.StatusBadGateway, "upstream_error", doorErrorMessage(err))
		return
	}
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, bridgeMaxErrorBody))
		resp.Body.Close()
		h := w.Header()
		for k, vs := range resp.Header {
			switch http.CanonicalHeaderKey(k) {
			case "Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length", "Proxy-Connection", "Trailer", "Upgrade":
				continue
			}
			h[k] = vs
		}
		h.Set("Connection", "close")
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
		return
	}
	hj, okHJ := w.(http.Hijacker)
	if !okHJ {
		bridgeError(w, http.StatusInternalServerError, "internal", "cannot take over the connection")
		return
	}
	client, cbuf, err := hj.Hijack()
	if err != nil {
		b.logf("clawbox-supervisor: bridge: CONNECT %s: hijack: %v", target, err)
		return
	}
	if !b.track(client) {
		return
	}
	ok = true
	defer b.untrack(client)
	defer b.untrack(door)
	_ = door.SetDeadline(time.Time{})
	_ = client.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(client, "HTTP/1.1 %d %s\r\n\r\n", resp.StatusCode, connectReason(resp)); err != nil {
		return
	}
	// The client may have sent its first bytes (a TLS ClientHello) with the
	// CONNECT: they are in cbuf. Bytes the door sent after its answer are in dr.
	b.splice(client, buffered(cbuf.Reader), door, buffered(dr))
}

func connectReason(resp *http.Response) string {
	if _, reason, ok := strings.Cut(resp.Status, " "); ok && reason != "" {
		return reason
	}
	return "Connection established"
}

// buffered returns what br holds already, without reading more.
func buffered(br *bufio.Reader) []byte {
	p, _ := br.Peek(br.Buffered())
	return append([]byte(nil), p...)
}

// spliceLinger bounds how long a tunnel stays half-open after one direction
// has ended (a peer that neither sends nor closes).
const spliceLinger = 30 * time.Second

// splice copies both ways, first the bytes already read from each side, and
// passes each end of stream on as a half-close. An error in either direction
// ends both at once; after a clean end of one direction the other gets
// spliceLinger to finish. It returns when both pumps have; the caller closes
// the connections.
func (b *Bridge) splice(client net.Conn, clientHead []byte, door net.Conn, doorHead []byte) {
	done := make(chan error, 2)
	pump := func(dst, src net.Conn, head []byte) {
		var err error
		if len(head) > 0 {
			_, err = dst.Write(head)
		}
		if err == nil {
			_, err = io.Copy(dst, src)
		}
		closeWrite(dst)
		done <- err
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		pump(door, client, clientHead)
	}()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		pump(client, door, doorHead)
	}()
	end := time.Now().Add(spliceLinger)
	if err := <-done; err != nil {
		end = time.Now()
	}
	_ = client.SetDeadline(end)
	_ = door.SetDeadline(end)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// track records a hijacked or door connection, so that Serve closes it at
// shutdown; false (and the connection closed) once the bridge is closed.
func (b *Bridge) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		c.Close()
		return false
	}
	b.tunnels[c] = struct{}{}
	return true
}

// untrack closes c and forgets it.
func (b *Bridge) untrack(c net.Conn) {
	b.mu.Lock()
	delete(b.tunnels, c)
	b.mu.Unlock()
	_ = c.Close()
}
