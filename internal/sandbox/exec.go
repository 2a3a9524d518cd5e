package sandbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/supervisor"
)

// Exec bounds.
const (
	maxExecArgs     = 4096
	maxExecArgBytes = 256 << 10 // all of cmd together
	maxExecStdin    = 16 << 20  // stdin given in the request (more: use KeepStdin)
	// idleFlush is how long an interactive session's output may sit in the
	// redactor's line buffer before it is passed on without its newline (a
	// prompt). Batch execs never flush early.
	idleFlush = 25 * time.Millisecond
	// lostWait bounds how long a broken exec stream waits for the sandbox to be
	// seen ending before the exec is reported ended by a lost supervisor.
	lostWait = 5 * time.Second
)

// ExecOptions tune one exec.
type ExecOptions struct {
	// KeepStdin leaves stdin open after req.Stdin for Exec.Write (interactive
	// use); otherwise stdin is closed once req.Stdin is sent.
	KeepStdin bool
}

// checkExec validates an exec request against the server's bounds and the
// spawn's env policy and returns the supervisor's request and the timeout.
func (m *Manager) checkExec(req *api.ExecRequest) (supervisor.ExecRequest, time.Duration, error) {
	var out supervisor.ExecRequest
	if len(req.Cmd) == 0 || req.Cmd[0] == "" {
		return out, 0, invalid("cmd", "cmd must name a program")
	}
	if len(req.Cmd) > maxExecArgs {
		return out, 0, invalid("cmd", "cmd has %d arguments, at most %d are allowed", len(req.Cmd), maxExecArgs)
	}
	n := 0
	for _, a := range req.Cmd {
		n += len(a)
		if strings.IndexByte(a, 0) >= 0 {
			return out, 0, invalid("cmd", "cmd contains a NUL byte")
		}
	}
	if n > maxExecArgBytes {
		return out, 0, invalid("cmd", "cmd is longer than %d bytes", maxExecArgBytes)
	}
	if err := CheckEnv(req.Env); err != nil {
		return out, 0, err
	}
	if req.Workdir != "" {
		if err := supervisor.ValidatePath(req.Workdir); err != nil {
			return out, 0, invalid("workdir", "workdir %q: %v", req.Workdir, err)
		}
	}
	timeout := m.cfg.ExecTimeout
	switch {
	case req.TimeoutMS < 0:
		return out, 0, invalid("timeout_ms", "timeout_ms must not be negative")
	case req.TimeoutMS > m.cfg.MaxExecTimeout.Milliseconds():
		return out, 0, invalid("timeout_ms", "timeout_ms %d is above containers.max_exec_timeout_ms (%d)", req.TimeoutMS, m.cfg.MaxExecTimeout.Milliseconds())
	case req.TimeoutMS > 0:
		timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	var stdin []byte
	switch {
	case req.Stdin != "" && req.StdinBase64 != "":
		return out, 0, invalid("stdin", "give stdin or stdin_base64, not both")
	case req.StdinBase64 != "":
		b, err := base64.StdEncoding.DecodeString(req.StdinBase64)
		if err != nil {
			return out, 0, invalid("stdin", "stdin_base64 is not valid base64")
		}
		stdin = b
	default:
		stdin = []byte(req.Stdin)
	}
	if len(stdin) > maxExecStdin {
		return out, 0, invalid("stdin", "stdin is larger than %d bytes: stream it instead", maxExecStdin)
	}
	out = supervisor.ExecRequest{Cmd: req.Cmd, Env: req.Env, Workdir: req.Workdir, TTY: req.TTY, Rows: req.Rows, Cols: req.Cols,
		// The supervisor sends up to redactMargin past the cap, so that a secret
		// straddling the cap is whole when it is redacted; the session cuts the
		// redacted output at the cap itself.
		MaxOutputBytes: m.cfg.MaxExecOutputBytes + redactMargin, Stdin: stdin}
	return out, timeout, nil
}

// target returns the running sandbox id and its connected supervisor: 404 for
// an unknown id, 409 when it is not running, 503 when its supervisor is not
// there.
func (m *Manager) target(ctx context.Context, id string) (*live, *supervisor.Client, error) {
	l, err := m.running(ctx, id, "")
	if err != nil {
		return nil, nil, err
	}
	if err := l.checkNotPaused(); err != nil {
		return nil, nil, err
	}
	l.touch(m.clock.Now())
	link := l.res.supervisorLink()
	if link == nil {
		return nil, nil, api.Errorf(api.CodeUnavailable, "sandbox %q has no supervisor link (it was started by an older clawbox, or its socket could not be reopened)", id)
	}
	c, err := link.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	return l, c, nil
}

// Exec is one command running in a sandbox: see Service.Exec.
type Exec struct {
	proc      *supervisor.Process
	tty       bool
	keepStdin bool
	cancel    context.CancelFunc // ends the command (the request's context)
	done      chan struct{}      // closed when the session has written everything and knows the end
	exit      api.ExecExit
	err       error
	closeOnce sync.Once
}

// Write sends p to the command's stdin (only with KeepStdin).
func (e *Exec) Write(p []byte) (int, error) {
	if !e.keepStdin {
		return 0, api.Errorf(api.CodeConflict, "stdin of this exec is closed")
	}
	n, err := e.proc.Write(p)
	if err != nil {
		return n, api.Errorf(api.CodeConflict, "stdin of this exec is closed")
	}
	return n, nil
}

// CloseStdin ends the command's input (^D on a TTY). Idempotent.
func (e *Exec) CloseStdin() error { return e.proc.CloseStdin() }

// Resize changes the TTY's window size; without a TTY it is an error.
func (e *Exec) Resize(rows, cols uint16) error {
	if !e.tty {
		return invalid("tty", "the exec has no TTY to resize")
	}
	if rows == 0 || cols == 0 {
		return invalid("rows", "rows and cols must be positive")
	}
	return e.proc.Resize(rows, cols)
}

// Wait returns how the command ended, after all its output was written.
// ExitCode is -1 when the end is not the command's own (sandbox_ended,
// supervisor_lost). The error is set only when the output could not be
// written (the caller's writer failed) or the exec was closed.
func (e *Exec) Wait() (api.ExecExit, error) {
	<-e.done
	return e.exit, e.err
}

// Close ends the command if it still runs and waits for the session to end.
// Idempotent; safe after Wait.
func (e *Exec) Close() error {
	e.closeOnce.Do(func() {
		e.cancel()
		<-e.done
	})
	return nil
}

// chunk is output on its way from the supervisor client to the session.
type chunk struct {
	stderr bool
	b      []byte
}

// chanWriter hands output to the session goroutine; it blocks (backpressure up
// to the supervisor) until the session takes it.
type chanWriter struct {
	ch     chan<- chunk
	stderr bool
	stop   <-chan struct{}
}

var errSessionEnded = errors.New("exec session ended")

func (w chanWriter) Write(p []byte) (int, error) {
	select {
	case w.ch <- chunk{stderr: w.stderr, b: bytes.Clone(p)}:
		return len(p), nil
	case <-w.stop:
		return 0, errSessionEnded
	}
}

// startExec starts req in sandbox id; see Service.Exec.
func (m *Manager) startExec(ctx context.Context, id string, req api.ExecRequest, opts ExecOptions, redact func([]byte) []byte, stdout, stderr io.Writer) (*Exec, error) {
	sreq, timeout, err := m.checkExec(&req)
	if err != nil {
		return nil, err
	}
	l, c, err := m.target(ctx, id)
	if err != nil {
		return nil, err
	}
	select {
	case l.execs <- struct{}{}:
	default:
		return nil, api.Errorf(api.CodeResourceExhausted, "sandbox %q already runs %d execs (containers.max_execs)", id, m.cfg.MaxExecs)
	}
	release := func() { <-l.execs; l.touch(m.clock.Now()) }
	// The sandbox's deadline bounds the exec too: whichever comes first ends it,
	// and the exit says which.
	deadlineFirst := false
	if rem := l.snapshot().Deadline.Sub(m.clock.Now()); rem < timeout {
		timeout, deadlineFirst = max(rem, time.Millisecond), true
	}
	sreq.TimeoutMS = max(timeout.Milliseconds(), 1)
	ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel) // the caller's context ends the command too
	ch := make(chan chunk)
	sessionDone := make(chan struct{})
	proc, err := c.Start(ectx, sreq, chanWriter{ch: ch, stop: sessionDone}, chanWriter{ch: ch, stderr: true, stop: sessionDone})
	if err != nil {
		stop()
		cancel()
		release()
		return nil, supervisorError(id, "exec", err)
	}
	e := &Exec{proc: proc, tty: req.TTY, keepStdin: opts.KeepStdin, cancel: func() { stop(); cancel() }, done: make(chan struct{})}
	var stdinWG sync.WaitGroup
	if !opts.KeepStdin {
		// CloseStdin waits until req.Stdin is queued; it returns when the stream ends at the latest.
		stdinWG.Go(func() { _ = proc.CloseStdin() })
	}
	began := m.clock.Now()
	go func() {
		defer close(e.done)
		defer release()
		defer stdinWG.Wait()
		defer e.cancel()
		res, werr := m.session(proc, ch, sessionDone, req.TTY || opts.KeepStdin, redact, stdout, stderr)
		e.exit, e.err = m.endOf(l, res, werr, deadlineFirst, ectx)
		m.auditExec(id, req.Cmd, e.exit, m.clock.Now().Sub(began), e.err, redact)
	}()
	return e, nil
}

