package supervisor

import (
	"bytes"
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
	Socket string // path of the server's listening socket
	Token  string // per-sandbox token presented on connect
	// TokenFile, when set, is read before every dial and its content is the
	// token presented (Token is then unused): a pooled sandbox's token is
	// replaced at claim, and a reconnect after that presents the new one.
	TokenFile string
	Main      []string // main command; empty means idle until a signal
	// WaitMain makes the supervisor wait for its main command from the
	// server (POST /v1/main, once) instead of taking Main: the mode of a
	// pooled sandbox, started before the request that will use it exists.
	// Until then it serves exec and files (the server's readiness check) and
	// a signal ends it with 0, as an idle one.
	WaitMain bool
	// Env is the environment of the main command and the base of every exec.
	Env []string
	// MaxFileBytes caps a file write; 0 means 1 GiB.
	MaxFileBytes int64
	// ExitGrace bounds how long after the main command ends the supervisor
	// waits for running execs and for the server to collect the exit.
	ExitGrace time.Duration
	// Bridge, when not nil, is the sandbox's HTTP proxy, served on BridgeListen
	// (the sandbox's 127.0.0.1:3128) from before the main command starts until
	// the supervisor ends. Nil for a sandbox without a door.
	Bridge       *Bridge
	BridgeListen string
	// MakeBridge, when set and Bridge is nil, builds the bridge right before
	// the main command starts (in WaitMain mode: at the main request, after
	// the server wrote the claim's door token). A nil bridge means none.
	MakeBridge func() *Bridge
	Logf       func(format string, args ...any)

	mu      sync.Mutex // guards the fields below and serializes start with reap
	waiters map[int]chan syscall.WaitStatus
	execs   int
	exit    *MainExit
	exitCh  chan struct{}
	told    chan struct{}
	toldOne sync.Once
	env     []string // the exec base: Env, then the main request's env merged over it
	mainReq chan mainCall
	taken   bool // a main request was accepted
}

