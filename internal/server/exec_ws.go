package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/clawbox/clawbox/api"
)

// The interactive exec protocol (wsProtocolDoc says it for clients).
const (
	// WSStdout and WSStderr are the first byte of a server → client binary message.
	WSStdout = 1
	WSStderr = 2

	wsMaxMessage   = 1 << 20
	wsFirstTimeout = 10 * time.Second
	wsPingEvery    = 30 * time.Second
	wsPingTimeout  = 15 * time.Second
	wsWriteTimeout = 30 * time.Second
	// wsStdinQueue is how many stdin messages (each at most wsMaxMessage) wait
	// for a command that is slow to read them.
	wsStdinQueue = 8
)

// WSControl is a client → server text message of the interactive exec protocol.
type WSControl struct {
	// Type is "resize" or "close_stdin".
	Type string `json:"type"`
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
}

// wsOutput writes one stream's output as binary messages prefixed by its id.
type wsOutput struct {
	ctx context.Context
	c   *websocket.Conn
	id  byte
}

func (o wsOutput) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		chunk := p
		if len(chunk) > maxFrameData {
			chunk = chunk[:maxFrameData]
		}
		msg := make([]byte, 1+len(chunk))
		msg[0] = o.id
		copy(msg[1:], chunk)
		ctx, cancel := context.WithTimeout(o.ctx, wsWriteTimeout)
		err := o.c.Write(ctx, websocket.MessageBinary, msg)
		cancel()
		if err != nil {
			return 0, err
		}
		p = p[len(chunk):]
	}
	return n, nil
}

func (s *Server) execWebSocket(w http.ResponseWriter, r *http.Request, svc Sandboxes) error {
	if !headerHasToken(r.Header, "Upgrade", "websocket") || !headerHasToken(r.Header, "Connection", "upgrade") {
		w.Header().Set("Upgrade", "websocket")
		return api.Errorf(api.CodeInvalidRequest, "this route is a WebSocket: send an upgrade request (Connection: Upgrade, Upgrade: websocket); POST /containers/{id}/exec runs a command without one")
	}
	id := r.PathValue("id")
	// Unknown and stopped sandboxes are refused before the upgrade, as plain errors.
	info, err := svc.Get(r.Context(), id)
	if err != nil {
		return err
	}
	if info.Status != api.ContainerStatusRunning {
		return api.Errorf(api.CodeConflict, "sandbox %s is %s, not running: exec needs a running sandbox", id, info.Status)
	}
	release, err := s.acquireExec()
	if err != nil {
		w.Header().Set("Retry-After", "1")
		return err
	}
	defer release()
	// The browser guard already checked Origin (the server's own origin or
	// server.allowed_origins) before routing, more strictly than Accept would.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return nil // Accept wrote the answer
	}
	defer c.CloseNow()
	c.SetReadLimit(wsMaxMessage)
	// After the upgrade the request's context no longer follows the connection: the
	// exec's context ends when the server stops or the exec is over.
	ctx, cancel := s.execContext(context.WithoutCancel(r.Context()))
	defer cancel()

	finish := func(fr api.ExecFrame) {
		b, _ := json.Marshal(fr)
		wctx, wcancel := context.WithTimeout(ctx, wsWriteTimeout)
		c.Write(wctx, websocket.MessageText, b)
		wcancel()
		c.Close(websocket.StatusNormalClosure, "")
	}
	fail := func(err error) { finish(api.ExecFrame{Error: s.publicError(r, "interactive exec", err)}) }

	req, err := readExecRequest(ctx, c)
	if err != nil {
		fail(err)
		return nil
	}
	if len(req.Cmd) == 0 {
		fail(fieldError("cmd", `cmd is required: the program and its arguments, such as {"cmd": ["sh"]}`))
		return nil
	}
	sess, err := svc.Exec(ctx, id, req, ExecOptions{KeepStdin: true}, wsOutput{ctx, c, WSStdout}, wsOutput{ctx, c, WSStderr})
	if err != nil {
		fail(err)
		return nil
	}
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()

	var wg sync.WaitGroup
	defer wg.Wait()
	loops, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	// Stdin goes through a queue to its own writer, so that a command that does
	// not read its stdin blocks only that writer: the read loop keeps reading, and
	// with it the client's pongs, resizes and close. After wsStdinQueue queued
	// messages the read loop waits too (back-pressure on the client).
	stdin := make(chan []byte, wsStdinQueue)
	wg.Go(func() {
		// A Write blocked on a command that never reads ends when the session is
		// closed: when the loops stop (the command is over, or the server stops).
		stopW := context.AfterFunc(loops, func() { sess.Close() })
		defer stopW()
		for {
			select {
			case <-loops.Done():
				return
			case b := <-stdin:
				if b == nil {
					if err := sess.CloseStdin(); err != nil {
						s.log.Debug("interactive exec: close stdin", "err", err)
					}
					continue
				}
				if _, err := sess.Write(b); err != nil {
					// stdin may be closed while output still comes: not fatal.
					s.log.Debug("interactive exec: stdin write", "err", err)
				}
			}
		}
	})
	wg.Go(func() {
		// The client going away, or breaking the protocol, ends the command.
		s.wsReadLoop(loops, c, sess, stdin)
		if loops.Err() == nil {
			sess.Close()
		}
	})
	wg.Go(func() {
		t := time.NewTicker(wsPingEvery)
		defer t.Stop()
		for {
			select {
			case <-loops.Done():
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(loops, wsPingTimeout)
			err := c.Ping(pctx)
			pcancel()
			if err != nil && loops.Err() == nil {
				sess.Close()
				c.CloseNow()
				return
			}
		}
	})
	exit, err := sess.Wait()
	if err != nil {
		fail(err)
	} else {
		finish(api.ExecFrame{ExecExit: &exit})
	}
	stopLoops()
	c.CloseNow() // ends a read loop still waiting for the client
	return nil
}

