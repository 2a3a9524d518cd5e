package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/clawbox/clawbox/api"
)

// ExecSession is one command running in a sandbox, as the exec routes use it. The
// daemon adapts the sandbox service's session to it.
type ExecSession interface {
	// Write writes to the command's stdin (only with ExecOptions.KeepStdin).
	Write(p []byte) (int, error)
	// CloseStdin closes the command's stdin.
	CloseStdin() error
	// Resize sets the size of the command's terminal (TTY only; an error otherwise).
	Resize(rows, cols uint16) error
	// Wait returns how the command ended, once all its output has been written.
	Wait() (api.ExecExit, error)
	// Close ends the command if it still runs and releases everything. Idempotent.
	Close() error
}

// ExecOptions tune how an exec is started.
type ExecOptions struct {
	// KeepStdin leaves stdin open after req.Stdin, for ExecSession.Write.
	KeepStdin bool
}

const (
	// frameWriteTimeout bounds one write of a streamed frame: a client that stops
	// reading ends its exec instead of holding it (and the sandbox's output) forever.
	frameWriteTimeout = 30 * time.Second
	// maxFrameData is the largest output chunk carried by one frame or message.
	maxFrameData = 32 << 10
	// maxResultBytes bounds what ?stream=false buffers per stream, on top of the
	// service's own output cap.
	maxResultBytes = 16 << 20
)

var errTooManyExecs = api.Errorf(api.CodeBusy, "too many exec sessions are open on this server; retry later")

// acquireExec takes a token of Config.MaxExecs, or answers 503 busy at once.
func (s *Server) acquireExec() (release func(), err error) {
	select {
	case s.execs <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-s.execs }) }, nil
	default:
		return nil, errTooManyExecs
	}
}

// execContext is the context of one exec: it ends with parent or when the server
// begins to shut down. Call cancel when done.
func (s *Server) execContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// boolQuery reads an optional boolean query parameter (default def).
func boolQuery(r *http.Request, name string, def bool) (bool, error) {
	switch v := r.URL.Query().Get(name); v {
	case "":
		return def, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	default:
		return false, fieldError(name, "%s must be true or false, not %q", name, v)
	}
}

// registerExec adds the exec, interactive exec and file routes.
func (s *Server) registerExec(svc Sandboxes) {
	s.Handle(Route{Method: http.MethodPost, Pattern: "/containers/{id}/exec", Handler: func(w http.ResponseWriter, r *http.Request) error {
		stream, err := boolQuery(r, "stream", true)
		if err != nil {
			return err
		}
		var req api.ExecRequest
		if err := DecodeJSON(r, &req); err != nil {
			return err
		}
		if len(req.Cmd) == 0 {
			return fieldError("cmd", `cmd is required: the program and its arguments, such as {"cmd": ["sh", "-c", "echo hi"]}`)
		}
		release, err := s.acquireExec()
		if err != nil {
			w.Header().Set("Retry-After", "1")
			return err
		}
		defer release()
		if stream {
			return s.execStream(w, r, svc, req)
		}
		return s.execResult(w, r, svc, req)
	}, Doc: Doc{
		Summary: "Run a command in a running sandbox",
		Describe: "The sandbox's supervisor runs cmd as the sandbox user. By default the answer streams " +
			"newline-delimited ExecFrame JSON (application/x-ndjson, one frame per output chunk, flushed as it comes): " +
			"{\"stream\": \"stdout\"|\"stderr\", \"data\": \"...\"} (\"data_base64\" instead when the chunk is not valid UTF-8), " +
			"ending with one frame carrying exit_code, timed_out, ended_by (exit, exec_timeout, sandbox_deadline, sandbox_ended, " +
			"supervisor_lost), truncated and duration_ms; or, when the exec failed after the stream began, a final frame " +
			"with error. Errors before the stream begins are ordinary JSON errors: 404 unknown sandbox, 409 not running, " +
			"400 bad cmd, env, workdir or timeout_ms (details.field), 503 supervisor unavailable or too many execs. " +
			"With stream=false the answer is one ExecResult. Output is capped per stream and redacted of known secrets. " +
			"Closing the connection ends the command. Execs do not take a slot of the execution limiter " +
			"(server.max_concurrent_executions bounds WASM /execute); the server bounds open exec sessions on its own.",
		Tags:    []string{"containers"},
		Request: api.ExecRequest{},
		Query:   []Param{{Name: "stream", Type: "boolean", Describe: "stream NDJSON frames (default true); false answers one ExecResult"}},
		Responses: []Response{
			{Status: 200, Body: api.ExecFrame{}, ContentType: "application/x-ndjson", Describe: "NDJSON ExecFrames (default)"},
			{Status: 200, Body: api.ExecResult{}, Describe: "with stream=false"},
		},
	}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/containers/{id}/exec/ws", Handler: func(w http.ResponseWriter, r *http.Request) error {
		return s.execWebSocket(w, r, svc)
	}, Doc: Doc{
		Summary:  "Interactive exec over a WebSocket (stdin, TTY, resize)",
		Describe: wsProtocolDoc,
		Tags:     []string{"containers"},
		Responses: []Response{
			{Status: 101, Describe: "Switching Protocols: the WebSocket protocol described above"},
		},
	}})
	s.registerFiles(svc)
}

