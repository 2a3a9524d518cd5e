package egress

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// doorServer is the door's HTTP/1.1 server: one goroutine per connection reads a
// request (http.ReadRequest, the parser net/http's server uses), runs the handler
// in that goroutine, writes the answer and reads the next one.
//
// It stands in for net/http.Server on the door because of what that server does
// per request: it starts a goroutine that reads the connection in the background
// (to notice a client that goes away), and stops it when the handler returns (a
// read that finds nothing, a parked goroutine, a deadline that wakes it, a
// condition variable). On a 2-CPU machine those hand-offs were a large part of the
// door's CPU per request (docs/benchmarks.md, "Forward proxy vs squid"). Here a
// request that is still being served goneAfter after its body was read starts
// that watch (goneWatch): a client that went away cancels the request's context
// then; before that, it is noticed when a write to it fails. Close cancels the
// context of every request in flight.
//
// What it keeps of net/http's server: the request parser and its checks (a Host
// header on HTTP/1.1, valid header names and values, HTTP/1.x only), a bound on the
// header (431), header and whole-request read timeouts, an idle timeout, Expect:
// 100-continue, a short answer sent with its length, a longer one chunked, an
// unread request body drained up to 256 KiB before the connection is reused (else
// closed), Connection: close both ways, Hijack, Flush, read and write deadlines
// through http.ResponseController, and http.ErrAbortHandler to cut an answer off.
type doorServer struct {
	handler           http.Handler
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	idleTimeout       time.Duration
	// writeTimeout bounds writing one request's answer, from the end of its
	// header (a handler that streams sets a deadline of its own): a client that
	// stops reading cannot hold its connection and goroutine for ever.
	writeTimeout time.Duration
	// maxConns bounds the connections open at once; one more is answered 429
	// rate_limited and closed at once. 0: no bound.
	maxConns       int
	maxHeaderBytes int
	log            *slog.Logger

	ctx    context.Context // every request's context derives from it; Close cancels it
	cancel context.CancelFunc

	mu     sync.Mutex
	ln     net.Listener
	closed bool
	conns  map[*doorConn]bool // true while the connection is serving a request
}

func newDoorServer(h http.Handler, log *slog.Logger) *doorServer {
	ctx, cancel := context.WithCancel(context.Background())
	return &doorServer{handler: h, log: log, ctx: ctx, cancel: cancel, conns: make(map[*doorConn]bool), maxHeaderBytes: http.DefaultMaxHeaderBytes}
}

// serve accepts connections on ln until Shutdown or Close, and returns
// http.ErrServerClosed then (another error: the listener failed).
func (s *doorServer) serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	var delay time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Debug("egress door accept failed; retrying", "err", err, "delay", delay)
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
			}
			continue
		}
		delay = 0
		c := &doorConn{s: s, rwc: rwc}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = rwc.Close()
			return http.ErrServerClosed
		}
		if s.maxConns > 0 && len(s.conns) >= s.maxConns {
			s.mu.Unlock()
			s.log.Debug("egress door: too many connections; refusing one", "max", s.maxConns)
			// A fresh socket's buffer takes the answer without blocking; the
			// deadline makes sure of it.
			_ = rwc.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
			_, _ = io.WriteString(rwc, tooManyConns)
			_ = rwc.Close()
			continue
		}
		s.conns[c] = false
		s.mu.Unlock()
		go c.serve()
	}
}

// tooManyConns is the answer to a connection over maxConns.
const tooManyConns = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nX-Clawbox-Error: rate_limited\r\nContent-Length: 63\r\n\r\ntoo many connections to this door at once: close some and retry"

func (s *doorServer) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// stopAccepting marks the server closed and closes its listener (once).
func (s *doorServer) stopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		if s.ln != nil {
			_ = s.ln.Close()
		}
	}
}

// Shutdown stops accepting, closes idle connections, and waits for the others
// to finish their request (they close when it is answered) or for ctx to end.
func (s *doorServer) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	wait := 2 * time.Millisecond
	for {
		s.mu.Lock()
		for c, busy := range s.conns {
			if !busy {
				_ = c.rwc.Close()
			}
		}
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// Close stops accepting, cancels the context of every request in flight, and
// closes every connection (hijacked ones belong to their handler).
func (s *doorServer) Close() error {
	s.stopAccepting()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.rwc.Close()
	}
	s.mu.Unlock()
	// The connections close first: a handler that returns on the cancellation
	// cannot get an answer out any more.
	s.cancel()
	return nil
}

