package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/net/http2"
	"golang.org/x/sys/unix"
)

// Supervisor is the in-sandbox side. Run it once.
type Supervisor struct {
	Socket string   // path of the server's listening socket
	Token  string   // per-sandbox token presented on connect
	Main   []string // main command; empty means idle until a signal
	// Env is the environment of the main command and the base of every exec.
	Env []string
	// MaxFileBytes caps a file write; 0 means 1 GiB.
	MaxFileBytes int64
	// ExitGrace bounds how long after the main command ends the supervisor
	// waits for running execs and for the server to collect the exit.
	ExitGrace time.Duration
	Logf      func(format string, args ...any)

	mu      sync.Mutex // guards the fields below and serializes start with reap
	waiters map[int]chan syscall.WaitStatus
	execs   int
	exit    *MainExit
	exitCh  chan struct{}
	told    chan struct{}
	toldOne sync.Once
}

func (s *Supervisor) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// Run runs the main command and serves the server until the main command
// has ended (plus ExitGrace) or ctx is done. It returns the exit code the
// supervisor should exit with.
func (s *Supervisor) Run(ctx context.Context) int {
	s.waiters = map[int]chan syscall.WaitStatus{}
	s.exitCh = make(chan struct{})
	s.told = make(chan struct{})
	if s.ExitGrace == 0 {
		s.ExitGrace = 2 * time.Second
	}
	if s.MaxFileBytes == 0 {
		s.MaxFileBytes = 1 << 30
	}
	// Outside a PID namespace we still adopt orphans so we can reap them.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	defer signal.Stop(chld)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-chld:
				s.reap()
			}
		}
	})

	fwd := make(chan os.Signal, 8)
	signal.Notify(fwd, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(fwd)

	mainPid := 0
	var mainDone chan syscall.WaitStatus
	if len(s.Main) > 0 {
		cmd, err := s.command(s.Main, s.Env, "")
		if err == nil {
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			mainDone, err = s.start(cmd)
		}
		if err != nil {
			s.logf("clawbox-supervisor: main command: %v", err)
			s.setExit(MainExit{ExitCode: 127})
		} else {
			mainPid = cmd.Process.Pid
			_ = cmd.Process.Release()
		}
	}

	wg.Go(func() { s.dialLoop(ctx) })

	var code int
	for done := false; !done; {
		select {
		case sig := <-fwd:
			if mainPid == 0 {
				if s.exitSnapshot() == nil {
					s.setExit(MainExit{ExitCode: 0})
				}
				continue
			}
			_ = syscall.Kill(-mainPid, sig.(syscall.Signal))
		case ws := <-mainDone:
			s.setExit(exitOf(ws))
			mainDone = nil
		case <-s.exitCh:
			done = true
		case <-ctx.Done():
			return 1
		}
	}
	ex := s.exitSnapshot()
	code = ex.ExitCode
	grace := time.NewTimer(s.ExitGrace)
	defer grace.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		busy := s.execs
		s.mu.Unlock()
		select {
		case <-s.told:
			if busy == 0 {
				return code
			}
		default:
		}
		select {
		case <-grace.C:
			return code
		case <-tick.C:
		case <-ctx.Done():
			return code
		}
	}
}

func exitOf(ws syscall.WaitStatus) MainExit {
	if ws.Signaled() {
		return MainExit{ExitCode: 128 + int(ws.Signal()), Signal: int(ws.Signal())}
	}
	return MainExit{ExitCode: ws.ExitStatus()}
}

func (s *Supervisor) setExit(e MainExit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exit != nil {
		return
	}
	s.exit = &e
	close(s.exitCh)
}

func (s *Supervisor) exitSnapshot() *MainExit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exit
}

// start starts cmd with the reaper locked out, so its exit status cannot be
// reaped before the waiter is registered. Never call cmd.Wait.
func (s *Supervisor) start(cmd *exec.Cmd) (chan syscall.WaitStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan syscall.WaitStatus, 1)
	s.waiters[cmd.Process.Pid] = ch
	return ch, nil
}

