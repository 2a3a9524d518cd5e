package sandbox

import (
	"context"
	"io"

	"github.com/clawbox/clawbox/api"
)

// Service is the container routes' view of a Manager: wire types, with every log
// redacted of known secrets. It is the one layer between the routes and the
// manager, and the one place where "no manager" becomes an error: the manager may
// not exist yet (the engine did not answer at start) or may be gone.
type Service struct {
	current func() (*Manager, error)
	redact  func([]byte) []byte
}

// NewService returns the service. current returns the manager to use now, or the
// error every call answers with while there is none (503 unavailable with the
// reason). redact scrubs secrets from logs; nil leaves them as they are.
func NewService(current func() (*Manager, error), redact func([]byte) []byte) *Service {
	if redact == nil {
		redact = func(b []byte) []byte { return b }
	}
	return &Service{current: current, redact: redact}
}

// Spawn creates and starts a sandbox.
func (s *Service) Spawn(ctx context.Context, req api.ContainerSpawnRequest) (api.ContainerInfo, error) {
	m, err := s.current()
	if err != nil {
		return api.ContainerInfo{}, err
	}
	rec, err := m.Spawn(ctx, req)
	if err != nil {
		return api.ContainerInfo{}, err
	}
	info := rec.Info()
	info.Workspace = m.workspaceInfo(rec.ID)
	return info, nil
}

// Get returns one sandbox.
func (s *Service) Get(ctx context.Context, id string) (api.ContainerInfo, error) {
	m, err := s.current()
	if err != nil {
		return api.ContainerInfo{}, err
	}
	rec, err := m.Get(ctx, id)
	if err != nil {
		return api.ContainerInfo{}, err
	}
	info := rec.Info()
	info.Workspace = m.workspaceInfo(rec.ID)
	return info, nil
}

// List returns the sandboxes, optionally of one status, carrying every label of
// the "key=value" selectors.
func (s *Service) List(ctx context.Context, status string, selectors []string) ([]api.ContainerInfo, error) {
	labels, err := ParseLabelSelector(selectors)
	if err != nil {
		return nil, err
	}
	m, err := s.current()
	if err != nil {
		return nil, err
	}
	recs, err := m.Find(ctx, api.ContainerFilter{Status: status, Labels: labels})
	if err != nil {
		return nil, err
	}
	out := make([]api.ContainerInfo, len(recs))
	for i, r := range recs {
		out[i] = r.Info()
		out[i].Workspace = m.workspaceInfo(r.ID)
	}
	return out, nil
}

// Extend sets a running sandbox's deadline to timeoutMS from now.
func (s *Service) Extend(ctx context.Context, id string, timeoutMS int64) (api.ContainerInfo, error) {
	m, err := s.current()
	if err != nil {
		return api.ContainerInfo{}, err
	}
	rec, err := m.Extend(ctx, id, timeoutMS)
	if err != nil {
		return api.ContainerInfo{}, err
	}
	return rec.Info(), nil
}

// Kill stops a sandbox and returns its final state with its output, redacted.
func (s *Service) Kill(ctx context.Context, id string) (api.KillResponse, error) {
	m, err := s.current()
	if err != nil {
		return api.KillResponse{}, err
	}
	rec, err := m.Kill(ctx, id)
	if err != nil {
		return api.KillResponse{}, err
	}
	res := rec.KillResponse()
	if res.Output != nil {
		out := string(s.redact([]byte(*res.Output)))
		res.Output = &out
	}
	return res, nil
}

// Logs returns a sandbox's kept logs, redacted.
func (s *Service) Logs(ctx context.Context, id string) (api.ContainerLogs, error) {
	m, err := s.current()
	if err != nil {
		return api.ContainerLogs{}, err
	}
	rec, err := m.Logs(ctx, id)
	if err != nil {
		return api.ContainerLogs{}, err
	}
	l := rec.LogsInfo()
	l.Stdout = string(s.redact([]byte(l.Stdout)))
	l.Stderr = string(s.redact([]byte(l.Stderr)))
	return l, nil
}

// FollowLogs streams a sandbox's output, redacted, until it stops or ctx ends.
func (s *Service) FollowLogs(ctx context.Context, id string, stdout, stderr io.Writer) error {
	m, err := s.current()
	if err != nil {
		return err
	}
	out := &lineRedactor{w: stdout, redact: s.redact}
	errw := &lineRedactor{w: stderr, redact: s.redact}
	err = m.FollowLogs(ctx, id, out, errw)
	out.Flush()
	errw.Flush()
	return err
}

// Wait returns the sandbox once it has reached a final status (or ctx ends).
func (s *Service) Wait(ctx context.Context, id string) (api.ContainerInfo, error) {
	m, err := s.current()
	if err != nil {
		return api.ContainerInfo{}, err
	}
	rec, err := m.Wait(ctx, id)
	if err != nil {
		return api.ContainerInfo{}, err
	}
	return rec.Info(), nil
}

// Exec starts req in the running sandbox id. It validates req (the spawn's env
// policy, containers.max_exec_timeout_ms, stdin), sends req.Stdin or
// req.StdinBase64 (then closes stdin unless opts.KeepStdin), and copies the
// command's output, capped per stream at containers.max_exec_output_bytes and
// redacted of known secrets like logs, to stdout and stderr as it comes (with a
// TTY all output goes to stdout). Writes to stdout and stderr happen from one
// goroutine owned by the session. Unknown id: 404; not running: 409; bad
// request: 400 naming the field; no supervisor: 503; too many execs in the
// sandbox (containers.max_execs): 429 resource_exhausted.
func (s *Service) Exec(ctx context.Context, id string, req api.ExecRequest, opts ExecOptions, stdout, stderr io.Writer) (*Exec, error) {
	m, err := s.current()
	if err != nil {
		return nil, err
	}
	return m.startExec(ctx, id, req, opts, s.redact, stdout, stderr)
}

// WriteFile streams r to path inside the sandbox as the sandbox user, creating
// parent directories; mode 0 means 0644. Capped by containers.max_file_bytes
// (413); the file appears whole or not at all.
func (s *Service) WriteFile(ctx context.Context, id, path string, mode uint32, r io.Reader) (api.FileWritten, error) {
	m, err := s.current()
	if err != nil {
		return api.FileWritten{}, err
	}
	return m.writeFile(ctx, id, path, mode, r)
}

// ReadFile opens path for streaming; every error (404, 403, 400, 413) comes back
// here, before any byte. The caller closes the reader.
func (s *Service) ReadFile(ctx context.Context, id, path string) (io.ReadCloser, api.FileEntry, error) {
	m, err := s.current()
	if err != nil {
		return nil, api.FileEntry{}, err
	}
	return m.openFile(ctx, id, path)
}

// ListFiles lists the directory at path.
func (s *Service) ListFiles(ctx context.Context, id, path string) (api.FileList, error) {
	m, err := s.current()
	if err != nil {
		return api.FileList{}, err
	}
	return m.listFiles(ctx, id, path)
}

// RemoveFile removes a file, or a directory with everything in it when
// recursive.
func (s *Service) RemoveFile(ctx context.Context, id, path string, recursive bool) error {
	m, err := s.current()
	if err != nil {
		return err
	}
	return m.removeFile(ctx, id, path, recursive)
}

// RemoveWorkspace deletes the sandbox's kept workspace (the sandbox must have
// ended, else 409 conflict; none: 404).
func (s *Service) RemoveWorkspace(ctx context.Context, id string) error {
	m, err := s.current()
	if err != nil {
		return err
	}
	return m.removeWorkspace(ctx, id)
}