type procResult struct {
	res supervisor.ExecResult
	err error
}

// session is the one goroutine that writes the command's output: it takes the
// chunks the client reads, redacts them a line at a time (passing a partial
// line on after idleFlush of quiet when interactive), and returns the
// supervisor's result once everything is written. werr is set when a writer
// failed; the command is then ended.
func (m *Manager) session(proc *supervisor.Process, ch <-chan chunk, sessionDone chan struct{}, interactive bool, redact func([]byte) []byte, stdout, stderr io.Writer) (procResult, error) {
	outCap := &capWriter{w: stdout, left: m.cfg.MaxExecOutputBytes}
	errCap := &capWriter{w: stderr, left: m.cfg.MaxExecOutputBytes}
	out := &lineRedactor{w: outCap, redact: redact}
	errw := &lineRedactor{w: errCap, redact: redact}
	resCh := make(chan procResult, 1)
	go func() {
		res, err := proc.Wait()
		resCh <- procResult{res, err}
	}()
	var werr error
	var idle *time.Timer
	var idleC <-chan time.Time
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	for {
		select {
		case c := <-ch:
			w := out
			if c.stderr {
				w = errw
			}
			if werr == nil {
				if _, err := w.Write(c.b); err != nil {
					werr = err
					close(sessionDone) // the client sees a failed write and ends the exec
				}
			}
			if interactive && werr == nil {
				if idle == nil {
					idle = time.NewTimer(idleFlush)
				} else {
					idle.Reset(idleFlush)
				}
				idleC = idle.C
			}
		case <-idleC:
			idleC = nil
			out.Flush()
			errw.Flush()
		case r := <-resCh:
			// Wait returns after the client's last write returned: nothing is
			// left in ch.
			if werr == nil {
				out.Flush()
				errw.Flush()
				close(sessionDone)
			}
			if outCap.dropped || errCap.dropped {
				r.res.Truncated = true
			}
			return r, werr
		}
	}
}

