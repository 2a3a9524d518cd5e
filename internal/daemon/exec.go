package daemon

import (
	"context"
	"errors"
	"io"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/server"
)

// execService adapts *sandbox.Service to server.Sandboxes: the server declares its
// own ExecSession interface (it must not import internal/sandbox), so Exec is
// wrapped; every other method is the service's own.
type execService struct{ *sandbox.Service }

var _ server.Sandboxes = execService{}

// Exec starts a command; a failed start returns a nil interface, never a typed nil.
func (s execService) Exec(ctx context.Context, id string, req api.ExecRequest, opts server.ExecOptions, stdout, stderr io.Writer) (server.ExecSession, error) {
	e, err := s.Service.Exec(ctx, id, req, sandbox.ExecOptions{KeepStdin: opts.KeepStdin}, stdout, stderr)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, errors.New("sandbox: exec started without a session")
	}
	return e, nil
}
