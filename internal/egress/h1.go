package egress

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// h1Pool sends the requests that have no body (nearly all a door sees: GETs, HEADs,
// DELETEs) as HTTP/1.1 on pooled keep-alive connections, writing the request and
// reading its answer in the calling goroutine. http.Transport does the same work
// with a reader and a writer goroutine per connection, and hands every request and
// answer between them and the caller: on this 2-core machine those hand-offs (and
// the thread wake-ups behind them) were a large part of a door's CPU per request.
// Everything else (a body, an upgrade, Expect) goes to the Transport, which also
// does HTTP/2; the wire format is net/http's own (Request.Write, ReadResponse), and
// so are the rules kept here: compression asked for and decoded as the Transport
// does, a bounded response header, 1xx answers skipped, a connection reused only
// after its answer was read to the end, and a request retried once on a fresh
// connection when a reused one turns out closed before any byte of an answer.
type h1Pool struct {
	next           http.RoundTripper // everything h1Pool does not send itself
	dial           func(ctx context.Context, network, addr string) (net.Conn, error)
	tls            *tls.Config
	maxIdlePerHost int
	maxIdle        int // in all
	idleTimeout    time.Duration
	handshake      time.Duration
	maxHeaderBytes int64

	mu     sync.Mutex
	idle   map[h1Key][]*h1Conn // the most recently used last
	nIdle  int
	closed bool
}

// h1Key is what a connection may be reused for: the scheme and the host:port of
// the request's URL (the dialer resolves and checks the address at each dial).
type h1Key struct{ scheme, addr string }

// h1Conn is one upstream connection, owned by one request at a time.
type h1Conn struct {
	key    h1Key
	conn   net.Conn         // *tls.Conn for https
	raw    net.Conn         // the TCP connection under conn
	lr     io.LimitedReader // the connection as br reads it: N bounds a response's header
	br     *bufio.Reader
	bw     *bufio.Writer
	expiry *time.Timer // closes the connection after the idle timeout in the pool
}

// noLimit is lr.N outside a response's header.
const noLimit = math.MaxInt64

func newH1Pool(next http.RoundTripper, dial func(ctx context.Context, network, addr string) (net.Conn, error), tlsConfig *tls.Config) *h1Pool {
	return &h1Pool{
		next:           next,
		dial:           dial,
		tls:            tlsConfig,
		maxIdlePerHost: 8,
		maxIdle:        100,
		idleTimeout:    90 * time.Second,
		handshake:      10 * time.Second,
		maxHeaderBytes: 256 << 10,
		idle:           make(map[h1Key][]*h1Conn),
	}
}

// sendsItself reports whether p sends req itself rather than passing it on.
func sendsItself(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody || req.ContentLength != 0 {
		return false
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" || req.URL.Host == "" {
		return false
	}
	h := req.Header
	return len(h["Upgrade"]) == 0 && len(h["Expect"]) == 0 && len(req.Trailer) == 0 && len(req.TransferEncoding) == 0
}