// setBusy moves c between idle and serving; it reports false when the server is
// closed (c must then close).
func (s *doorServer) setBusy(c *doorConn, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = busy
	return true
}

func (s *doorServer) forget(c *doorConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// maxDrain is how much of a request body the handler left unread is read and
// dropped so that the connection can serve the next request (net/http's bound).
const maxDrain = 256 << 10

// bufferBeforeCommit is how much of an answer is held before its status line is
// sent: an answer that fits goes out whole, with its length.
const bufferBeforeCommit = 4 << 10

// doorConn is one client connection.
type doorConn struct {
	s        *doorServer
	rwc      net.Conn
	lr       limitReader
	br       *bufio.Reader
	bw       *bufio.Writer
	hijacked bool
	linger   bool   // closing with the client still sending a body: linger before the close
	buf      []byte // the uncommitted answer of the current request, reused
	wdl      bool   // the handler set a write deadline: the next request resets it

	// wmu orders a 100 Continue, which the goroutine reading the body sends (an
	// upload runs in the Transport's goroutine), against the handler's answer.
	wmu      sync.Mutex
	answered bool // the final answer has begun: no 100 Continue any more

	gone *goneWatch // the current request's
}

// goneAfter is how long a request is served, after its body was read, before the
// connection is watched for the client going away.
const goneAfter = 500 * time.Millisecond

// goneWatch notices a client that goes away while its request is served: armed
// once the request's body has been read to its end (the connection then carries
// nothing of this request), it waits goneAfter, then reads the connection in the
// background; EOF or an error other than a timeout cancels the request's context
// (the upstream request and its slot end). Bytes that arrive (a pipelined request)
// stay in the connection's buffer. stop ends the watch and waits for its read, so
// the connection's goroutine owns the buffer again.
type goneWatch struct {
	c       *doorConn
	cancel  context.CancelFunc
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
	peeking bool
	done    chan struct{}
}

func (g *goneWatch) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped || g.t != nil {
		return
	}
	g.t = time.AfterFunc(goneAfter, g.watch)
}

func (g *goneWatch) watch() {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return
	}
	g.peeking = true
	g.done = make(chan struct{})
	// The request's read deadline was for its body, which has been read.
	_ = g.c.rwc.SetReadDeadline(time.Time{})
	g.mu.Unlock()
	defer close(g.done)
	_, err := g.c.br.Peek(1)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil && !g.stopped && !isTimeout(err) {
		g.cancel()
	}
}

// stop ends the watch (idempotent) and returns once its read has.
func (g *goneWatch) stop() {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return
	}
	g.stopped = true
	if g.t != nil {
		g.t.Stop()
	}
	peeking, done := g.peeking, g.done
	g.mu.Unlock()
	if peeking {
		_ = g.c.rwc.SetReadDeadline(aLongTimeAgo)
		<-done
	}
}

