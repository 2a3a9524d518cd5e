package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/goleak"

	"github.com/clawbox/clawbox/internal/dockertest"
)

// The Docker tests need a reachable daemon (DOCKER_HOST or /var/run/docker.sock)
// and Debian's busybox-static (/bin/busybox). They build one test image in TestMain
// from busybox and a static test agent, and remove it at the end.

var (
	dockerErr error  // why the daemon cannot be used (tests skip)
	imageErr  error  // why the test image could not be built (tests fail)
	testImage string // "clawbox-test/busybox:<random>"
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		dockerErr = err
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, dockerErr = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
	}
	if dockerErr == nil {
		testImage = "clawbox-test/busybox:" + randHex(6)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		imageErr = buildTestImage(ctx, cli, testImage)
		cancel()
	}
	code := m.Run()
	if dockerErr == nil && imageErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if _, err := cli.ImageRemove(ctx, testImage, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			fmt.Fprintln(os.Stderr, "remove test image:", err)
		}
		cancel()
	}
	if cli != nil {
		cli.Close()
	}
	if code == 0 {
		// An Engine API connection can go back to the client's idle pool just after
		// Close (the moby client's ContainerWait goroutine closes its response body
		// after handing over the result): an idle keep-alive connection is not a
		// goroutine of ours.
		if err := goleak.Find(
			goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// requireDocker skips the test when no daemon answers a ping, and fails it when the
// daemon answers but the test image could not be built.
func requireDocker(t *testing.T) {
	t.Helper()
	if dockerErr != nil {
		t.Skipf("Docker daemon not reachable (%v): start dockerd or set DOCKER_HOST to run this test", dockerErr)
	}
	if imageErr != nil {
		t.Fatalf("test image: %v", imageErr)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// buildTestImage imports an image holding a static busybox (with a few applet
// links) and the static test agent at /agent.
func buildTestImage(ctx context.Context, _ *client.Client, ref string) error {
	return dockertest.BuildImage(ctx, ref)
}