// endOf turns the supervisor's result into the exec's exit, checking what the
// server can check itself: a broken stream is the sandbox ending when the
// sandbox is seen ending, else a lost supervisor.
func (m *Manager) endOf(l *live, r procResult, werr error, deadlineFirst bool, ectx context.Context) (api.ExecExit, error) {
	if werr != nil {
		return api.ExecExit{ExitCode: -1, EndedBy: api.ExecEndedSupervisorLost}, fmt.Errorf("exec output: %w", werr)
	}
	if r.err == nil {
		ex := api.ExecExit{ExitCode: r.res.ExitCode, Signal: r.res.Signal, TimedOut: r.res.TimedOut, Truncated: r.res.Truncated,
			DurationMS: r.res.DurationMS, EndedBy: api.ExecEndedExit}
		if r.res.TimedOut {
			ex.EndedBy = api.ExecEndedTimeout
			if deadlineFirst {
				ex.EndedBy = api.ExecEndedDeadline
			}
		}
		return ex, nil
	}
	if ectx.Err() != nil {
		return api.ExecExit{ExitCode: -1, EndedBy: api.ExecEndedExit}, api.Errorf(api.CodeConflict, "the exec was closed before it ended")
	}
	if !errors.Is(r.err, errdefs.ErrUnavailable) {
		// The supervisor answered: the command could not start (no such program
		// or directory, not executable), as a shell would report it.
		code := 126
		if errors.Is(r.err, errdefs.ErrNotFound) {
			code = 127
		}
		return api.ExecExit{ExitCode: code, EndedBy: api.ExecEndedExit}, supervisorError(l.id, "exec", r.err)
	}
	ex := api.ExecExit{ExitCode: -1, EndedBy: api.ExecEndedSupervisorLost}
	if l.isFinishing() {
		<-l.done // bounded by the teardown's own timeout
	} else {
		t := time.NewTimer(lostWait)
		defer t.Stop()
		select {
		case <-l.done:
		case <-t.C:
			m.log.Warn("sandbox: exec stream broke while the sandbox runs", "sandbox", l.id, "err", r.err)
			return ex, nil
		}
	}
	ex.EndedBy = api.ExecEndedSandbox
	if l.snapshot().Status == StatusTimedOut {
		ex.EndedBy, ex.TimedOut = api.ExecEndedDeadline, true
	}
	return ex, nil
}