// limitReader reads from r at most n bytes (the header bound), then reports EOF
// and remembers that it hit the limit.
type limitReader struct {
	r   io.Reader
	n   int64
	hit bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		l.hit = true
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

func (c *doorConn) serve() {
	s := c.s
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			s.log.Error("egress door handler panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
		if !c.hijacked {
			if c.linger {
				c.lingerClose()
			}
			_ = c.rwc.Close()
		}
		s.forget(c)
	}()
	c.lr.r = c.rwc
	c.br = bufio.NewReaderSize(&c.lr, 4<<10)
	c.bw = bufio.NewWriterSize(c.rwc, 4<<10)
	first := true
	for {
		if !s.setBusy(c, false) {
			return
		}
		wait := s.idleTimeout
		if first || wait <= 0 {
			wait = s.readHeaderTimeout
		}
		if wait > 0 {
			_ = c.rwc.SetReadDeadline(time.Now().Add(wait))
		}
		c.lr.n, c.lr.hit = int64(s.maxHeaderBytes)+4096, false
		if !c.skipEmptyLines() {
			return
		}
		first = false
		if !s.setBusy(c, true) {
			return
		}
		if !c.serveOne() {
			return
		}
	}
}

// maxEmptyLines bounds the empty lines ignored before a request line.
const maxEmptyLines = 4

// skipEmptyLines waits for the next request's first byte and ignores up to
// maxEmptyLines empty lines (CRLF or LF) before it, as RFC 9112 (section 2.2) asks
// of a server: some clients end a POST body with one more CRLF than its length
// counts. It reports whether a request follows; more empty lines than that are
// left for ReadRequest, which refuses them as a malformed request line.
func (c *doorConn) skipEmptyLines() bool {
	for range maxEmptyLines {
		b, err := c.br.Peek(1)
		if err != nil {
			return false
		}
		switch b[0] {
		case '\n':
			_, _ = c.br.Discard(1)
		case '\r':
			b, err := c.br.Peek(2)
			if err != nil {
				return false
			}
			if b[1] != '\n' {
				return true // ReadRequest refuses it
			}
			_, _ = c.br.Discard(2)
		default:
			return true
		}
	}
	_, err := c.br.Peek(1)
	return err == nil
}

// serveOne reads and answers one request. It reports whether the connection can
// serve another.
func (c *doorConn) serveOne() bool {
	s := c.s
	t0 := time.Now()
	if s.readHeaderTimeout > 0 {
		_ = c.rwc.SetReadDeadline(t0.Add(s.readHeaderTimeout))
	}
	buffered, _ := c.br.Peek(c.br.Buffered())
	sawLength, wholeHeader := headerHasContentLength(buffered)
	req, err := http.ReadRequest(c.br)
	if err != nil {
		switch {
		case c.lr.hit:
			c.refuse(http.StatusRequestHeaderFieldsTooLarge, "")
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isTimeout(err):
		case isUnsupportedCoding(err):
			// RFC 9112, section 6.1: a transfer coding the server does not know is
			// 501. The coding is not echoed back.
			c.refuse(http.StatusNotImplemented, "unsupported transfer encoding")
		default:
			c.refuse(http.StatusBadRequest, err.Error())
		}
		return false
	}
	c.lr.n = math.MaxInt64
	if s.writeTimeout > 0 {
		_ = c.rwc.SetWriteDeadline(t0.Add(s.writeTimeout))
	} else if c.wdl {
		_ = c.rwc.SetWriteDeadline(time.Time{})
	}
	c.wdl = false
	if s.readTimeout > 0 {
		_ = c.rwc.SetReadDeadline(t0.Add(s.readTimeout))
	} else {
		_ = c.rwc.SetReadDeadline(time.Time{})
	}
	if code, msg := checkRequest(req); code != 0 {
		c.refuse(code, msg)
		return false
	}
	req.RemoteAddr = c.rwc.RemoteAddr().String()

	body := &doorBody{r: req.Body, c: c}
	if ex := req.Header.Get("Expect"); ex != "" {
		if !strings.EqualFold(ex, "100-continue") {
			c.refuse(http.StatusExpectationFailed, "")
			return false
		}
		// HTTP/1.0 has no 100 Continue: the expectation is ignored (RFC 9110,
		// section 10.1.1).
		body.expect = req.ContentLength != 0 && req.ProtoAtLeast(1, 1)
		// Handled here: the handler and the upstream never see it.
		req.Header.Del("Expect")
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	gone := &goneWatch{c: c, cancel: cancel}
	defer gone.stop()
	c.gone = gone
	w := &doorResponse{c: c, header: make(http.Header), cl: -1, closeAfter: req.Close || !req.ProtoAtLeast(1, 1)}
	if len(req.TransferEncoding) > 0 && (sawLength || !wholeHeader) {
		// Content-Length beside Transfer-Encoding (ReadRequest dropped it): the
		// body is read by its chunks, and the connection closes after the answer
		// (RFC 9112, section 6.3), so that nothing a peer framed by the length
		// is taken for a next request.
		w.closeAfter = true
	}
	if req.Body != http.NoBody {
		req.Body = body
		w.body = body
	} else {
		gone.arm()
	}
	req = req.WithContext(ctx)
	w.req = req
	c.buf = c.buf[:0]
	c.answered = false
	s.handler.ServeHTTP(w, req)
	gone.stop()
	if c.hijacked {
		return false
	}
	w.finish()
	if w.err != nil || w.closeAfter {
		c.linger = w.err == nil && body.unread()
		return false
	}
	if !body.drain() {
		c.linger = body.unread()
		return false
	}
	return true
}

// Lingering close bounds.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 1 << 20
)

// lingerClose is what comes before closing a connection whose client may still be
// sending a body the door did not read (a refused upload): closed at once, its
// socket would answer the client's next write with an error, which a client like
// Go's may report instead of the answer it was sent. The write side is shut (the
// answer is followed by EOF) and what the client sends is read and dropped for a
// moment, up to lingerTime and lingerBytes, so that it reads the answer first.
func (c *doorConn) lingerClose() {
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.rwc.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c.rwc, lingerBytes)
}

