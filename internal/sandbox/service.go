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
	return rec.Info(), nil
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
	return rec.Info(), nil
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
