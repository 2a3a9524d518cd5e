package docker

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/internal/sandbox"
)

var _ sandbox.Pauser = (*Backend)(nil)

// Pause freezes the container's processes (the cgroup freezer). A container that
// is not running, or already paused, is errdefs.ErrConflict.
func (b *Backend) Pause(ctx context.Context, id string) error {
	ctx, cancel := b.call(ctx)
	defer cancel()
	_, err := b.cli.ContainerPause(ctx, id, client.ContainerPauseOptions{})
	return classifyPause("container pause", err)
}

// Unpause thaws a paused container. A container that is not paused is
// errdefs.ErrConflict.
func (b *Backend) Unpause(ctx context.Context, id string) error {
	ctx, cancel := b.call(ctx)
	defer cancel()
	_, err := b.cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
	return classifyPause("container unpause", err)
}

func classifyPause(op string, err error) error {
	if err != nil && (errdefs.IsConflict(err) || errdefs.IsFailedPrecondition(err)) {
		return fmt.Errorf("docker %s: %w: %w", op, errdefs.ErrConflict, err)
	}
	return classify(op, err)
}