// RoundTrip sends req, itself or through the Transport.
func (p *h1Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sendsItself(req) {
		return p.next.RoundTrip(req)
	}
	key := h1Key{scheme: req.URL.Scheme, addr: canonicalAddr(req.URL.Scheme, req.URL.Host)}
	ctx := req.Context()
	// As the Transport does: ask for gzip (the door removed the caller's
	// Accept-Encoding) and decode it, so that the body can be scanned.
	gz := req.Header.Get("Accept-Encoding") == "" && req.Header.Get("Range") == "" && req.Method != http.MethodHead
	if gz {
		req.Header["Accept-Encoding"] = gzipOnly
	}
	for attempt := 0; ; attempt++ {
		pc, reused, err := p.get(ctx, key)
		if err != nil {
			return nil, err
		}
		resp, err := p.send(ctx, pc, req, gz)
		if err == nil {
			return resp, nil
		}
		var nothing errNothingRead
		if reused && attempt == 0 && errors.As(err, &nothing) && ctx.Err() == nil && replayable(req) {
			continue // the upstream closed the idle connection: once more, on a new one
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
}

var gzipOnly = []string{"gzip"}

// max1xx is how many informational answers may come before the answer, as the
// Transport allows.
const max1xx = 5

// aLongTimeAgo is a deadline that has passed: set on a connection, it fails its
// pending and future reads and writes at once.
var aLongTimeAgo = time.Unix(1, 0)

// replayable reports whether req may be sent a second time after a reused
// connection failed under it, by the Transport's rule: a method that changes
// nothing, or an idempotency key.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return len(req.Header["Idempotency-Key"]) > 0 || len(req.Header["X-Idempotency-Key"]) > 0
}

// errNothingRead is a failure before any byte of an answer came back.
type errNothingRead struct{ err error }

func (e errNothingRead) Error() string { return e.err.Error() }
func (e errNothingRead) Unwrap() error { return e.err }

// send writes req on pc and reads its answer's header. On success the body owns
// pc; on failure pc is closed.
func (p *h1Pool) send(ctx context.Context, pc *h1Conn, req *http.Request, gz bool) (*http.Response, error) {
	// A cancelled or expired request unblocks its reads and writes at once.
	stop := context.AfterFunc(ctx, func() { _ = pc.conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		pc.conn.Close()
		return nil, err
	}
	if err := req.Write(pc.bw); err != nil {
		return fail(errNothingRead{err})
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(errNothingRead{err})
	}
	pc.lr.N = p.maxHeaderBytes
	if _, err := pc.br.Peek(1); err != nil {
		return fail(errNothingRead{err})
	}
	var resp *http.Response
	for informational := 0; ; informational++ {
		if informational > max1xx {
			return fail(fmt.Errorf("egress: upstream sent more than %d informational (1xx) answers", max1xx))
		}
		var err error
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			if pc.lr.N <= 0 {
				err = fmt.Errorf("egress: upstream response header larger than %d bytes", p.maxHeaderBytes)
			}
			return fail(err)
		}
		if resp.StatusCode < 100 {
			return fail(fmt.Errorf("egress: upstream sent status %d", resp.StatusCode))
		}
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return fail(errors.New("egress: upstream switched protocols without being asked to"))
		}
		// 100 Continue (not asked for) and 103 Early Hints: the answer follows.
		pc.lr.N = p.maxHeaderBytes
	}
	pc.lr.N = noLimit
	reuse := !resp.Close && !req.Close
	if resp.Body == http.NoBody {
		stop()
		p.put(pc, reuse)
		return resp, nil
	}
	b := &h1Body{p: p, pc: pc, rc: resp.Body, stop: stop, reuse: reuse}
	resp.Body = b
	if gz && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
		resp.Body = &gunzipBody{body: b}
	}
	return resp, nil
}

// h1Body is an answer's body: its connection goes back to the pool once it was
// read to the end (and the request's context did not end), and is closed
// otherwise.
type h1Body struct {
	p     *h1Pool
	pc    *h1Conn
	rc    io.ReadCloser
	stop  func() bool
	reuse bool
	eof   bool
	done  bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	// stop reports false when the context's end already cut the connection.
	live := b.stop()
	b.p.put(b.pc, b.eof && b.reuse && live)
	return nil
}

// gunzipBody decodes a gzip body the pool asked for, opening the decoder on the
// first read, as the Transport does.
type gunzipBody struct {
	body *h1Body
	zr   *gzip.Reader
	err  error
}

func (g *gunzipBody) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if g.zr == nil {
		zr, err := gzip.NewReader(g.body)
		if err != nil {
			g.err = err
			return 0, err
		}
		g.zr = zr
	}
	n, err := g.zr.Read(p)
	if err == io.EOF {
		// The gzip stream ended: read the body's own end, so that the connection
		// can be reused.
		if _, e := g.body.Read(make([]byte, 1)); e != io.EOF {
			g.body.reuse = false
		}
	}
	if err != nil {
		g.err = err
	}
	return n, err
}

func (g *gunzipBody) Close() error { return g.body.Close() }

