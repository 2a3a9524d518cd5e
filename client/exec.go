package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/clawbox/clawbox/api"
)

func execPath(id string) string { return "/containers/" + url.PathEscape(id) + "/exec" }

func filesRoute(id string) string { return "/containers/" + url.PathEscape(id) + "/files" }

func filesPath(id string, v url.Values) string { return withQuery(filesRoute(id), v) }

// Exec runs req.Cmd in the running sandbox id and returns its whole output once it
// has ended (POST /containers/{id}/exec?stream=false). Output that is not valid
// UTF-8 is in StdoutBase64 / StderrBase64. The call lasts as long as the command
// (bounded by req.TimeoutMS, the server's exec timeout and ctx), not
// Options.Timeout. A command that exits non-zero is not an error: read ExitCode.
func (c *Client) Exec(ctx context.Context, id string, req api.ExecRequest) (api.ExecResult, error) {
	return c.execAt(ctx, execPath(id), req)
}

// execAt is Exec on an exec route (a sandbox's or an agent's).
func (c *Client) execAt(ctx context.Context, route string, req api.ExecRequest) (api.ExecResult, error) {
	var out api.ExecResult
	b, err := json.Marshal(req)
	if err != nil {
		return out, err
	}
	resp, err := c.sendRaw(ctx, c.streaming(), http.MethodPost, route+"?stream=false", "application/json", bytes.NewReader(b))
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("decode exec result: %w", err)
	}
	return out, nil
}

// ErrNoExit is returned by ExecStream when the stream ended without its final
// frame (the connection broke).
var ErrNoExit = errors.New("the exec stream ended before the command's exit was reported")

// ExecStream runs req.Cmd in the running sandbox id and copies its output to stdout
// and stderr (nil discards) as it comes, then returns how it ended. An error the
// server reports after the output began (the supervisor was lost, say) comes back
// as *api.Error; a stream that breaks gives ErrNoExit. Cancelling ctx ends the
// command.
func (c *Client) ExecStream(ctx context.Context, id string, req api.ExecRequest, stdout, stderr io.Writer) (api.ExecExit, error) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	b, err := json.Marshal(req)
	if err != nil {
		return api.ExecExit{}, err
	}
	resp, err := c.sendRaw(ctx, c.streaming(), http.MethodPost, execPath(id), "application/json", bytes.NewReader(b))
	if err != nil {
		return api.ExecExit{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var f api.ExecFrame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return api.ExecExit{}, fmt.Errorf("decode exec frame: %w", err)
		}
		switch {
		case f.Error != nil:
			return api.ExecExit{}, f.Error
		case f.ExecExit != nil:
			return *f.ExecExit, nil
		}
		data := []byte(f.Data)
		if f.DataBase64 != "" {
			if data, err = base64.StdEncoding.DecodeString(f.DataBase64); err != nil {
				return api.ExecExit{}, fmt.Errorf("decode exec frame: %w", err)
			}
		}
		w := stdout
		if f.Stream == api.StreamStderr {
			w = stderr
		}
		if _, err := w.Write(data); err != nil {
			return api.ExecExit{}, err
		}
	}
	if ctx.Err() != nil {
		return api.ExecExit{}, ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return api.ExecExit{}, fmt.Errorf("%w: %v", ErrNoExit, err)
	}
	return api.ExecExit{}, ErrNoExit
}

// ExecSession is an interactive command (ExecInteractive): write its stdin, resize
// its terminal, and Wait for its exit. Its output goes to the writers given to
// ExecInteractive. Safe for concurrent use.
type ExecSession struct {
	c      *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the read loop has ended
	exit   api.ExecExit
	err    error
}

// ExecInteractive starts req.Cmd in the running sandbox id over the interactive
// exec WebSocket (GET /containers/{id}/exec/ws) with stdin kept open. Set req.TTY
// (and Rows, Cols) for a terminal. Output is copied to stdout and stderr (nil
// discards; with a TTY everything is stdout) by the session's own goroutine until
// the command ends; the session ends when ctx does. Always call Close.
func (c *Client) ExecInteractive(ctx context.Context, id string, req api.ExecRequest, stdout, stderr io.Writer) (*ExecSession, error) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	u := *c.base
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path += execPath(id) + "/ws"
	hdr := http.Header{}
	if c.token != "" {
		hdr.Set("Authorization", "Bearer "+c.token)
	}
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: hdr})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, decodeError(resp)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &UnreachableError{URL: c.base.String(), Err: err}
	}
	conn.SetReadLimit(2 << 20)
	b, err := json.Marshal(req)
	if err != nil {
		conn.CloseNow()
		return nil, err
	}
	if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("send exec request: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &ExecSession{c: conn, ctx: sctx, cancel: cancel, done: make(chan struct{})}
	go s.readLoop(stdout, stderr)
	return s, nil
}