// wsProtocolDoc is the protocol of GET /containers/{id}/exec/ws (also in README).
const wsProtocolDoc = "A WebSocket (RFC 6455; the bearer token in the Authorization header of the upgrade request, " +
	"and the Host and Origin checks of every route). The client's first message is a text message with the ExecRequest " +
	"JSON (tty, rows and cols for a terminal). Then client → server: binary messages are stdin bytes; text messages are " +
	"JSON controls {\"type\": \"resize\", \"rows\": R, \"cols\": C} and {\"type\": \"close_stdin\"}. Server → client: binary " +
	"messages whose first byte is the stream (1 stdout, 2 stderr; with tty everything is 1) followed by the output bytes, " +
	"and one final text message, the ExecFrame with exit_code, timed_out, ended_by, truncated and duration_ms, or with " +
	"error (the same codes as POST /containers/{id}/exec); then the server closes with status 1000. Messages are at most " +
	"1 MiB; the first must arrive within 10 s; the server pings every 30 s and ends the exec when the client stops " +
	"answering or goes away. The sandbox is checked before the upgrade: 404 and 409 come as ordinary JSON errors."

// frameStream writes ExecFrames as NDJSON. The status line is written with the
// first frame, so an exec that fails to start still gets an ordinary JSON error.
type frameStream struct {
	mu      sync.Mutex // guards everything below
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	err     error
}

func (f *frameStream) startLocked() error {
	if f.started {
		return f.err
	}
	f.started = true
	h := f.w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	f.w.WriteHeader(http.StatusOK)
	return nil
}

// start commits the stream (200 and headers) and flushes them.
func (f *frameStream) start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.startLocked(); err != nil {
		return err
	}
	f.err = f.rc.Flush()
	return f.err
}

func (f *frameStream) frame(fr api.ExecFrame) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.startLocked(); err != nil {
		return err
	}
	b, err := json.Marshal(fr)
	if err != nil {
		return err
	}
	f.rc.SetWriteDeadline(time.Now().Add(frameWriteTimeout))
	if _, err := f.w.Write(append(b, '\n')); err != nil {
		f.err = err
		return err
	}
	f.err = f.rc.Flush()
	return f.err
}

// utf8Chunker splits output into chunks of at most maxFrameData, holding back the
// bytes of a UTF-8 sequence cut at the end of a write until the next one, so that
// text split across writes still travels as "data" rather than base64.
type utf8Chunker struct {
	pending []byte
	emit    func(chunk []byte) error
}

func (c *utf8Chunker) Write(p []byte) (int, error) {
	n := len(p)
	buf := append(c.pending, p...)
	c.pending = nil
	keep := incompleteTail(buf)
	if keep > 0 {
		c.pending = append([]byte(nil), buf[len(buf)-keep:]...)
		buf = buf[:len(buf)-keep]
	}
	for len(buf) > 0 {
		chunk := buf
		if len(chunk) > maxFrameData {
			chunk = chunk[:maxFrameData]
			// Do not cut a rune in two when the chunk is text.
			if cut := incompleteTail(chunk); cut > 0 && cut < len(chunk) {
				chunk = chunk[:len(chunk)-cut]
			}
		}
		if err := c.emit(chunk); err != nil {
			return 0, err
		}
		buf = buf[len(chunk):]
	}
	return n, nil
}

// flush emits what was held back.
func (c *utf8Chunker) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	p := c.pending
	c.pending = nil
	return c.emit(p)
}

// incompleteTail returns how many bytes at the end of b are the start of a UTF-8
// sequence that is not complete yet (0 when b ends on a boundary or is not text).
func incompleteTail(b []byte) int {
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return 0 // ASCII: complete
		}
		if c >= 0xC0 { // a leading byte: how long should its sequence be?
			need := 2
			switch {
			case c >= 0xF0:
				need = 4
			case c >= 0xE0:
				need = 3
			}
			if need > i {
				return i
			}
			return 0
		}
	}
	return 0
}

// encodeChunk puts output into a frame: data when it is valid UTF-8, else base64.
func encodeChunk(stream string, b []byte) api.ExecFrame {
	if utf8.Valid(b) {
		return api.ExecFrame{Stream: stream, Data: string(b)}
	}
	return api.ExecFrame{Stream: stream, DataBase64: base64.StdEncoding.EncodeToString(b)}
}

