// Package servertest provides Sandboxes, a scripted in-memory implementation of
// server.Sandboxes, so that the exec and file routes, the Go SDK, the CLI and the
// MCP tools can be tested through the real router and HTTP stack on faults a real
// sandbox cannot produce on demand (a supervisor lost mid-stream, a read cut short).
// Real sandboxes are tested in internal/daemon and internal/sandbox.
package servertest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/server"
)

// Running and Stopped are the ids of the two sandboxes a new Sandboxes has.
const (
	Running = "clawbox-running"
	Stopped = "clawbox-stopped"
)

// Sandboxes fakes the sandbox service. Exec runs one of these programs (cmd[0]):
//
//	echo ARGS...      ARGS joined by spaces and a newline on stdout, exit 0
//	stderr TEXT       TEXT on stderr, exit 0
//	exit N            exit code N
//	hex H1 H2...      each hex string's bytes as one write to stdout
//	cat               stdin to stdout until stdin closes, exit 0; with a TTY, a
//	                  resize writes "resize RxC\n" and the byte 0x03 ends it
//	                  with exit code 130 and signal 2, as a pty's Ctrl-C does
//	sleep             "ready\n" on stdout, then waits until closed or timeout_ms
//	lose              "partial\n" on stdout, then the supervisor is lost (Wait fails)
//	env               the env, sorted, one K=V per line
//	pwd               the workdir
//
// Any other program is 400 invalid_request naming cmd. Files live in a map.
type Sandboxes struct {
	// MaxFileBytes caps WriteFile (0: 1 MiB).
	MaxFileBytes int64
	// Listing, when set before use, answers ListFiles for the paths it knows
	// (ok true), as a hostile supervisor could: any names, any flags.
	Listing func(path string) (api.FileList, bool)

	mu         sync.Mutex // guards everything below
	status     map[string]string
	files      map[string]file
	execs      []*Exec
	workspaces map[string]bool // ids with a kept workspace
	removedWS  []string
	spawns     []api.ContainerSpawnRequest
}

type file struct {
	data  []byte
	mode  uint32
	dir   bool
	mtime time.Time
}

var _ server.Sandboxes = (*Sandboxes)(nil)

// New returns a fake with a running and a stopped sandbox, an empty root
// directory, and a kept workspace for Stopped.
func New() *Sandboxes {
	return &Sandboxes{
		status:     map[string]string{Running: api.ContainerStatusRunning, Stopped: api.ContainerStatusCompleted},
		files:      map[string]file{"/": {dir: true, mode: 0o755}},
		workspaces: map[string]bool{Stopped: true},
	}
}

func (f *Sandboxes) check(id string, running bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.status[id]
	if !ok {
		return api.Errorf(api.CodeNotFound, "sandbox %q not found", id)
	}
	if running && st != api.ContainerStatusRunning {
		return api.Errorf(api.CodeConflict, "sandbox %s is %s, not running", id, st)
	}
	return nil
}

var errNotFaked = api.Errorf(api.CodeUnavailable, "not part of the fake")

// Spawn records the request (see Spawns) and answers a running sandbox with
// the Running id; it starts nothing.
func (f *Sandboxes) Spawn(_ context.Context, req api.ContainerSpawnRequest) (api.ContainerInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spawns = append(f.spawns, req)
	return api.ContainerInfo{ContainerID: Running, Status: api.ContainerStatusRunning, Image: req.Image}, nil
}

// Spawns returns the spawn requests received, in order.
func (f *Sandboxes) Spawns() []api.ContainerSpawnRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.ContainerSpawnRequest(nil), f.spawns...)
}

