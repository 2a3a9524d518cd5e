package daemon

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/clawbox/clawbox/internal/dockertest"
)

var (
	dockerErr error  // why Docker tests skip
	imageErr  error  // why the test image could not be built (Docker tests fail)
	testImage string // built once for the package
)

func TestMain(m *testing.M) {
	dockerErr = dockertest.Ping()
	if dockerErr == nil {
		testImage = dockertest.RandomTag()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		imageErr = dockertest.BuildImage(ctx, testImage)
		cancel()
	}
	code := m.Run()
	if code == 0 {
		// Every test has stopped its daemon: no goroutine of Run may outlive it. The
		// per-test check is not possible here because TestMain builds the shared image.
		// The test clients' keep-alive connections (http.DefaultTransport) are the
		// process's, not Run's: close them first.
		http.DefaultClient.CloseIdleConnections()
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	if d, ok := wasmCacheDir(); ok {
		os.RemoveAll(d)
	}
	if dockerErr == nil && imageErr == nil {
		if err := dockertest.RemoveImage(testImage); err != nil {
			fmt.Fprintln(os.Stderr, "remove test image:", err)
		}
	}
	os.Exit(code)
}

// requireDocker skips when no daemon answers, and fails when the image is missing.
func requireDocker(t *testing.T) {
	t.Helper()
	if dockerErr != nil {
		t.Skipf("Docker daemon not reachable (%v): start dockerd or set DOCKER_HOST to run this test", dockerErr)
	}
	if imageErr != nil {
		t.Fatalf("test image: %v", imageErr)
	}
}