func (s *ExecSession) readLoop(stdout, stderr io.Writer) {
	defer close(s.done)
	defer s.c.CloseNow()
	for {
		typ, b, err := s.c.Read(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil {
				s.err = s.ctx.Err()
			} else {
				s.err = fmt.Errorf("%w: %v", ErrNoExit, err)
			}
			return
		}
		if typ == websocket.MessageText {
			var f api.ExecFrame
			switch {
			case json.Unmarshal(b, &f) != nil:
				s.err = fmt.Errorf("decode exec frame %q", b)
			case f.Error != nil:
				s.err = f.Error
			case f.ExecExit != nil:
				s.exit = *f.ExecExit
			default:
				s.err = fmt.Errorf("%w: final frame without exit", ErrNoExit)
			}
			s.c.Close(websocket.StatusNormalClosure, "")
			return
		}
		if len(b) == 0 {
			continue
		}
		w := stdout
		if b[0] == 2 {
			w = stderr
		}
		if _, err := w.Write(b[1:]); err != nil {
			s.err = err
			return
		}
	}
}

// Write sends p to the command's stdin.
func (s *ExecSession) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		chunk := p[:min(len(p), 32<<10)]
		if err := s.c.Write(s.ctx, websocket.MessageBinary, chunk); err != nil {
			return n - len(p), err
		}
		p = p[len(chunk):]
	}
	return n, nil
}

func (s *ExecSession) control(ctl any) error {
	b, err := json.Marshal(ctl)
	if err != nil {
		return err
	}
	return s.c.Write(s.ctx, websocket.MessageText, b)
}

// CloseStdin closes the command's stdin (it sees end of file).
func (s *ExecSession) CloseStdin() error {
	return s.control(map[string]string{"type": "close_stdin"})
}

// Resize sets the size of the command's terminal (TTY sessions).
func (s *ExecSession) Resize(rows, cols uint16) error {
	return s.control(struct {
		Type string `json:"type"`
		Rows uint16 `json:"rows"`
		Cols uint16 `json:"cols"`
	}{"resize", rows, cols})
}

// Wait returns how the command ended once all its output has been written.
func (s *ExecSession) Wait() (api.ExecExit, error) {
	<-s.done
	return s.exit, s.err
}

// Done is closed when the session has ended.
func (s *ExecSession) Done() <-chan struct{} { return s.done }

// Close ends the session (and the command, if it still runs) and waits for its
// goroutine. Idempotent.
func (s *ExecSession) Close() error {
	s.cancel()
	s.c.CloseNow()
	<-s.done
	return nil
}

// WriteFile streams r to path inside the running sandbox id as the sandbox user
// (PUT /containers/{id}/files), creating parent directories and replacing an
// existing file; mode 0 means 0644. The size is capped by the server's
// containers.max_file_bytes (413 request_too_large).
func (c *Client) WriteFile(ctx context.Context, id, path string, r io.Reader, mode uint32) (api.FileWritten, error) {
	return c.writeFileAt(ctx, filesRoute(id), path, r, mode)
}

// writeFileAt is WriteFile on a files route (a sandbox's or an agent's).
func (c *Client) writeFileAt(ctx context.Context, route, path string, r io.Reader, mode uint32) (api.FileWritten, error) {
	var out api.FileWritten
	v := url.Values{"path": {path}}
	if mode != 0 {
		v.Set("mode", fmt.Sprintf("%04o", mode))
	}
	if r == nil {
		r = http.NoBody
	}
	resp, err := c.sendRaw(ctx, c.streaming(), http.MethodPut, withQuery(route, v), "application/octet-stream", r)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("decode write file response: %w", err)
	}
	return out, nil
}

// ReadFile copies the file at path inside the running sandbox id to w and returns
// the number of bytes copied. A transfer cut short is an error, never a short file.
func (c *Client) ReadFile(ctx context.Context, id, path string, w io.Writer) (int64, error) {
	return c.readFileAt(ctx, filesRoute(id), path, w)
}

// readFileAt is ReadFile on a files route (a sandbox's or an agent's).
func (c *Client) readFileAt(ctx context.Context, route, path string, w io.Writer) (int64, error) {
	resp, err := c.sendRaw(ctx, c.streaming(), http.MethodGet, withQuery(route, url.Values{"path": {path}}), "", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("read %s: %w", path, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("read %s: got %d of %d bytes", path, n, resp.ContentLength)
	}
	return n, nil
}

// ListFiles lists the directory at path inside the running sandbox id.
func (c *Client) ListFiles(ctx context.Context, id, path string) (api.FileList, error) {
	var out api.FileList
	err := c.do(ctx, http.MethodGet, filesPath(id, url.Values{"path": {path}, "list": {"true"}}), nil, &out)
	return out, err
}

// RemoveFile removes the file at path inside the running sandbox id; a directory
// needs recursive unless it is empty.
func (c *Client) RemoveFile(ctx context.Context, id, path string, recursive bool) error {
	v := url.Values{"path": {path}}
	if recursive {
		v.Set("recursive", "true")
	}
	return c.do(ctx, http.MethodDelete, filesPath(id, v), nil, nil)
}

// KillWithWorkspace stops a container sandbox like Kill and then deletes its kept
// workspace (DELETE /containers/{id}?workspace=true).
func (c *Client) KillWithWorkspace(ctx context.Context, id string) (*api.KillResponse, error) {
	var out api.KillResponse
	if err := c.do(ctx, http.MethodDelete, "/containers/"+url.PathEscape(id)+"?workspace=true", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