// Get returns the sandbox's id and status.
func (f *Sandboxes) Get(_ context.Context, id string) (api.ContainerInfo, error) {
	if err := f.check(id, false); err != nil {
		return api.ContainerInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return api.ContainerInfo{ContainerID: id, Status: f.status[id]}, nil
}

// List is not faked.
func (f *Sandboxes) List(context.Context, string, []string) ([]api.ContainerInfo, error) {
	return nil, errNotFaked
}

// Extend is not faked.
func (f *Sandboxes) Extend(context.Context, string, int64) (api.ContainerInfo, error) {
	return api.ContainerInfo{}, errNotFaked
}

// Kill marks a running sandbox killed (idempotent).
func (f *Sandboxes) Kill(_ context.Context, id string) (api.KillResponse, error) {
	if err := f.check(id, false); err != nil {
		return api.KillResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status[id] == api.ContainerStatusRunning {
		f.status[id] = api.ContainerStatusKilled
	}
	return api.KillResponse{ContainerID: id, Status: f.status[id]}, nil
}

// Logs is not faked.
func (f *Sandboxes) Logs(context.Context, string) (api.ContainerLogs, error) {
	return api.ContainerLogs{}, errNotFaked
}

// FollowLogs is not faked.
func (f *Sandboxes) FollowLogs(context.Context, string, io.Writer, io.Writer) error {
	return errNotFaked
}

// Wait is not faked.
func (f *Sandboxes) Wait(context.Context, string) (api.ContainerInfo, error) {
	return api.ContainerInfo{}, errNotFaked
}

// RemoveWorkspace removes an ended sandbox's kept workspace.
func (f *Sandboxes) RemoveWorkspace(_ context.Context, id string) error {
	if err := f.check(id, false); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status[id] == api.ContainerStatusRunning {
		return api.Errorf(api.CodeConflict, "sandbox %s is still running", id)
	}
	if !f.workspaces[id] {
		return api.Errorf(api.CodeNotFound, "sandbox %s has no kept workspace", id)
	}
	delete(f.workspaces, id)
	f.removedWS = append(f.removedWS, id)
	return nil
}

// RemovedWorkspaces returns the ids whose workspace RemoveWorkspace deleted.
func (f *Sandboxes) RemovedWorkspaces() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.removedWS...)
}

// Execs returns the sessions started so far.
func (f *Sandboxes) Execs() []*Exec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Exec(nil), f.execs...)
}

// Exec is one faked session.
type Exec struct {
	Req  api.ExecRequest
	Opts server.ExecOptions

	stdin     chan []byte // closed by CloseStdin
	resize    chan [2]uint16
	closed    chan struct{}
	closeOnce sync.Once
	stdinOnce sync.Once
	done      chan struct{}
	exit      api.ExecExit
	err       error
}

// Closed is closed once Close has been called.
func (e *Exec) Closed() <-chan struct{} { return e.closed }

// Write sends stdin to the program (only with KeepStdin).
func (e *Exec) Write(p []byte) (int, error) {
	if !e.Opts.KeepStdin {
		return 0, api.Errorf(api.CodeConflict, "stdin is closed")
	}
	b := append([]byte(nil), p...)
	select {
	case e.stdin <- b:
		return len(p), nil
	case <-e.done:
		return 0, api.Errorf(api.CodeConflict, "the command has ended")
	case <-e.closed:
		return 0, api.Errorf(api.CodeConflict, "the exec is closed")
	}
}

// CloseStdin closes stdin.
func (e *Exec) CloseStdin() error {
	e.stdinOnce.Do(func() { close(e.stdin) })
	return nil
}

// Resize resizes the terminal (TTY only).
func (e *Exec) Resize(rows, cols uint16) error {
	if !e.Req.TTY {
		return api.Errorf(api.CodeInvalidRequest, "not a TTY exec")
	}
	select {
	case e.resize <- [2]uint16{rows, cols}:
	case <-e.done:
	case <-e.closed:
	}
	return nil
}

// Wait returns how the program ended.
func (e *Exec) Wait() (api.ExecExit, error) {
	<-e.done
	return e.exit, e.err
}

// Close ends the program. Idempotent.
func (e *Exec) Close() error {
	e.closeOnce.Do(func() { close(e.closed) })
	<-e.done
	return nil
}

// Exec starts one of the fake's programs.
func (f *Sandboxes) Exec(ctx context.Context, id string, req api.ExecRequest, opts server.ExecOptions, stdout, stderr io.Writer) (server.ExecSession, error) {
	if err := f.check(id, true); err != nil {
		return nil, err
	}
	if len(req.Cmd) == 0 {
		return nil, fieldErr("cmd", "cmd is required")
	}
	switch req.Cmd[0] {
	case "echo", "stderr", "exit", "hex", "cat", "sleep", "lose", "env", "pwd", "noread":
	default:
		return nil, fieldErr("cmd", fmt.Sprintf("no program %q in the fake", req.Cmd[0]))
	}
	if req.Workdir != "" && !strings.HasPrefix(req.Workdir, "/") {
		return nil, fieldErr("workdir", "workdir must be absolute")
	}
	e := &Exec{Req: req, Opts: opts, stdin: make(chan []byte, 16), resize: make(chan [2]uint16, 4),
		closed: make(chan struct{}), done: make(chan struct{})}
	// Stdin of the request, then EOF unless the caller keeps it open.
	first := req.Stdin
	if req.StdinBase64 != "" {
		first = "(base64)"
	}
	if first != "" {
		e.stdin <- []byte(first)
	}
	if !opts.KeepStdin {
		e.CloseStdin()
	}
	f.mu.Lock()
	f.execs = append(f.execs, e)
	f.mu.Unlock()
	go e.run(stdout, stderr)
	return e, nil
}