// reap collects every exited child; registered ones get their status, the
// rest (orphans we adopted) are reaped silently.
func (s *Supervisor) reap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		if ch, ok := s.waiters[pid]; ok {
			delete(s.waiters, pid)
			ch <- ws
		}
	}
}

// command builds a command with argv looked up in env's PATH.
func (s *Supervisor) command(argv []string, env []string, dir string) (*exec.Cmd, error) {
	name := argv[0]
	if !strings.Contains(name, "/") {
		p := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				p = v
			}
		}
		found := ""
		for _, d := range filepath.SplitList(p) {
			if d == "" {
				continue
			}
			c := filepath.Join(d, name)
			if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				found = c
				break
			}
		}
		if found == "" {
			return nil, &os.PathError{Op: "exec", Path: name, Err: fs.ErrNotExist}
		}
		name = found
	}
	cmd := &exec.Cmd{Path: name, Args: argv, Env: env, Dir: dir}
	return cmd, nil
}

func (s *Supervisor) dialLoop(ctx context.Context) {
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", s.Socket)
		if err == nil {
			backoff = 10 * time.Millisecond
			s.serveConn(ctx, conn)
			continue
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, time.Second)
	}
}

func (s *Supervisor) serveConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	if _, err := io.WriteString(conn, HelloPrefix+s.Token+"\n"); err != nil {
		return
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	srv := &http2.Server{MaxConcurrentStreams: 256, MaxReadFrameSize: 1 << 16}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/exec", s.handleExec)
	mux.HandleFunc("GET /v1/main", s.handleMain)
	mux.HandleFunc("PUT /v1/files", s.handleWrite)
	mux.HandleFunc("GET /v1/files", s.handleRead)
	mux.HandleFunc("DELETE /v1/files", s.handleRemove)
	srv.ServeConn(conn, &http2.ServeConnOpts{Context: ctx, Handler: mux})
}

func (s *Supervisor) handleMain(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.exitCh:
	case <-r.Context().Done():
		return
	}
	writeJSON(w, http.StatusOK, s.exitSnapshot())
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	s.toldOne.Do(func() { close(s.told) })
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	code, status := classify(err)
	msg := err.Error()
	if len(msg) > 512 {
		msg = msg[:512]
	}
	writeJSON(w, status, wireError{Code: code, Message: msg})
}

type invalidError struct{ error }
type tooLargeError struct{ error }

func classify(err error) (string, int) {
	var inv invalidError
	var big tooLargeError
	switch {
	case errors.As(err, &inv):
		return codeInvalid, http.StatusBadRequest
	case errors.As(err, &big):
		return codeTooLarge, http.StatusRequestEntityTooLarge
	case errors.Is(err, fs.ErrNotExist):
		return codeNotFound, http.StatusNotFound
	case errors.Is(err, fs.ErrPermission):
		return codePermission, http.StatusForbidden
	case errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ENOTEMPTY):
		return codeInvalid, http.StatusBadRequest
	}
	return codeInternal, http.StatusInternalServerError
}

func queryPath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if err := ValidatePath(p); err != nil {
		return "", invalidError{err}
	}
	return p, nil
}

