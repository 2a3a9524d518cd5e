package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/goleak"
)

// The Docker tests need a reachable daemon (DOCKER_HOST or /var/run/docker.sock)
// and Debian's busybox-static (/bin/busybox). They build one test image in TestMain
// from busybox and a static test agent, and remove it at the end.
const testLabel = "clawbox.test"

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
func buildTestImage(ctx context.Context, cli *client.Client, ref string) error {
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("%w: install Debian's busybox-static (apt-get install -y busybox-static)", err)
	}
	if f, err := elf.NewFile(bytes.NewReader(busybox)); err != nil {
		return fmt.Errorf("/bin/busybox: %w", err)
	} else if f.Section(".interp") != nil {
		return errors.New("/bin/busybox is dynamically linked: install busybox-static instead of busybox")
	}
	dir, err := os.MkdirTemp("", "clawbox-agent-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	agentPath := filepath.Join(dir, "agent")
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go command is needed to build the test agent: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-ldflags=-s -w", "-o", agentPath, "./testdata/agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build test agent: %v\n%s", err, out)
	}
	agent, err := os.ReadFile(agentPath)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"bin", "etc", "dev", "proc", "sys", "run", "tmp"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode}); err != nil {
			return err
		}
	}
	for name, data := range map[string][]byte{"bin/busybox": busybox, "agent": agent} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(data))}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	for _, applet := range []string{"sh", "echo", "sleep", "cat", "true", "false", "id", "ls", "touch", "head", "yes", "dd"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, ref, client.ImageImportOptions{
		Changes: []string{"LABEL " + testLabel + "=1", `CMD ["/bin/sh"]`, "ENV PATH=/bin"},
	})
	if err != nil {
		return fmt.Errorf("import test image: %w", err)
	}
	defer res.Close()
	_, err = io.Copy(io.Discard, res)
	return err
}