// publicError is what a client may see of err: an *api.Error as it is, anything
// else a generic internal error whose details go to the log.
func (s *Server) publicError(r *http.Request, what string, err error) *api.Error {
	if e, ok := api.AsError(err); ok {
		return e
	}
	s.log.Error(what, "request_id", RequestID(r.Context()), "path", r.URL.Path, "err", err)
	return &api.Error{Code: api.CodeInternal, Message: "internal error (request id " + RequestID(r.Context()) + "); details are in the server log"}
}

func (s *Server) execStream(w http.ResponseWriter, r *http.Request, svc Sandboxes, req api.ExecRequest) error {
	ctx, cancel := s.execContext(r.Context())
	defer cancel()
	fs := &frameStream{w: w, rc: http.NewResponseController(w)}
	// The per-frame write deadline must not outlive this response: the next
	// request on a kept-alive connection would inherit it.
	defer fs.rc.SetWriteDeadline(time.Time{})
	out := &utf8Chunker{emit: func(b []byte) error { return fs.frame(encodeChunk(api.StreamStdout, b)) }}
	errw := &utf8Chunker{emit: func(b []byte) error { return fs.frame(encodeChunk(api.StreamStderr, b)) }}
	sess, err := svc.Exec(ctx, r.PathValue("id"), req, ExecOptions{}, out, errw)
	if err != nil {
		fs.mu.Lock()
		started := fs.started
		fs.mu.Unlock()
		if !started {
			return err
		}
		fs.frame(api.ExecFrame{Error: s.publicError(r, "exec", err)})
		return nil
	}
	defer sess.Close()
	// The client going away (or the server stopping) ends the command.
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	if err := fs.start(); err != nil {
		sess.Close()
	}
	exit, err := sess.Wait()
	// Wait returns after the last output write: the held-back bytes go out now.
	out.flush()
	errw.flush()
	if ctx.Err() != nil {
		return nil // nobody is reading
	}
	if err != nil {
		fs.frame(api.ExecFrame{Error: s.publicError(r, "exec", err)})
		return nil
	}
	fs.frame(api.ExecFrame{ExecExit: &exit})
	return nil
}