func (s *Supervisor) handleWrite(w http.ResponseWriter, r *http.Request) {
	p, err := queryPath(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	mode := os.FileMode(0o644)
	if m := r.URL.Query().Get("mode"); m != "" {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil || v > 0o7777 {
			writeErr(w, invalidError{fmt.Errorf("bad mode %q", m)})
			return
		}
		mode = os.FileMode(v)
	}
	if err := s.writeFile(p, mode, r.Body); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Supervisor) writeFile(p string, mode os.FileMode, body io.Reader) error {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".clawbox-write-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, io.LimitReader(body, s.MaxFileBytes+1))
	if err != nil {
		return err
	}
	if n > s.MaxFileBytes {
		return tooLargeError{fmt.Errorf("file larger than %d bytes", s.MaxFileBytes)}
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		return syscall.EISDIR
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	ok = true
	return nil
}

const maxListEntries = 10000

func (s *Supervisor) handleRead(w http.ResponseWriter, r *http.Request) {
	p, err := queryPath(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	if r.URL.Query().Get("list") == "true" {
		ents, err := os.ReadDir(p)
		if err != nil {
			writeErr(w, err)
			return
		}
		out := []FileEntry{}
		for _, e := range ents {
			if len(out) == maxListEntries {
				break
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			out = append(out, FileEntry{Name: e.Name(), Size: info.Size(), Mode: uint32(info.Mode().Perm()), IsDir: e.IsDir(), MTime: info.ModTime().Unix()})
		}
		writeJSON(w, http.StatusOK, map[string]any{"entries": out})
		return
	}
	f, err := os.Open(p)
	if err != nil {
		writeErr(w, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeErr(w, err)
		return
	}
	if st.IsDir() {
		writeErr(w, syscall.EISDIR)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, f)
}

func (s *Supervisor) handleRemove(w http.ResponseWriter, r *http.Request) {
	p, err := queryPath(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	if p == "/" {
		writeErr(w, invalidError{errors.New("refusing to remove /")})
		return
	}
	if _, err := os.Lstat(p); err != nil {
		writeErr(w, err)
		return
	}
	if r.URL.Query().Get("recursive") == "true" {
		err = os.RemoveAll(p)
	} else {
		err = os.Remove(p)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// frameWriter serializes frames onto the response and flushes each.
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
	f  http.Flusher
}

func (fw *frameWriter) frame(typ byte, b []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if err := WriteFrame(fw.w, typ, b); err != nil {
		return err
	}
	fw.f.Flush()
	return nil
}

func (fw *frameWriter) control(typ byte, v any) {
	b, _ := json.Marshal(v)
	_ = fw.frame(typ, b)
}

func (s *Supervisor) handleExec(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "no flusher", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-clawbox-frames")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	fw := &frameWriter{w: w, f: fl}
	s.mu.Lock()
	s.execs++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.execs--
		s.mu.Unlock()
	}()
	if err := s.exec(r.Context(), r.Body, fw); err != nil {
		code, _ := classify(err)
		msg := err.Error()
		if len(msg) > 512 {
			msg = msg[:512]
		}
		fw.control(FrameError, wireError{Code: code, Message: msg})
	}
}

func validateExec(req *ExecRequest) error {
	if len(req.Cmd) == 0 || req.Cmd[0] == "" {
		return errors.New("empty cmd")
	}
	for _, a := range req.Cmd {
		if strings.IndexByte(a, 0) >= 0 {
			return errors.New("cmd contains NUL")
		}
	}
	for k, v := range req.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("bad env key %q", k)
		}
	}
	if req.Workdir != "" {
		if err := ValidatePath(req.Workdir); err != nil {
			return err
		}
	}
	if req.TimeoutMS < 0 || req.MaxOutputBytes < 0 {
		return errors.New("negative timeout or cap")
	}
	return nil
}

func (s *Supervisor) exec(ctx context.Context, body io.Reader, fw *frameWriter) error {
	typ, b, err := ReadFrame(body, nil)
	if err != nil {
		return invalidError{err}
	}
	if typ != FrameRequest {
		return invalidError{errors.New("first frame is not a request")}
	}
	var req ExecRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return invalidError{err}
	}
	if err := validateExec(&req); err != nil {
		return invalidError{err}
	}
	limit := req.MaxOutputBytes
	if limit == 0 {
		limit = DefaultMaxOutput
	}
	env := mergeEnv(s.Env, req.Env)
	cmd, err := s.command(req.Cmd, env, req.Workdir)
	if err != nil {
		return err
	}
	if st, err := os.Stat(cmd.Dir); cmd.Dir != "" && (err != nil || !st.IsDir()) {
		if err == nil {
			err = syscall.ENOTDIR
		}
		return err
	}
	var (
		stdinW          *os.File
		ptmx            *os.File
		readers         []*os.File
		closeAfterStart []*os.File
	)
	if req.TTY {
		var tty *os.File
		ptmx, tty, err = pty.Open()
		if err != nil {
			return err
		}
		defer ptmx.Close()
		if req.Rows > 0 && req.Cols > 0 {
			_ = pty.Setsize(ptmx, &pty.Winsize{Rows: req.Rows, Cols: req.Cols})
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Pdeathsig: syscall.SIGKILL}
		closeAfterStart = append(closeAfterStart, tty)
		stdinW = ptmx
		readers = []*os.File{ptmx}
	} else {
		inR, inW, err := os.Pipe()
		if err != nil {
			return err
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			inR.Close()
			inW.Close()
			return err
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			inR.Close()
			inW.Close()
			outR.Close()
			outW.Close()
			return err
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		closeAfterStart = append(closeAfterStart, inR, outW, errW)
		stdinW = inW
		readers = []*os.File{outR, errR}
		defer inW.Close()
		defer outR.Close()
		defer errR.Close()
	}
	start := time.Now()
	done, err := s.start(cmd)
	for _, f := range closeAfterStart {
		f.Close()
	}
	if err != nil {
		return err
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()

	// Input: stdin, EOF and resize frames until the client's body ends.
	var wg sync.WaitGroup
	inDone := make(chan struct{})
	wg.Go(func() {
		defer close(inDone)
		buf := make([]byte, MaxFramePayload)
		for {
			typ, b, err := ReadFrame(body, buf)
			if err != nil {
				if !req.TTY {
					stdinW.Close()
				}
				return
			}
			switch typ {
			case FrameStdin:
				if _, err := stdinW.Write(b); err != nil && !req.TTY {
					stdinW.Close()
				}
			case FrameStdinEOF:
				if req.TTY {
					_, _ = stdinW.Write([]byte{4}) // ^D through the line discipline
				} else {
					stdinW.Close()
				}
			case FrameResize:
				if ptmx != nil {
					rows := uint16(b[0])<<8 | uint16(b[1])
					cols := uint16(b[2])<<8 | uint16(b[3])
					_ = pty.Setsize(ptmx, &pty.Winsize{Rows: rows, Cols: cols})
				}
			}
		}
	})
	// Output: one pump per stream, capped.
	var truncMu sync.Mutex
	truncated := false
	var outWG sync.WaitGroup
	for i, rf := range readers {
		typ := FrameStdout
		if i == 1 {
			typ = FrameStderr
		}
		outWG.Go(func() {
			buf := make([]byte, MaxFramePayload)
			var sent int64
			for {
				n, err := rf.Read(buf)
				if n > 0 {
					m := int64(n)
					if sent+m > limit {
						m = limit - sent
						truncMu.Lock()
						truncated = true
						truncMu.Unlock()
					}
					if m > 0 {
						if fw.frame(typ, buf[:m]) != nil {
							return
						}
						sent += m
					}
				}
				if err != nil {
					return
				}
			}
		})
	}
	var timeout <-chan time.Time
	if req.TimeoutMS > 0 {
		t := time.NewTimer(time.Duration(req.TimeoutMS) * time.Millisecond)
		defer t.Stop()
		timeout = t.C
	}
	timedOut := false
	var ws syscall.WaitStatus
wait:
	for {
		select {
		case ws = <-done:
			break wait
		case <-timeout:
			timedOut = true
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			timeout = nil
		case <-ctx.Done():
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			ws = <-done
			break wait
		}
	}
	dur := time.Since(start)
	// Drain output; a background grandchild may hold the pipe, so bound it.
	drained := make(chan struct{})
	go func() { outWG.Wait(); close(drained) }()
	if req.TTY {
		// The pty returns EIO once the last slave fd closes; close early on grace.
	}
	select {
	case <-drained:
	case <-time.After(500 * time.Millisecond):
		for _, rf := range readers {
			_ = rf.SetReadDeadline(time.Now())
		}
		<-drained
	}
	ex := exitOf(ws)
	truncMu.Lock()
	res := ExecResult{ExitCode: ex.ExitCode, Signal: ex.Signal, TimedOut: timedOut, DurationMS: dur.Milliseconds(), Truncated: truncated}
	truncMu.Unlock()
	fw.control(FrameExit, res)
	// The client closes its body after the exit frame; the input loop ends then.
	select {
	case <-inDone:
	case <-ctx.Done():
	}
	wg.Wait()
	return nil
}

func mergeEnv(base []string, over map[string]string) []string {
	out := make([]string, 0, len(base)+len(over))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := over[k]; ok {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range over {
		out = append(out, k+"="+v)
	}
	return out
}
