package docker

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/internal/sandbox/backendtest"
)

// TestBackendSuite runs the tests every backend must pass (internal/sandbox/
// backendtest) on the Docker Engine; the Kubernetes backend runs the same ones.
func TestBackendSuite(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backendtest.Backend {
			b, err := New(Options{Logger: testLogger()})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Image: testImage,
		Dir:   os.TempDir(),
		Destroy: func(t *testing.T, id string) {
			cli, err := client.New(client.FromEnv)
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
		},
		RemoveInstance: removeInstanceContainers,
	})
}