// cappedBuffer keeps the first max bytes written to it and reports whether more came.
type cappedBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room < len(p) {
		c.over = true
		if room > 0 {
			c.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return c.buf.Write(p)
}

func (s *Server) execResult(w http.ResponseWriter, r *http.Request, svc Sandboxes, req api.ExecRequest) error {
	ctx, cancel := s.execContext(r.Context())
	defer cancel()
	var mu sync.Mutex // the session writes from one goroutine; the lock makes that not matter
	stdout := &cappedBuffer{max: maxResultBytes}
	stderr := &cappedBuffer{max: maxResultBytes}
	sess, err := svc.Exec(ctx, r.PathValue("id"), req, ExecOptions{}, lockedWriter{&mu, stdout}, lockedWriter{&mu, stderr})
	if err != nil {
		return err
	}
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	exit, err := sess.Wait()
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	res := api.ExecResult{ExecExit: exit}
	res.Truncated = res.Truncated || stdout.over || stderr.over
	res.Stdout, res.StdoutBase64 = textOrBase64(stdout.buf.Bytes())
	res.Stderr, res.StderrBase64 = textOrBase64(stderr.buf.Bytes())
	writeJSON(w, http.StatusOK, res)
	return nil
}

// textOrBase64 returns b as text when it is valid UTF-8, else as base64.
func textOrBase64(b []byte) (text, b64 string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return "", base64.StdEncoding.EncodeToString(b)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// parseMode reads the mode query parameter: an octal string of permission bits,
// 0 to 0777 ("" is 0, the service's default 0644).
func parseMode(v string) (uint32, error) {
	if v == "" {
		return 0, nil
	}
	var m uint32
	if len(v) > 4 {
		return 0, fieldError("mode", "mode must be octal permission bits from 0 to 0777, such as 0644; got %q", v)
	}
	for _, c := range v {
		if c < '0' || c > '7' {
			return 0, fieldError("mode", "mode must be octal permission bits from 0 to 0777, such as 0644; got %q", v)
		}
		m = m*8 + uint32(c-'0')
	}
	if m > 0o777 {
		return 0, fieldError("mode", "mode must be octal permission bits from 0 to 0777 (no setuid, setgid or sticky bits); got %q", v)
	}
	return m, nil
}

// filePath reads the required path query parameter.
func filePath(r *http.Request) (string, error) {
	q := r.URL.Query()
	if len(q["path"]) > 1 {
		return "", fieldError("path", "give path once")
	}
	p := q.Get("path")
	if p == "" {
		return "", fieldError("path", "path is required: an absolute path inside the sandbox, such as ?path=/workspace/main.py")
	}
	return p, nil
}

func (s *Server) registerFiles(svc Sandboxes) {
	pathParam := Param{Name: "path", Describe: "absolute path inside the sandbox (required)"}
	s.Handle(Route{Method: http.MethodPut, Pattern: "/containers/{id}/files", RawBody: true, Handler: func(w http.ResponseWriter, r *http.Request) error {
		p, err := filePath(r)
		if err != nil {
			return err
		}
		mode, err := parseMode(r.URL.Query().Get("mode"))
		if err != nil {
			return err
		}
		body := r.Body
		if body == nil {
			body = http.NoBody
		}
		res, err := svc.WriteFile(r.Context(), r.PathValue("id"), p, mode, body)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	}, Doc: Doc{
		Summary: "Write a file in a running sandbox",
		Describe: "The raw request body (any content type, application/octet-stream is usual) is streamed to path as the " +
			"sandbox user, creating parent directories and replacing an existing file. The size is capped by " +
			"containers.max_file_bytes (413 request_too_large), not by the JSON body limit; 507 quota_exceeded when the " +
			"workspace is full, 403 permission_denied where the sandbox user may not write, 400 for a bad path or mode.",
		Tags:       []string{"containers"},
		RawRequest: "application/octet-stream",
		Query: []Param{pathParam,
			{Name: "mode", Describe: "permission bits in octal, 0 to 0777 (default 0644)"}},
		Responses: []Response{{Status: 200, Body: api.FileWritten{}}},
	}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/containers/{id}/files", Handler: func(w http.ResponseWriter, r *http.Request) error {
		p, err := filePath(r)
		if err != nil {
			return err
		}
		list, err := boolQuery(r, "list", false)
		if err != nil {
			return err
		}
		id := r.PathValue("id")
		if list {
			fl, err := svc.ListFiles(r.Context(), id, p)
			if err != nil {
				return err
			}
			if fl.Entries == nil {
				fl.Entries = []api.FileEntry{}
			}
			writeJSON(w, http.StatusOK, fl)
			return nil
		}
		rc, entry, err := svc.ReadFile(r.Context(), id, p)
		if err != nil {
			return err
		}
		defer rc.Close()
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Disposition", "attachment")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Clawbox-File-Mode", fmt.Sprintf("%04o", entry.Mode&0o7777))
		if !entry.MTime.IsZero() {
			h.Set("Last-Modified", entry.MTime.UTC().Format(http.TimeFormat))
		}
		// A size of 0 is not believed: the files of /proc and /sys say 0 and hold
		// text. Such an answer streams to its end (within the service's cap)
		// without a Content-Length.
		known := entry.Size > 0 && !entry.IsDir
		if known {
			h.Set("Content-Length", fmt.Sprint(entry.Size))
		}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return nil
		}
		var n int64
		if known {
			n, err = io.CopyN(w, rc, entry.Size)
		} else {
			n, err = io.Copy(w, rc)
		}
		if err != nil {
			// The status is sent: break the connection so the client cannot take a
			// short body for the whole file.
			s.log.Warn("read file: stream cut", "request_id", RequestID(r.Context()), "sandbox", id, "bytes", n, "err", err)
			panic(http.ErrAbortHandler)
		}
		return nil
	}, Doc: Doc{
		Summary: "Read a file of a running sandbox, or list a directory",
		Describe: "Streams the file's raw bytes (application/octet-stream, Content-Length when known, its permission bits " +
			"in X-Clawbox-File-Mode) as the sandbox user reads it. With list=true the answer is the FileList of the " +
			"directory at path. 404 not_found for a missing path, 403 permission_denied, 400 for a bad path.",
		Tags: []string{"containers"},
		Query: []Param{pathParam,
			{Name: "list", Type: "boolean", Describe: "list the directory at path instead of reading a file"}},
		Responses: []Response{
			{Status: 200, ContentType: "application/octet-stream", Describe: "the file's bytes"},
			{Status: 200, Body: api.FileList{}, Describe: "with list=true"},
		},
	}})
	s.Handle(Route{Method: http.MethodDelete, Pattern: "/containers/{id}/files", Handler: func(w http.ResponseWriter, r *http.Request) error {
		p, err := filePath(r)
		if err != nil {
			return err
		}
		recursive, err := boolQuery(r, "recursive", false)
		if err != nil {
			return err
		}
		if err := svc.RemoveFile(r.Context(), r.PathValue("id"), p, recursive); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}, Doc: Doc{
		Summary:  "Remove a file or directory in a running sandbox",
		Describe: "A directory needs recursive=true unless it is empty. 404 not_found for a missing path, 403 permission_denied.",
		Tags:     []string{"containers"},
		Query: []Param{pathParam,
			{Name: "recursive", Type: "boolean", Describe: "remove a directory with everything in it"}},
		Responses: []Response{{Status: 204, Describe: "removed"}},
	}})
}