// isUnsupportedCoding reports whether ReadRequest refused a Transfer-Encoding it
// does not implement (net/http's unexported unsupportedTEError, known by its
// text; TestDoorServerRefusesBadRequests pins it).
func isUnsupportedCoding(err error) bool {
	m := err.Error()
	return strings.HasPrefix(m, "unsupported transfer encoding") || strings.HasPrefix(m, "too many transfer encodings")
}

// headerHasContentLength reports whether the header block at the start of b holds
// a Content-Length field, and whether the block is all in b (when it is not, the
// answer is false and the caller assumes the worst).
func headerHasContentLength(b []byte) (has, whole bool) {
	const name = "content-length:"
	first := true
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return has, false
		}
		line := bytes.TrimSuffix(b[:i], []byte{'\r'})
		b = b[i+1:]
		if first {
			first = false // the request line
			continue
		}
		if len(line) == 0 {
			return has, true
		}
		if len(line) >= len(name) && strings.EqualFold(string(line[:len(name)]), name) {
			has = true
		}
	}
	return has, false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// checkRequest applies net/http's server-side checks to a parsed request: HTTP/1.x
// only, a valid Host on HTTP/1.1 (CONNECT aside), valid header names and values.
// http.ReadRequest has already refused a repeated Host header, removed it and
// kept its value (or, for an absolute-form target, the URL's authority, which
// is what is checked then) in req.Host; the door never forwards the client's
// Host header, it addresses the upstream from the URL.
func checkRequest(req *http.Request) (int, string) {
	if req.ProtoMajor != 1 || req.ProtoMinor > 1 {
		return http.StatusHTTPVersionNotSupported, "unsupported protocol version"
	}
	if req.ProtoAtLeast(1, 1) && req.Host == "" && req.Method != http.MethodConnect {
		return http.StatusBadRequest, "missing required Host header"
	}
	if req.Host != "" && !httpguts.ValidHostHeader(req.Host) {
		return http.StatusBadRequest, "malformed Host header"
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return http.StatusBadRequest, "invalid header name"
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return http.StatusBadRequest, "invalid header value"
			}
		}
	}
	return 0, ""
}

// refuse answers a request that cannot be served with a plain-text status, and
// the connection closes.
func (c *doorConn) refuse(code int, msg string) {
	status := strconv.Itoa(code) + " " + http.StatusText(code)
	text := status
	if msg != "" {
		text += ": " + msg
	}
	_ = c.rwc.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c.bw, "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", status, len(text), text)
	_ = c.bw.Flush()
}

// doorBody is a request body as the handler sees it: Close does not read the rest
// (the server drains at most maxDrain after the handler), a first Read answers
// Expect: 100-continue.
type doorBody struct {
	c      *doorConn
	r      io.ReadCloser // the parser's body, framed by Content-Length or chunks
	mu     sync.Mutex
	expect bool  // a 100 Continue is owed on the first read
	asked  bool  // it was sent
	reads  int   // reads in progress (the Transport reads an upload from its own goroutine)
	n      int64 // bytes read
	eof    bool
	closed bool
}

func (b *doorBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof {
		b.mu.Unlock()
		return 0, io.EOF
	}
	if b.expect && !b.asked {
		sent, err := b.c.sendContinue()
		if err != nil {
			b.mu.Unlock()
			return 0, fmt.Errorf("egress: sending 100 Continue: %w", err)
		}
		// Not sent (the answer had begun): the client may still be waiting for
		// it, so the connection closes after the answer (drain).
		b.asked = sent
	}
	b.reads++
	b.mu.Unlock()
	n, err := b.r.Read(p)
	b.mu.Lock()
	b.n += int64(n)
	b.reads--
	if err == io.EOF && !b.eof {
		b.eof = true
		b.c.gone.arm()
	}
	b.mu.Unlock()
	return n, err
}

// unread reports whether the client may still be sending this body: it has one,
// not read to its end, and no read of it is in progress (which would race with a
// lingering close's reads).
func (b *doorBody) unread() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.r != http.NoBody && !b.eof && b.reads == 0
}