// readExecRequest reads the first message: the ExecRequest as JSON text.
func readExecRequest(ctx context.Context, c *websocket.Conn) (api.ExecRequest, error) {
	var req api.ExecRequest
	rctx, cancel := context.WithTimeout(ctx, wsFirstTimeout)
	defer cancel()
	typ, b, err := c.Read(rctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return req, api.Errorf(api.CodeInvalidRequest, "no ExecRequest within %s of the upgrade", wsFirstTimeout)
		}
		return req, api.Errorf(api.CodeInvalidRequest, "cannot read the ExecRequest message")
	}
	if typ != websocket.MessageText {
		return req, api.Errorf(api.CodeInvalidRequest, "the first message must be a text message with the ExecRequest JSON")
	}
	if err := decodeStrict(b, &req); err != nil {
		return req, err
	}
	return req, nil
}

// wsReadLoop reads the client's stdin and controls until the connection ends or
// the client breaks the protocol; it returns why.
func (s *Server) wsReadLoop(ctx context.Context, c *websocket.Conn, sess ExecSession, stdin chan<- []byte) error {
	queue := func(b []byte) error {
		select {
		case stdin <- b:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return err
		}
		switch typ {
		case websocket.MessageBinary:
			if len(b) == 0 {
				continue
			}
			if err := queue(b); err != nil {
				return err
			}
		case websocket.MessageText:
			var ctl WSControl
			if err := decodeStrict(b, &ctl); err != nil {
				c.Close(websocket.StatusPolicyViolation, "bad control message")
				return err
			}
			switch ctl.Type {
			case "resize":
				if ctl.Rows == 0 || ctl.Cols == 0 {
					c.Close(websocket.StatusPolicyViolation, "resize needs rows and cols")
					return errors.New("bad resize")
				}
				if err := sess.Resize(ctl.Rows, ctl.Cols); err != nil {
					s.log.Debug("interactive exec: resize", "err", err)
				}
			case "close_stdin":
				// In order after the stdin queued before it.
				if err := queue(nil); err != nil {
					return err
				}
			default:
				c.Close(websocket.StatusPolicyViolation, "unknown control type")
				return errors.New("unknown control")
			}
		}
	}
}

// headerHasToken reports whether a comma-separated header carries token (any case).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