func fieldErr(field, msg string) error {
	e := api.Errorf(api.CodeInvalidRequest, "%s", msg)
	e.Details = map[string]string{"field": field}
	return e
}

func (e *Exec) run(stdout, stderr io.Writer) {
	start := time.Now()
	defer close(e.done)
	exit := api.ExecExit{EndedBy: api.ExecEndedExit}
	if e.Req.TTY {
		stderr = stdout
	}
	args := e.Req.Cmd[1:]
	switch e.Req.Cmd[0] {
	case "echo":
		io.WriteString(stdout, strings.Join(args, " ")+"\n")
	case "stderr":
		io.WriteString(stderr, strings.Join(args, " "))
	case "exit":
		if len(args) > 0 {
			exit.ExitCode, _ = strconv.Atoi(args[0])
		}
	case "hex":
		for _, a := range args {
			b, _ := hex.DecodeString(a)
			stdout.Write(b)
		}
	case "env":
		var lines []string
		for k, v := range e.Req.Env {
			lines = append(lines, k+"="+v)
		}
		sort.Strings(lines)
		io.WriteString(stdout, strings.Join(lines, "\n"))
	case "pwd":
		io.WriteString(stdout, e.Req.Workdir)
	case "lose":
		io.WriteString(stdout, "partial\n")
		e.err = api.Errorf(api.CodeUnavailable, "the sandbox's supervisor went away")
	case "sleep":
		io.WriteString(stdout, "ready\n")
		var timeout <-chan time.Time
		if e.Req.TimeoutMS > 0 {
			t := time.NewTimer(time.Duration(e.Req.TimeoutMS) * time.Millisecond)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-e.closed:
			exit = api.ExecExit{ExitCode: 137, Signal: 9, EndedBy: api.ExecEndedSandbox}
		case <-timeout:
			exit = api.ExecExit{ExitCode: 137, Signal: 9, TimedOut: true, EndedBy: api.ExecEndedTimeout}
		}
	case "noread":
		// Never reads stdin (its Write blocks once the stdin buffer is full), but
		// answers resizes until closed.
		for {
			select {
			case <-e.closed:
				exit = api.ExecExit{ExitCode: 137, Signal: 9, EndedBy: api.ExecEndedSandbox}
			case rc := <-e.resize:
				fmt.Fprintf(stdout, "resize %dx%d\n", rc[0], rc[1])
				continue
			}
			break
		}
	case "cat":
	loop:
		for {
			select {
			case <-e.closed:
				exit = api.ExecExit{ExitCode: 137, Signal: 9, EndedBy: api.ExecEndedSandbox}
				break loop
			case rc := <-e.resize:
				fmt.Fprintf(stdout, "resize %dx%d\n", rc[0], rc[1])
			case b, ok := <-e.stdin:
				if !ok {
					break loop
				}
				if i := bytes.IndexByte(b, 0x03); i >= 0 && e.Req.TTY {
					stdout.Write(b[:i])
					exit = api.ExecExit{ExitCode: 130, Signal: 2, EndedBy: api.ExecEndedExit}
					break loop
				}
				if _, err := stdout.Write(b); err != nil {
					exit = api.ExecExit{ExitCode: 141, Signal: 13, EndedBy: api.ExecEndedExit}
					break loop
				}
			}
		}
	}
	exit.DurationMS = time.Since(start).Milliseconds()
	e.exit = exit
}

// cleanPath validates a sandbox path like the service does.
func cleanPath(p string) (string, error) {
	if p == "" || !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) || len(p) > 4096 {
		return "", fieldErr("path", fmt.Sprintf("path must be absolute, without NUL, at most 4096 bytes: %q", p))
	}
	return path.Clean(p), nil
}

// WriteFile stores r at path, creating parent directories.
func (f *Sandboxes) WriteFile(_ context.Context, id, p string, mode uint32, r io.Reader) (api.FileWritten, error) {
	if err := f.check(id, true); err != nil {
		return api.FileWritten{}, err
	}
	p, err := cleanPath(p)
	if err != nil {
		return api.FileWritten{}, err
	}
	if strings.HasPrefix(p, "/proc/") {
		return api.FileWritten{}, api.Errorf(api.CodePermissionDenied, "the sandbox user may not write %s", p)
	}
	max := f.MaxFileBytes
	if max <= 0 {
		max = 1 << 20
	}
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return api.FileWritten{}, err
	}
	if int64(len(data)) > max {
		return api.FileWritten{}, api.Errorf(api.CodeTooLarge, "file is larger than containers.max_file_bytes (%d)", max)
	}
	if mode == 0 {
		mode = 0o644
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl, ok := f.files[p]; ok && fl.dir {
		return api.FileWritten{}, fieldErr("path", p+" is a directory")
	}
	for d := path.Dir(p); ; d = path.Dir(d) {
		if _, ok := f.files[d]; !ok {
			f.files[d] = file{dir: true, mode: 0o755, mtime: time.Now()}
		}
		if d == "/" {
			break
		}
	}
	f.files[p] = file{data: data, mode: mode, mtime: time.Now()}
	return api.FileWritten{Path: p, Size: int64(len(data)), Mode: mode}, nil
}

