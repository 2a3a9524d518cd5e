package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/net/http2"
)

// ErrProtocol marks a supervisor that broke the protocol (garbage, an
// oversized frame, more output than the cap). It wraps errdefs.ErrUnavailable.
var ErrProtocol = fmt.Errorf("supervisor protocol violation: %w", errdefs.ErrUnavailable)

// ErrTooManyEntries marks a directory listing over the supervisor's entry cap:
// the listing is refused rather than answered in part.
var ErrTooManyEntries = fmt.Errorf("directory too large to list: %w", errdefs.ErrResourceExhausted)

// ErrNoSpace marks a write that ran out of space (or quota) in the sandbox.
var ErrNoSpace = errors.New("no space left")

// Listener is the server side of one sandbox's supervisor socket.
type Listener struct {
	// HelloTimeout bounds the first line; PingInterval and PingTimeout detect
	// a silent connection; CallTimeout bounds list and remove calls.
	HelloTimeout time.Duration
	PingInterval time.Duration
	PingTimeout  time.Duration
	CallTimeout  time.Duration

	ln        net.Listener
	tokenHash [32]byte
	closeOnce sync.Once
	mu        sync.Mutex // guards clients and tokenHash
	clients   map[*Client]struct{}
}

// SetToken replaces the token later connections must present: a pooled
// sandbox's at claim, after the new token file was written. Connections
// already accepted stay; a supervisor that reconnects presents the new one.
func (l *Listener) SetToken(token string) {
	h := sha256.Sum256([]byte(token))
	l.mu.Lock()
	l.tokenHash = h
	l.mu.Unlock()
}

// Listen creates the socket at path (replacing a stale one) and returns a
// Listener that accepts supervisors presenting token.
func Listen(path, token string) (*Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("supervisor socket %q: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("supervisor socket %q: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("supervisor socket %q: %w", path, err)
	}
	return &Listener{
		HelloTimeout: 5 * time.Second, PingInterval: 10 * time.Second,
		PingTimeout: 5 * time.Second, CallTimeout: 30 * time.Second,
		ln: ln, tokenHash: sha256.Sum256([]byte(token)), clients: map[*Client]struct{}{},
	}, nil
}

// Accept waits for the next supervisor connection that authenticates.
// Connections that fail the hello are closed and skipped.
func (l *Listener) Accept(ctx context.Context) (*Client, error) {
	// A cancelled earlier Accept left a past deadline behind.
	_ = l.ln.(*net.UnixListener).SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = l.ln.(*net.UnixListener).SetDeadline(time.Now()) })
	defer stop()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("supervisor accept: %w: %w", errdefs.ErrUnavailable, err)
		}
		c, err := l.handshake(conn)
		if err != nil {
			conn.Close()
			continue
		}
		return c, nil
	}
}

func (l *Listener) handshake(conn net.Conn) (*Client, error) {
	_ = conn.SetDeadline(time.Now().Add(l.HelloTimeout))
	line := make([]byte, 0, MaxHelloBytes)
	var b [1]byte
	for {
		if _, err := conn.Read(b[:]); err != nil {
			return nil, err
		}
		if b[0] == '\n' {
			break
		}
		if len(line) == MaxHelloBytes {
			return nil, errors.New("hello too long")
		}
		line = append(line, b[0])
	}
	tok, ok := cutPrefix(string(line), HelloPrefix)
	got := sha256.Sum256([]byte(tok))
	l.mu.Lock()
	want := l.tokenHash
	l.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return nil, errors.New("bad hello")
	}
	_ = conn.SetDeadline(time.Time{})
	t := &http2.Transport{
		MaxHeaderListSize:         16 << 10,
		MaxReadFrameSize:          16 << 10,
		MaxDecoderHeaderTableSize: 4 << 10,
		ReadIdleTimeout:           l.PingInterval,
		PingTimeout:               l.PingTimeout,
		WriteByteTimeout:          l.PingTimeout,
	}
	cc, err := t.NewClientConn(conn)
	if err != nil {
		return nil, err
	}
	c := &Client{cc: cc, conn: conn, callTimeout: l.CallTimeout, l: l}
	l.mu.Lock()
	l.clients[c] = struct{}{}
	l.mu.Unlock()
	return c, nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) < len(p) || s[:len(p)] != p {
		return "", false
	}
	return s[len(p):], true
}