func (l *live) isFinishing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.finishing
}

// maxAuditCmd bounds the command line kept in an audit record.
const maxAuditCmd = 1024

// auditExec records one exec: its command (redacted, bounded), exit code,
// duration and how it ended. Env values are never recorded.
func (m *Manager) auditExec(id string, cmd []string, ex api.ExecExit, d time.Duration, err error, redact func([]byte) []byte) {
	if m.audit == nil {
		return
	}
	var sb strings.Builder
	for i, a := range cmd {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(strconv.Quote(a))
	}
	line := string(redact([]byte(sb.String())))
	if len(line) > maxAuditCmd {
		line = line[:maxAuditCmd] + "…"
	}
	code := ex.ExitCode
	r := audit.Record{Time: m.clock.Now().UTC(), Kind: audit.KindLifecycle, ContainerID: id, Event: "exec",
		Reason: "cmd " + line + "; ended_by " + ex.EndedBy, ExitCode: &code, LatencyMS: d.Milliseconds()}
	if err != nil {
		r.Error = "exec did not finish: output could not be delivered or the exec was closed"
	}
	m.audit.Record(r)
}

// supervisorError maps an error of the supervisor client to the API's codes.
// Messages from the supervisor are untrusted: they are not passed on.
func supervisorError(id, op string, err error) error {
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, errdefs.ErrUnavailable):
		return api.Errorf(api.CodeUnavailable, "sandbox %q: its supervisor did not answer the %s (it may have been killed by the workload)", id, op)
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return invalid("cmd", "sandbox %q: the supervisor refused the %s request", id, op)
	case errors.Is(err, errdefs.ErrNotFound):
		return api.Errorf(api.CodeNotFound, "sandbox %q: the program or directory was not found", id)
	case errors.Is(err, errdefs.ErrPermissionDenied):
		return api.Errorf(api.CodePermissionDenied, "sandbox %q: the sandbox user may not run this", id)
	}
	return api.Errorf(api.CodeUnavailable, "sandbox %q: the %s failed in the supervisor", id, op)
}

// capWriter passes on at most left bytes of redacted output and drops the rest,
// noting that it did (the command keeps running).
type capWriter struct {
	w       io.Writer
	left    int64
	dropped bool
}

func (c *capWriter) Write(p []byte) (int, error) {
	n := len(p)
	if int64(len(p)) > c.left {
		p, c.dropped = p[:c.left], true
	}
	if len(p) > 0 {
		if _, err := c.w.Write(p); err != nil {
			return 0, err
		}
		c.left -= int64(len(p))
	}
	return n, nil
}