// get returns an idle connection for key (reused true) or dials a new one.
func (p *h1Pool) get(ctx context.Context, key h1Key) (*h1Conn, bool, error) {
	for {
		p.mu.Lock()
		pc := p.takeLocked(key)
		closed := p.closed
		p.mu.Unlock()
		if pc == nil {
			if closed {
				return nil, false, errors.New("egress: the gateway is closed")
			}
			pc, err := p.connect(ctx, key)
			return pc, false, err
		}
		pc.expiry.Stop()
		if pc.quiet() {
			return pc, true, nil
		}
		pc.conn.Close()
	}
}

// takeLocked removes and returns key's most recently used idle connection, or nil.
func (p *h1Pool) takeLocked(key h1Key) *h1Conn {
	conns := p.idle[key]
	if len(conns) == 0 {
		return nil
	}
	pc := conns[len(conns)-1]
	conns[len(conns)-1] = nil
	if len(conns) == 1 {
		delete(p.idle, key)
	} else {
		p.idle[key] = conns[:len(conns)-1]
	}
	p.nIdle--
	return pc
}

// expire closes pc if it is still idle: its idle timeout has passed.
func (p *h1Pool) expire(pc *h1Conn) {
	p.mu.Lock()
	conns := p.idle[pc.key]
	i := slices.Index(conns, pc)
	if i < 0 {
		p.mu.Unlock()
		return // taken meanwhile
	}
	conns = slices.Delete(conns, i, i+1)
	if len(conns) == 0 {
		delete(p.idle, pc.key)
	} else {
		p.idle[pc.key] = conns
	}
	p.nIdle--
	p.mu.Unlock()
	pc.conn.Close()
}

// quiet reports whether an idle connection has nothing to read: an upstream that
// sent anything unasked (a 408 before closing, a close) must not have it taken for
// the next request's answer.
func (pc *h1Conn) quiet() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	sc, ok := pc.raw.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	quiet := false
	var buf [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		quiet = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true // never wait
	})
	return quiet
}

// connect dials key through the guarded dialer, with TLS for https (HTTP/1.1
// only: this pool speaks nothing else).
func (p *h1Pool) connect(ctx context.Context, key h1Key) (*h1Conn, error) {
	raw, err := p.dial(ctx, "tcp", key.addr)
	if err != nil {
		return nil, err
	}
	conn := raw
	if key.scheme == "https" {
		host, _, _ := net.SplitHostPort(key.addr)
		cfg := p.tls.Clone()
		cfg.ServerName = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(raw, cfg)
		hctx, cancel := context.WithTimeout(ctx, p.handshake)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			raw.Close()
			return nil, err
		}
		conn = tc
	}
	pc := &h1Conn{key: key, conn: conn, raw: raw}
	pc.expiry = time.AfterFunc(time.Hour, func() { p.expire(pc) })
	pc.expiry.Stop()
	pc.lr = io.LimitedReader{R: conn, N: noLimit}
	pc.br = bufio.NewReaderSize(&pc.lr, 4<<10)
	pc.bw = bufio.NewWriterSize(conn, 4<<10)
	return pc, nil
}

// put keeps pc for its key's next request when reuse and there is room, and closes
// it otherwise.
func (p *h1Pool) put(pc *h1Conn, reuse bool) {
	if reuse {
		if err := pc.conn.SetDeadline(time.Time{}); err != nil {
			reuse = false
		}
	}
	if reuse {
		p.mu.Lock()
		if !p.closed && len(p.idle[pc.key]) < p.maxIdlePerHost && p.nIdle < p.maxIdle {
			p.idle[pc.key] = append(p.idle[pc.key], pc)
			p.nIdle++
			pc.expiry.Reset(p.idleTimeout)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	pc.conn.Close()
}

// close closes the idle connections, and the Transport's, and keeps none from
// then on.
func (p *h1Pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = make(map[h1Key][]*h1Conn)
	p.nIdle = 0
	p.mu.Unlock()
	for _, conns := range idle {
		for _, pc := range conns {
			pc.expiry.Stop()
			pc.conn.Close()
		}
	}
	if t, ok := p.next.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// canonicalAddr is host:port with the scheme's default port when host has none.
func canonicalAddr(scheme, host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}