// CutReader is returned by ReadFile for "/cut": it claims 1000 bytes and fails after 10.
type cutReader struct{ n int }

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n >= 10 {
		return 0, errors.New("supervisor connection reset")
	}
	k := min(len(p), 10-c.n)
	for i := range k {
		p[i] = 'x'
	}
	c.n += k
	return k, nil
}

// PseudoFileText is what ReadFile of "/pseudo" gives.
const PseudoFileText = "Name:\tpseudo\nState:\tR (running)\n"

// ReadFile opens a stored file. "/cut" is a file whose stream fails after 10 of its
// 1000 bytes; "/pseudo" one whose size says 0 (as /proc's do) with text to read.
func (f *Sandboxes) ReadFile(_ context.Context, id, p string) (io.ReadCloser, api.FileEntry, error) {
	if err := f.check(id, true); err != nil {
		return nil, api.FileEntry{}, err
	}
	p, err := cleanPath(p)
	if err != nil {
		return nil, api.FileEntry{}, err
	}
	if p == "/cut" {
		return io.NopCloser(&cutReader{}), api.FileEntry{Name: "cut", Size: 1000, Mode: 0o644}, nil
	}
	if p == "/pseudo" {
		// As a file of /proc: its stat says 0 bytes, a read gives its text.
		return io.NopCloser(strings.NewReader(PseudoFileText)), api.FileEntry{Name: "pseudo", Size: 0, Mode: 0o444}, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.files[p]
	if !ok {
		return nil, api.FileEntry{}, api.Errorf(api.CodeNotFound, "no such file %s", p)
	}
	if fl.dir {
		return nil, api.FileEntry{}, fieldErr("path", p+" is a directory: list it with list=true")
	}
	return io.NopCloser(bytes.NewReader(fl.data)), api.FileEntry{Name: path.Base(p), Size: int64(len(fl.data)), Mode: fl.mode, MTime: fl.mtime}, nil
}

// ListFiles lists a stored directory.
func (f *Sandboxes) ListFiles(_ context.Context, id, p string) (api.FileList, error) {
	if err := f.check(id, true); err != nil {
		return api.FileList{}, err
	}
	p, err := cleanPath(p)
	if err != nil {
		return api.FileList{}, err
	}
	if f.Listing != nil {
		if l, ok := f.Listing(p); ok {
			return l, nil
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.files[p]
	if !ok {
		return api.FileList{}, api.Errorf(api.CodeNotFound, "no such directory %s", p)
	}
	if !d.dir {
		return api.FileList{}, fieldErr("path", p+" is not a directory")
	}
	out := api.FileList{Path: p, Entries: []api.FileEntry{}}
	for name, fl := range f.files {
		if name != "/" && path.Dir(name) == p {
			out.Entries = append(out.Entries, api.FileEntry{Name: path.Base(name), Size: int64(len(fl.data)), Mode: fl.mode, IsDir: fl.dir, MTime: fl.mtime})
		}
	}
	sort.Slice(out.Entries, func(i, j int) bool { return out.Entries[i].Name < out.Entries[j].Name })
	return out, nil
}

// RemoveFile removes a file, or a directory (with everything in it when recursive).
func (f *Sandboxes) RemoveFile(_ context.Context, id, p string, recursive bool) error {
	if err := f.check(id, true); err != nil {
		return err
	}
	p, err := cleanPath(p)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.files[p]
	if !ok {
		return api.Errorf(api.CodeNotFound, "no such file %s", p)
	}
	if fl.dir {
		var inside []string
		for name := range f.files {
			if strings.HasPrefix(name, p+"/") || (p == "/" && name != "/") {
				inside = append(inside, name)
			}
		}
		if len(inside) > 0 && !recursive {
			return fieldErr("path", p+" is a directory that is not empty: pass recursive=true")
		}
		for _, name := range inside {
			delete(f.files, name)
		}
	}
	if p != "/" {
		delete(f.files, p)
	}
	return nil
}

// File returns a stored file's bytes and mode.
func (f *Sandboxes) File(p string) ([]byte, uint32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.files[p]
	return fl.data, fl.mode, ok && !fl.dir
}