// mainCall hands a main request from its handler to Run, which starts it.
type mainCall struct {
	req   MainRequest
	reply chan error
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
	s.env = s.Env
	s.mainReq = make(chan mainCall)
	if s.WaitMain && len(s.Main) > 0 {
		s.logf("clawbox-supervisor: a main command and WaitMain: refusing both")
		return 2
	}
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

	// startMain starts the bridge (listening before the main command starts:
	// its first request finds the proxy there; without it the workload still
	// runs, offline) and then argv; it returns the main command's pid and exit
	// channel.
	startMain := func(argv, env []string, dir string) (int, chan syscall.WaitStatus, error) {
		b := s.Bridge
		if b == nil && s.MakeBridge != nil {
			b = s.MakeBridge()
		}
		if b != nil {
			if ln, err := net.Listen("tcp", s.BridgeListen); err != nil {
				s.logf("clawbox-supervisor: proxy bridge: %v", err)
			} else {
				wg.Go(func() {
					if err := b.Serve(ctx, ln); err != nil {
						s.logf("clawbox-supervisor: proxy bridge: %v", err)
					}
				})
			}
		}
		cmd, err := s.command(argv, env, dir)
		if err != nil {
			return 0, nil, err
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		done, err := s.start(cmd)
		if err != nil {
			return 0, nil, err
		}
		pid := cmd.Process.Pid
		_ = cmd.Process.Release()
		return pid, done, nil
	}

	mainPid := 0
	var mainDone chan syscall.WaitStatus
	if len(s.Main) > 0 {
		pid, done, err := startMain(s.Main, s.Env, "")
		if err != nil {
			s.logf("clawbox-supervisor: main command: %v", err)
			s.setExit(MainExit{ExitCode: 127})
		} else {
			mainPid, mainDone = pid, done
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
		case mc := <-s.mainReq:
			// Only the first request gets here (the handler checks taken),
			// and only before the supervisor was told to end.
			if s.exitSnapshot() != nil {
				mc.reply <- errMainEnded
				continue
			}
			env := mergeEnv(s.Env, mc.req.Env)
			s.mu.Lock()
			s.env = env
			s.mu.Unlock()
			pid, done, err := startMain(mc.req.Cmd, env, mc.req.Workdir)
			if err != nil {
				s.logf("clawbox-supervisor: main command: %v", err)
				s.setExit(MainExit{ExitCode: 127})
				mc.reply <- err
				continue
			}
			mainPid, mainDone = pid, done
			mc.reply <- nil
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
			began := time.Now()
			s.serveConn(ctx, conn)
			// A connection the server refused (a replaced token) ends at
			// once: redial with the growing back-off, not in a tight loop.
			// Only one that was served a while starts the back-off afresh.
			if time.Since(began) > time.Second {
				backoff = 10 * time.Millisecond
				continue
			}
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
	token := s.Token
	if s.TokenFile != "" {
		b, err := os.ReadFile(s.TokenFile)
		if err != nil {
			s.logf("clawbox-supervisor: token: %v", err)
			return
		}
		token = strings.TrimSpace(string(b))
	}
	if _, err := io.WriteString(conn, HelloPrefix+token+"\n"); err != nil {
		return
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	srv := &http2.Server{MaxConcurrentStreams: 256, MaxReadFrameSize: 1 << 16}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/exec", s.handleExec)
	mux.HandleFunc("GET /v1/main", s.handleMain)
	mux.HandleFunc("POST /v1/main", s.handleStartMain)
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

var (
	errNotWaiting = invalidError{errors.New("the supervisor does not wait for a main command")}
	errMainTaken  = invalidError{errors.New("the main command was already given")}
	errMainEnded  = invalidError{errors.New("the supervisor is ending")}
)

// handleStartMain takes the main command in WaitMain mode: the first valid
// request starts it; every later one, and any without WaitMain, is refused.
// The answer comes after the command started (or failed to: then the
// supervisor ends with 127, as for a main command given at start).
func (s *Supervisor) handleStartMain(w http.ResponseWriter, r *http.Request) {
	if !s.WaitMain {
		writeErr(w, errNotWaiting)
		return
	}
	var req MainRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, MaxRequestBytes)).Decode(&req); err != nil {
		writeErr(w, invalidError{err})
		return
	}
	if err := validateExec(&ExecRequest{Cmd: req.Cmd, Env: req.Env, Workdir: req.Workdir}); err != nil {
		writeErr(w, invalidError{err})
		return
	}
	s.mu.Lock()
	taken := s.taken
	s.taken = true
	s.mu.Unlock()
	if taken {
		writeErr(w, errMainTaken)
		return
	}
	mc := mainCall{req: req, reply: make(chan error, 1)}
	select {
	case s.mainReq <- mc:
	case <-s.exitCh:
		writeErr(w, errMainEnded)
		return
	case <-r.Context().Done():
		return
	}
	if err := <-mc.reply; err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
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
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return codePermission, http.StatusForbidden
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return codeNoSpace, http.StatusInsufficientStorage
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
	max := s.MaxFileBytes
	if m := r.URL.Query().Get("max"); m != "" {
		v, err := strconv.ParseInt(m, 10, 64)
		if err != nil || v < 0 {
			writeErr(w, invalidError{fmt.Errorf("bad max %q", m)})
			return
		}
		max = min(max, v)
	}
	if err := s.writeFile(p, mode, r.Body, max); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeFile writes body to p through a temporary file in p's directory,
// renamed over p only when all of it (at most max bytes) arrived; otherwise
// the temporary file is gone before the error is returned.
func (s *Supervisor) writeFile(p string, mode os.FileMode, body io.Reader, max int64) error {
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
	n, err := io.Copy(f, io.LimitReader(body, max+1))
	if err != nil {
		return err
	}
	if n > max {
		return tooLargeError{fmt.Errorf("file larger than %d bytes", max)}
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
		truncated := false
		for _, e := range ents {
			if len(out) == maxListEntries {
				truncated = true
				break
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			t := info.Mode().Type()
			out = append(out, FileEntry{Name: e.Name(), Size: info.Size(), Mode: uint32(info.Mode().Perm()), IsDir: e.IsDir(),
				IsSymlink: t&fs.ModeSymlink != 0, IsOther: t&^(fs.ModeDir|fs.ModeSymlink) != 0, MTime: info.ModTime().Unix()})
		}
		writeJSON(w, http.StatusOK, map[string]any{"entries": out, "truncated": truncated})
		return
	}
	// O_NONBLOCK: opening a FIFO the workload planted must not block (it would
	// hold the request until a writer comes); anything but a regular file is
	// refused after the open.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
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
	if !st.Mode().IsRegular() {
		writeErr(w, invalidError{fmt.Errorf("%s is not a regular file (%s)", p, st.Mode().Type())})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(HeaderSize, strconv.FormatInt(st.Size(), 10))
	w.Header().Set(HeaderMode, strconv.FormatUint(uint64(st.Mode().Perm()), 8))
	w.Header().Set(HeaderMTime, strconv.FormatInt(st.ModTime().Unix(), 10))
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
	mu    sync.Mutex // guards the writes and ended
	w     io.Writer
	f     http.Flusher
	ended bool // the last frame is written: later frames are dropped
}

var errStreamEnded = errors.New("exec stream ended")

func (fw *frameWriter) frame(typ byte, b []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.ended {
		return errStreamEnded
	}
	if typ == FrameExit || typ == FrameError {
		fw.ended = true
	}
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
	s.mu.Lock()
	base := s.env
	s.mu.Unlock()
	env := mergeEnv(base, req.Env)
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
		saneTermios(tty)
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
				if req.TTY && bytes.IndexByte(b, 0x03) >= 0 && !hasForeground(ptmx) {
					// A pty without a foreground process group (gVisor does not
					// give the new session's tty one) turns no Ctrl-C into a
					// signal: deliver the SIGINT the line discipline would.
					_ = syscall.Kill(-pid, syscall.SIGINT)
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
	// Linux's pty returns EIO once the last slave fd closes; gVisor's does not,
	// and a read of it cannot always be interrupted: after a second that
	// reader is left to end when the pty is closed, its late output dropped.
	select {
	case <-drained:
	case <-time.After(500 * time.Millisecond):
		for _, rf := range readers {
			_ = rf.SetReadDeadline(time.Now())
		}
		select {
		case <-drained:
		case <-time.After(500 * time.Millisecond):
		}
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

// saneTermios gives a new pty the line discipline a terminal user expects
// (what Linux starts a pty with; gVisor's starts without signal characters, so
// a Ctrl-C would reach the program as a plain byte instead of a SIGINT).
func saneTermios(tty *os.File) {
	t, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		return
	}
	t.Iflag |= unix.ICRNL | unix.IXON
	t.Oflag |= unix.OPOST | unix.ONLCR
	t.Cflag |= unix.CREAD | unix.CS8
	t.Lflag |= unix.ISIG | unix.ICANON | unix.ECHO | unix.ECHOE | unix.ECHOK | unix.IEXTEN
	t.Cc[unix.VINTR], t.Cc[unix.VQUIT], t.Cc[unix.VERASE], t.Cc[unix.VKILL] = 0x03, 0x1c, 0x7f, 0x15
	t.Cc[unix.VEOF], t.Cc[unix.VSUSP], t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 0x04, 0x1a, 1, 0
	_ = unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, t)
}

// hasForeground reports whether the pty has a foreground process group.
func hasForeground(ptmx *os.File) bool {
	pg, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPGRP)
	return err == nil && pg > 0
}
