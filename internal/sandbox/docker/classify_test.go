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

// TestRuntimeFailure: the engine's answers when its OCI runtime fails (the texts
// below are the engine's own, from CI runs under runsc) become 503 unavailable
// naming the runtime, with a hint when the runtime was killed, and without the
// engine's host paths; other start errors are left to classify.
func TestRuntimeFailure(t *testing.T) {
	killed := errors.New("Error response from daemon: failed to create shim task: OCI runtime create failed: /var/lib/docker/runtimes/runsc did not terminate successfully: exit status 137: unknown")
	hook := errors.New(`Error response from daemon: failed to create shim task: OCI runtime create failed: creating container: failure executing hook "/proc/1462/exe", err: exit status 1`)
	for _, tc := range []struct {
		err     error
		runtime string
		want    []string
	}{
		{killed, "runsc", []string{"runsc", "killed", "memory_mb"}},
		{hook, "runsc", []string{"runsc", "server log"}},
		{hook, "", []string{"default runtime"}},
	} {
		e := runtimeFailure(tc.runtime, tc.err)
		if e == nil || e.Code != api.CodeUnavailable {
			t.Fatalf("runtimeFailure(%q) = %v, want unavailable", tc.err, e)
		}
		for _, w := range tc.want {
			if !strings.Contains(e.Message, w) {
				t.Errorf("message %q does not say %q", e.Message, w)
			}
		}
		if strings.Contains(e.Message, "/var/lib") || strings.Contains(e.Message, "/proc/") {
			t.Errorf("message %q shows the engine's host paths", e.Message)
		}
	}
	if e := runtimeFailure("runsc", errors.New("Error response from daemon: No such container: x")); e != nil {
		t.Errorf("a non-runtime error became %v", e)
	}
}