func (b *doorBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// keepsConn reports whether, as far as can be told before the answer is sent, the
// connection can serve another request after it: not while a 100 Continue is
// owed, a read is in progress, or more than maxDrain is known to be left.
func (b *doorBody) keepsConn(cl int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof {
		return true
	}
	if b.reads > 0 || (b.expect && !b.asked) {
		return false
	}
	return cl < 0 || cl-b.n <= maxDrain
}

// drain reads what the handler left of the body, up to maxDrain, and reports
// whether the connection can read the next request after it. The handler's body
// is closed first: a read that comes later (a Transport's upload goroutine) gets
// http.ErrBodyReadAfterClose instead of the next request's bytes.
func (b *doorBody) drain() bool {
	b.mu.Lock()
	eof, busy, owed := b.eof, b.reads > 0, b.expect && !b.asked
	b.closed = true
	b.mu.Unlock()
	switch {
	case b.r == http.NoBody || eof:
		return true
	case busy || owed:
		// A read is still waiting on the client (the connection's close ends
		// it), or the client waits for a 100 Continue it will not get.
		return false
	}
	n, err := io.CopyN(io.Discard, b.r, maxDrain+1)
	return errors.Is(err, io.EOF) && n <= maxDrain
}

// sendContinue writes 100 Continue straight to the connection, unless the final
// answer has begun (then it reports false and the body is read without it, as
// net/http does; a client still waiting makes the connection close after the
// answer).
func (c *doorConn) sendContinue() (bool, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.answered || c.hijacked {
		return false, nil
	}
	if _, err := io.WriteString(c.rwc, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
		return false, err
	}
	return true, nil
}

// doorResponse is the http.ResponseWriter of one request.
type doorResponse struct {
	c          *doorConn
	req        *http.Request
	body       *doorBody // nil: the request has none
	headLen    int64     // what a HEAD handler wrote (dropped, but its length is sent)
	header     http.Header
	status     int  // 0: WriteHeader not called
	committed  bool // the status line and headers are in c.bw
	chunked    bool
	cl         int64 // declared Content-Length, -1: none
	written    int64
	closeAfter bool
	err        error // sticky write error
}

var hopExcluded = map[string]bool{"Connection": true, "Transfer-Encoding": true, "Keep-Alive": true}

// interimExcluded is what a 1xx answer does not carry of the handler's header.
var interimExcluded = map[string]bool{"Connection": true, "Transfer-Encoding": true, "Keep-Alive": true, "Content-Length": true}

func (w *doorResponse) Header() http.Header { return w.header }

func (w *doorResponse) WriteHeader(code int) {
	if w.c.hijacked || w.status != 0 {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An informational answer goes out now; the final one follows.
		w.c.wmu.Lock()
		defer w.c.wmu.Unlock()
		if w.err == nil && !w.c.answered && w.req.ProtoAtLeast(1, 1) {
			w.writeStatus(code)
			_ = w.header.WriteSubset(w.c.bw, interimExcluded)
			_, _ = w.c.bw.WriteString("\r\n")
			w.err = w.c.bw.Flush()
		}
		return
	}
	w.status = code
}

func (w *doorResponse) writeStatus(code int) {
	bw := w.c.bw
	_, _ = bw.WriteString("HTTP/1.1 ")
	var b [3]byte
	_, _ = bw.Write(strconv.AppendInt(b[:0], int64(code), 10))
	_ = bw.WriteByte(' ')
	if text := http.StatusText(code); text != "" {
		_, _ = bw.WriteString(text)
	} else {
		_, _ = bw.WriteString("status code " + strconv.Itoa(code))
	}
	_, _ = bw.WriteString("\r\n")
}

// bodyAllowed reports whether the status may carry a body (HEAD's is dropped).
func (w *doorResponse) bodyAllowed() bool {
	return w.status >= 200 && w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

func (w *doorResponse) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	if w.req.Method == http.MethodHead {
		w.headLen += int64(len(p))
		return len(p), nil
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.committed {
		// An answer of announced length needs no holding back: it goes out
		// framed by it, and writes past it fail.
		if _, ok := w.header["Content-Length"]; !ok && len(w.c.buf)+len(p) <= bufferBeforeCommit {
			w.c.buf = append(w.c.buf, p...)
			return len(p), nil
		}
		if err := w.commit(false); err != nil {
			return 0, err
		}
	}
	return w.writeBody(p)
}

func (w *doorResponse) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// commit writes the status line and headers, with the framing: the handler's
// Content-Length, or the length of the whole answer when the handler has
// returned (final), else chunks (on HTTP/1.0, the connection's end). Then what
// was held goes out.
func (w *doorResponse) commit(final bool) error {
	w.committed = true
	w.c.wmu.Lock()
	w.c.answered = true
	w.c.wmu.Unlock()
	h := w.header
	if v := h.Get("Connection"); v != "" && httpguts.HeaderValuesContainsToken(h["Connection"], "close") {
		w.closeAfter = true
	}
	framed := w.bodyAllowed() && w.req.Method != http.MethodHead
	if v := h.Get("Content-Length"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			h.Del("Content-Length")
		} else if framed {
			w.cl = n
		}
	}
	bw := w.c.bw
	w.writeStatus(w.status)
	if framed && w.cl < 0 {
		switch {
		case final && !strings.EqualFold(h.Get("Transfer-Encoding"), "chunked"):
			w.cl = int64(len(w.c.buf))
			h.Set("Content-Length", strconv.FormatInt(w.cl, 10))
		case w.req.ProtoAtLeast(1, 1):
			w.chunked = true
			_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
		default:
			w.closeAfter = true
		}
	}
	if w.status == http.StatusNotModified || w.status == http.StatusNoContent {
		h.Del("Content-Length")
	}
	if final && w.req.Method == http.MethodHead && w.headLen > 0 && w.bodyAllowed() && h.Get("Content-Length") == "" {
		h.Set("Content-Length", strconv.FormatInt(w.headLen, 10))
	}
	// The connection's end is said with the answer, not found by the client's
	// next request: a body that cannot be drained, a server that is closing.
	if !w.closeAfter && ((w.body != nil && !w.body.keepsConn(w.req.ContentLength)) || w.c.s.isClosed()) {
		w.closeAfter = true
	}
	_ = h.WriteSubset(bw, hopExcluded)
	if _, ok := h["Date"]; !ok {
		var b [len(http.TimeFormat)]byte
		_, _ = bw.WriteString("Date: ")
		_, _ = bw.Write(time.Now().UTC().AppendFormat(b[:0], http.TimeFormat))
		_, _ = bw.WriteString("\r\n")
	}
	if w.closeAfter {
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		w.err = err
		return err
	}
	if len(w.c.buf) > 0 {
		if _, err := w.writeBody(w.c.buf); err != nil {
			return err
		}
		w.c.buf = w.c.buf[:0]
	}
	return nil
}

// writeBody writes p framed as committed; more than a declared Content-Length
// is refused.
func (w *doorResponse) writeBody(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var short error
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		p, short = p[:w.cl-w.written], http.ErrContentLength
	}
	bw := w.c.bw
	if w.chunked {
		var b [20]byte
		_, _ = bw.Write(strconv.AppendInt(b[:0], int64(len(p)), 16))
		_, _ = bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if err == nil && w.chunked {
		_, err = bw.WriteString("\r\n")
	}
	w.written += int64(n)
	if err != nil {
		w.err = err
		return n, err
	}
	return n, short
}

// finish completes the answer when the handler returns.
func (w *doorResponse) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return
	}
	if !w.committed {
		if w.commit(true) != nil {
			return
		}
	}
	if w.chunked {
		_, _ = w.c.bw.WriteString("0\r\n\r\n")
	}
	if w.cl >= 0 && w.written < w.cl {
		// The handler wrote less than it announced: the client must not take a
		// short body for a whole one.
		w.closeAfter = true
	}
	if err := w.c.bw.Flush(); err != nil {
		w.err = err
	}
}