// Close closes the socket and every client it accepted. Idempotent.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		err = l.ln.Close()
		l.mu.Lock()
		cs := l.clients
		l.clients = map[*Client]struct{}{}
		l.mu.Unlock()
		for c := range cs {
			c.Close()
		}
	})
	return err
}

// Client talks to one connected supervisor. Safe for concurrent use.
type Client struct {
	cc          *http2.ClientConn
	conn        net.Conn
	callTimeout time.Duration
	l           *Listener
	closeOnce   sync.Once
}

// Alive reports whether the connection can still carry calls: false once it
// closed, failed or went silent past its ping timeout.
func (c *Client) Alive() bool {
	st := c.cc.State()
	return !st.Closed && !st.Closing
}

// Close closes the connection. Idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.cc.Close()
		c.conn.Close()
		c.l.mu.Lock()
		delete(c.l.clients, c)
		c.l.mu.Unlock()
	})
	return nil
}

func unavailable(op string, err error) error {
	if errors.Is(err, errdefs.ErrUnavailable) {
		return fmt.Errorf("supervisor %s: %w", op, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("supervisor %s: %w", op, err)
	}
	return fmt.Errorf("supervisor %s: %w: %v", op, errdefs.ErrUnavailable, err)
}

func (c *Client) do(ctx context.Context, method, p string, q url.Values, body io.Reader) (*http.Response, error) {
	u := "http://supervisor" + p
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	return c.cc.RoundTrip(req)
}

// errorFrom maps a supervisor error answer to the error vocabulary. The
// message is untrusted: it is bounded and quoted, never interpreted.
func errorFrom(op string, code string, msg string) error {
	if len(msg) > 200 {
		msg = msg[:200]
	}
	var class error
	switch code {
	case codeNotFound:
		class = errdefs.ErrNotFound
	case codeInvalid:
		class = errdefs.ErrInvalidArgument
	case codePermission:
		class = errdefs.ErrPermissionDenied
	case codeTooLarge:
		class = errdefs.ErrResourceExhausted
	case codeNoSpace:
		class = ErrNoSpace
	default:
		class = errdefs.ErrUnknown
	}
	return fmt.Errorf("supervisor %s: %w (%q)", op, class, msg)
}

func responseError(op string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var we wireError
	if json.Unmarshal(b, &we) != nil {
		return fmt.Errorf("supervisor %s: %w: status %d", op, ErrProtocol, resp.StatusCode)
	}
	return errorFrom(op, we.Code, we.Message)
}

// StartMain gives a supervisor started in WaitMain mode its main command and
// returns once it started. A second call, or one to a supervisor that was
// given its command at start, fails with errdefs.ErrInvalidArgument.
func (c *Client) StartMain(ctx context.Context, req MainRequest) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("supervisor main: %w: %v", errdefs.ErrInvalidArgument, err)
	}
	if len(b) > MaxRequestBytes {
		return fmt.Errorf("supervisor main: %w: request of %d bytes", errdefs.ErrInvalidArgument, len(b))
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/main", nil, bytes.NewReader(b))
	if err != nil {
		return unavailable("main", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return responseError("main", resp)
	}
	return nil
}

// WaitMain waits for the main command's exit.
func (c *Client) WaitMain(ctx context.Context) (MainExit, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/main", nil, nil)
	if err != nil {
		return MainExit{}, unavailable("wait", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return MainExit{}, responseError("wait", resp)
	}
	var ex MainExit
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&ex); err != nil {
		return MainExit{}, fmt.Errorf("supervisor wait: %w: %v", ErrProtocol, err)
	}
	if ex.ExitCode < 0 || ex.ExitCode > 255 || ex.Signal < 0 || ex.Signal > 64 {
		return MainExit{}, fmt.Errorf("supervisor wait: %w: exit %d signal %d", ErrProtocol, ex.ExitCode, ex.Signal)
	}
	return ex, nil
}

// capReader fails once more than max bytes were read through it. The HTTP/2
// transport reads it from its own goroutine, which may still run when the
// answer came early (an error before the whole body was sent): the count is
// atomic, and once stopped it reads nothing more from r.
type capReader struct {
	r       io.Reader
	n       atomic.Int64
	max     int64
	stopped atomic.Bool
	// idle runs while the transport is not in a Read: it is stopped
	// while the caller's reader is read and restarted when that read returns,
	// so it measures how long the supervisor takes to come back for more (or,
	// after the last byte, to answer), never how slow the caller is.
	idle    *time.Timer
	idleFor time.Duration
}

var errTooLarge = fmt.Errorf("file too large: %w", errdefs.ErrResourceExhausted)

var errWriteDone = errors.New("the write has ended")

var errSupervisorSilent = errors.New("the supervisor took no more of the file and did not answer within the call timeout")

func (c *capReader) Read(p []byte) (int, error) {
	if c.stopped.Load() {
		return 0, errWriteDone
	}
	// The body ends (EOF, not an error) one byte past max: the supervisor,
	// told max, sees the excess, removes its temporary file and refuses the
	// write, and only then answers. An aborted stream would let the client
	// return while the supervisor is still cleaning up.
	left := c.max + 1 - c.n.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	c.idle.Stop()
	defer c.idle.Reset(c.idleFor)
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// WriteFile streams r to path in the sandbox with mode (0 means 0644),
// creating parent directories. More than max bytes is an error wrapping
// errdefs.ErrResourceExhausted, and the file is left untouched. A supervisor that
// takes no more of the body, or does not answer after it, for the call timeout
// (however slowly r itself delivers) ends the write as unavailable.
func (c *Client) WriteFile(ctx context.Context, path string, mode os.FileMode, r io.Reader, max int64) error {
	if err := ValidatePath(path); err != nil {
		return fmt.Errorf("supervisor write %q: %w: %v", path, errdefs.ErrInvalidArgument, err)
	}
	if mode == 0 {
		mode = 0o644
	}
	q := url.Values{"path": {path}, "mode": {strconv.FormatUint(uint64(mode.Perm()), 8)}, "max": {strconv.FormatInt(max, 10)}}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cr := &capReader{r: r, max: max, idleFor: c.callTimeout}
	cr.idle = time.AfterFunc(c.callTimeout, func() { cancel(errSupervisorSilent) })
	defer cr.idle.Stop()
	defer cr.stopped.Store(true)
	resp, err := c.do(ctx, http.MethodPut, "/v1/files", q, io.NopCloser(cr))
	if err != nil && errors.Is(context.Cause(ctx), errSupervisorSilent) {
		err = fmt.Errorf("%w (%v)", errSupervisorSilent, err)
	}
	if err == nil && cr.n.Load() > max {
		// The supervisor must have refused it: a write it accepted past
		// the cap is reported, not believed.
		resp.Body.Close()
		if resp.StatusCode == http.StatusNoContent {
			return fmt.Errorf("supervisor write %q: %w: the supervisor accepted more than %d bytes", path, errdefs.ErrUnavailable, max)
		}
		return fmt.Errorf("supervisor write %q: %w", path, errTooLarge)
	}
	if err != nil {
		return unavailable("write", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return responseError("write "+strconv.Quote(path), resp)
	}
	return nil
}

// ReadFile streams the file at path to w, at most max bytes; a longer file
// is an error wrapping errdefs.ErrResourceExhausted.
func (c *Client) ReadFile(ctx context.Context, path string, w io.Writer, max int64) (int64, error) {
	if err := ValidatePath(path); err != nil {
		return 0, fmt.Errorf("supervisor read %q: %w: %v", path, errdefs.ErrInvalidArgument, err)
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/files", url.Values{"path": {path}}, nil)
	if err != nil {
		return 0, unavailable("read", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, responseError("read "+strconv.Quote(path), resp)
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, max))
	if err != nil {
		return n, unavailable("read", err)
	}
	var one [1]byte
	if k, _ := resp.Body.Read(one[:]); k > 0 {
		return n, fmt.Errorf("supervisor read %q: %w", path, errTooLarge)
	}
	return n, nil
}

// FileInfo is what a file read answer says about the file. It comes from the
// supervisor: untrusted, checked only for shape.
type FileInfo struct {
	Size  int64
	Mode  uint32
	MTime int64
}

// OpenFile opens the file at path for reading: every error (not found,
// permission, a directory, a file of more than max bytes by its size) comes
// back here before any byte. The body fails once more than max bytes came
// through it, whatever the size said. The caller closes it.
func (c *Client) OpenFile(ctx context.Context, path string, max int64) (io.ReadCloser, FileInfo, error) {
	if err := ValidatePath(path); err != nil {
		return nil, FileInfo{}, fmt.Errorf("supervisor read %q: %w: %v", path, errdefs.ErrInvalidArgument, err)
	}
	// The answer's headers must come within the call timeout (a supervisor that
	// never answers must not hold the caller); the body then streams for as long
	// as the caller reads it.
	ctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(c.callTimeout, cancel)
	resp, err := c.do(ctx, http.MethodGet, "/v1/files", url.Values{"path": {path}}, nil)
	if !timer.Stop() {
		if err == nil {
			resp.Body.Close()
		}
		cancel()
		return nil, FileInfo{}, unavailable("read", fmt.Errorf("no answer within %v", c.callTimeout))
	}
	if err != nil {
		cancel()
		return nil, FileInfo{}, unavailable("read", err)
	}
	ok := false
	defer func() {
		if !ok {
			resp.Body.Close()
			cancel()
		}
	}()
	if resp.StatusCode != http.StatusOK {
		return nil, FileInfo{}, responseError("read "+strconv.Quote(path), resp)
	}
	size, err1 := strconv.ParseInt(resp.Header.Get(HeaderSize), 10, 64)
	mode, err2 := strconv.ParseUint(resp.Header.Get(HeaderMode), 8, 32)
	mtime, err3 := strconv.ParseInt(resp.Header.Get(HeaderMTime), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || size < 0 || mode > 0o7777 {
		return nil, FileInfo{}, fmt.Errorf("supervisor read: %w: bad file headers", ErrProtocol)
	}
	if size > max {
		return nil, FileInfo{}, fmt.Errorf("supervisor read %q: %w", path, errTooLarge)
	}
	ok = true
	return &cappedBody{rc: resp.Body, max: max, cancel: cancel}, FileInfo{Size: size, Mode: uint32(mode), MTime: mtime}, nil
}

// cappedBody fails once more than max bytes were read through it.
type cappedBody struct {
	rc     io.ReadCloser
	n      int64
	max    int64
	cancel context.CancelFunc // ends the call; nil: none
}

func (b *cappedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.n > b.max {
		return n - int(b.n-b.max), errTooLarge // never a byte past the cap
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return n, unavailable("read", err)
	}
	return n, err
}

func (b *cappedBody) Close() error {
	err := b.rc.Close()
	if b.cancel != nil {
		b.cancel()
	}
	return err
}

// ListFiles lists the directory at path.
func (c *Client) ListFiles(ctx context.Context, path string) ([]FileEntry, error) {
	if err := ValidatePath(path); err != nil {
		return nil, fmt.Errorf("supervisor list %q: %w: %v", path, errdefs.ErrInvalidArgument, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, "/v1/files", url.Values{"path": {path}, "list": {"true"}}, nil)
	if err != nil {
		return nil, unavailable("list", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, responseError("list "+strconv.Quote(path), resp)
	}
	entries, truncated, err := decodeListing(io.LimitReader(resp.Body, maxListBytes))
	if err != nil {
		return nil, fmt.Errorf("supervisor list: %w: %v", ErrProtocol, err)
	}
	if truncated {
		return nil, fmt.Errorf("supervisor list %q: %w: more than %d entries", path, ErrTooManyEntries, maxListEntries)
	}
	return entries, nil
}

// maxListBytes bounds a listing's JSON: maxListEntries names of 255 bytes, each
// written as six-byte escapes (control bytes, invalid UTF-8, <, >, &), and their
// other fields, which an honest supervisor can send.
const maxListBytes = maxListEntries*(255*6+256) + 4096

// decodeListing reads a listing ({"entries": [...], "truncated": bool}) one entry
// at a time, checking each, and fails at the first entry past maxListEntries: the
// memory a hostile supervisor can make it hold is bounded by the entries kept,
// not by what it sends (4 MiB of "{}," decoded whole was a million entries).
func decodeListing(r io.Reader) ([]FileEntry, bool, error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return nil, false, err
	}
	var entries []FileEntry
	truncated := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false, err
		}
		key, _ := tok.(string)
		switch key {
		case "entries":
			if err := expectDelim(dec, '['); err != nil {
				return nil, false, err
			}
			entries = []FileEntry{}
			for dec.More() {
				if len(entries) == maxListEntries {
					return nil, false, fmt.Errorf("more than %d entries", maxListEntries)
				}
				var e FileEntry
				if err := dec.Decode(&e); err != nil {
					return nil, false, err
				}
				if !validName(e.Name) || e.Size < 0 || e.Mode > 0o7777 || (e.IsDir && (e.IsSymlink || e.IsOther)) {
					return nil, false, fmt.Errorf("bad entry %q", e.Name)
				}
				entries = append(entries, e)
			}
			if err := expectDelim(dec, ']'); err != nil {
				return nil, false, err
			}
		case "truncated":
			if err := dec.Decode(&truncated); err != nil {
				return nil, false, err
			}
		default:
			var skip json.RawMessage // a field of a later supervisor
			if err := dec.Decode(&skip); err != nil {
				return nil, false, err
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, false, err
	}
	return entries, truncated, nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("want %q, got %v", d, tok)
	}
	return nil
}

// RemoveFile removes path (a file or an empty directory; with recursive, a tree).
func (c *Client) RemoveFile(ctx context.Context, path string, recursive bool) error {
	if err := ValidatePath(path); err != nil {
		return fmt.Errorf("supervisor remove %q: %w: %v", path, errdefs.ErrInvalidArgument, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	q := url.Values{"path": {path}}
	if recursive {
		q.Set("recursive", "true")
	}
	resp, err := c.do(ctx, http.MethodDelete, "/v1/files", q, nil)
	if err != nil {
		return unavailable("remove", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return responseError("remove "+strconv.Quote(path), resp)
	}
	return nil
}

// Process is one running exec.
type Process struct {
	mu     sync.Mutex // guards pw writes and closed
	pw     *io.PipeWriter
	closed bool
	resp   *http.Response
	cancel context.CancelFunc
	stdout io.Writer
	stderr io.Writer
	max    int64
	start  time.Time
	done   chan struct{}
	ready  chan struct{} // closed once the request and req.Stdin are queued
	res    ExecResult
	err    error
}

// ExecSlack is how long past its own timeout an exec may take before the
// client gives up on the supervisor.
const ExecSlack = 5 * time.Second

// Start starts req; output goes to stdout and stderr (with a TTY, all of it
// to stdout). req.Stdin is sent first; stdin stays open until CloseStdin.
func (c *Client) Start(ctx context.Context, req ExecRequest, stdout, stderr io.Writer) (*Process, error) {
	if err := validateExec(&req); err != nil {
		return nil, fmt.Errorf("supervisor exec: %w: %v", errdefs.ErrInvalidArgument, err)
	}
	if req.MaxOutputBytes == 0 {
		req.MaxOutputBytes = DefaultMaxOutput
	}
	var cancel context.CancelFunc
	if req.TimeoutMS > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMS)*time.Millisecond+ExecSlack)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	b, err := json.Marshal(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if len(b) > MaxRequestBytes {
		cancel()
		return nil, fmt.Errorf("supervisor exec: %w: the request is %d bytes encoded, at most %d", errdefs.ErrInvalidArgument, len(b), MaxRequestBytes)
	}
	pr, pw := io.Pipe()
	p := &Process{pw: pw, cancel: cancel, stdout: stdout, stderr: stderr, max: req.MaxOutputBytes, start: time.Now()}
	p.ready = make(chan struct{})
	go func() {
		// Frames are written into the pipe as the transport reads it.
		defer close(p.ready)
		if err := WriteFrame(pw, FrameRequest, b); err != nil {
			return
		}
		if len(req.Stdin) > 0 {
			_ = p.writeLocked(req.Stdin)
		}
	}()
	resp, err := c.do(ctx, http.MethodPost, "/v1/exec", nil, pr)
	if err != nil {
		pw.CloseWithError(err)
		cancel()
		return nil, unavailable("exec", err)
	}
	if resp.StatusCode != http.StatusOK {
		err := responseError("exec", resp)
		resp.Body.Close()
		pw.Close()
		cancel()
		return nil, err
	}
	p.resp = resp
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		p.res, p.err = p.pump()
	}()
	return p, nil
}

func (p *Process) write(b []byte) error {
	<-p.ready
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writeLocked(b)
}

func (p *Process) writeLocked(b []byte) error {
	if p.closed {
		return errors.New("stdin closed")
	}
	for len(b) > 0 {
		n := min(len(b), MaxFramePayload)
		if err := WriteFrame(p.pw, FrameStdin, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// Write sends bytes to the process's stdin.
func (p *Process) Write(b []byte) (int, error) {
	if err := p.write(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// CloseStdin sends end of input (^D with a TTY).
func (p *Process) CloseStdin() error {
	<-p.ready
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	return WriteFrame(p.pw, FrameStdinEOF, nil)
}

// Resize changes the TTY's window size.
func (p *Process) Resize(rows, cols uint16) error {
	<-p.ready
	p.mu.Lock()
	defer p.mu.Unlock()
	return WriteFrame(p.pw, FrameResize, []byte{byte(rows >> 8), byte(rows), byte(cols >> 8), byte(cols)})
}

// Wait waits for the exit frame and returns the result. Output is copied to
// the writers as it arrives, from Start on. The duration is measured here,
// and output beyond the cap is a protocol error.
func (p *Process) Wait() (ExecResult, error) {
	<-p.done
	return p.res, p.err
}

func (p *Process) pump() (ExecResult, error) {
	defer p.cancel()
	defer p.resp.Body.Close()
	defer p.pw.Close()
	br := bufio.NewReaderSize(p.resp.Body, 4<<10)
	buf := make([]byte, MaxFramePayload)
	var nout, nerr int64
	for {
		typ, b, err := ReadFrame(br, buf)
		if err != nil {
			if errors.Is(err, ErrFrame) {
				return ExecResult{}, fmt.Errorf("supervisor exec: %w: %v", ErrProtocol, err)
			}
			if errors.Is(err, io.EOF) {
				return ExecResult{}, fmt.Errorf("supervisor exec: %w: stream ended without an exit", errdefs.ErrUnavailable)
			}
			return ExecResult{}, unavailable("exec", err)
		}
		switch typ {
		case FrameStdout, FrameStderr:
			n, w := &nout, p.stdout
			if typ == FrameStderr {
				n, w = &nerr, p.stderr
			}
			*n += int64(len(b))
			if *n > p.max {
				return ExecResult{}, fmt.Errorf("supervisor exec: %w: output beyond the cap", ErrProtocol)
			}
			if w != nil {
				if _, err := w.Write(b); err != nil {
					return ExecResult{}, fmt.Errorf("supervisor exec: writing output: %w", err)
				}
			}
		case FrameExit:
			var res ExecResult
			if err := json.Unmarshal(b, &res); err != nil {
				return ExecResult{}, fmt.Errorf("supervisor exec: %w: %v", ErrProtocol, err)
			}
			if res.ExitCode < 0 || res.ExitCode > 255 || res.Signal < 0 || res.Signal > 64 {
				return ExecResult{}, fmt.Errorf("supervisor exec: %w: exit %d signal %d", ErrProtocol, res.ExitCode, res.Signal)
			}
			res.DurationMS = time.Since(p.start).Milliseconds()
			return res, nil
		case FrameError:
			var we wireError
			if err := json.Unmarshal(b, &we); err != nil {
				return ExecResult{}, fmt.Errorf("supervisor exec: %w: %v", ErrProtocol, err)
			}
			return ExecResult{}, errorFrom("exec", we.Code, we.Message)
		default:
			return ExecResult{}, fmt.Errorf("supervisor exec: %w: frame type %d", ErrProtocol, typ)
		}
	}
}

// Exec runs req to completion: req.Stdin is sent and closed.
func (c *Client) Exec(ctx context.Context, req ExecRequest, stdout, stderr io.Writer) (ExecResult, error) {
	p, err := c.Start(ctx, req, stdout, stderr)
	if err != nil {
		return ExecResult{}, err
	}
	go func() { _ = p.CloseStdin() }()
	return p.Wait()
}
