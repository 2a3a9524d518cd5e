package docker

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
)

// TestClassifyEngineDown: an engine that does not answer is 503 unavailable for API
// clients (not a 500), without the socket path in the message; not-found stays
// not-found.
func TestClassifyEngineDown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "no-docker.sock")
	cli, err := client.New(client.WithHost("unix://" + sock))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, perr := cli.ContainerInspect(ctx, "x", client.ContainerInspectOptions{})
	if !client.IsErrConnectionFailed(perr) {
		t.Fatalf("inspect against a missing socket: %v, want a connection failure", perr)
	}
	err = classify("container inspect", perr)
	e, ok := api.AsError(err)
	if !ok || e.Code != api.CodeUnavailable || e.Status() != 503 {
		t.Fatalf("classify(connection failed) = %v, want 503 unavailable", err)
	}
	if strings.Contains(e.Message, sock) {
		t.Errorf("the client-facing message shows the socket path: %q", e.Message)
	}
	if !errors.Is(err, errdefs.ErrUnavailable) || errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("classify(connection failed) has the wrong class: %v", err)
	}
	if nf := classify("container inspect", errdefs.ErrNotFound); !errors.Is(nf, errdefs.ErrNotFound) {
		t.Errorf("classify(not found) = %v", nf)
	}
}