// FlushError sends what is held (http.ResponseController.Flush).
func (w *doorResponse) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	if !w.committed {
		if err := w.commit(false); err != nil {
			return err
		}
	}
	if err := w.c.bw.Flush(); err != nil {
		w.err = err
		return err
	}
	return nil
}

// Flush implements http.Flusher.
func (w *doorResponse) Flush() { _ = w.FlushError() }

// Hijack hands the connection to the handler (CONNECT, an allowed upgrade): the
// server forgets it; what the handler buffered before is sent first.
func (w *doorResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c.gone.stop()
	if w.status != 0 && !w.committed {
		if err := w.commit(false); err != nil {
			return nil, nil, err
		}
	}
	if w.committed {
		if err := c.bw.Flush(); err != nil {
			return nil, nil, err
		}
	}
	c.wmu.Lock()
	c.hijacked = true
	c.wmu.Unlock()
	c.s.forget(c)
	_ = c.rwc.SetDeadline(time.Time{})
	return c.rwc, bufio.NewReadWriter(c.br, c.bw), nil
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *doorResponse) SetReadDeadline(t time.Time) error { return w.c.rwc.SetReadDeadline(t) }

func (w *doorResponse) SetWriteDeadline(t time.Time) error {
	w.c.wdl = true
	return w.c.rwc.SetWriteDeadline(t)
}
