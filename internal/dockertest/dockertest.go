// Package dockertest is the Docker side of clawbox's tests: it checks that a daemon
// answers and builds the local test image (Debian's static busybox plus a static
// probe agent, see ./agent), since no registry can be reached. Everything it creates
// carries the label Label.
package dockertest

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
	"time"

	"github.com/moby/moby/client"
)

// Label marks every image and container created by tests.
const Label = "clawbox.test"

// Ping reports whether a Docker daemon answers (DOCKER_HOST or the default socket).
func Ping() error {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	return err
}

// RandomTag returns "clawbox-test/busybox:<random>", allowed by an image allowlist
// entry "clawbox-test/".
func RandomTag() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "clawbox-test/busybox:" + hex.EncodeToString(b)
}

// BuildImage imports an image named ref holding /bin/busybox (with sh, echo, sleep,
// cat, … applets) and /agent, labelled Label. Remove it with RemoveImage.
func BuildImage(ctx context.Context, ref string) error {
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("%w: install Debian's busybox-static (apt-get install -y busybox-static)", err)
	}
	if f, err := elf.NewFile(bytes.NewReader(busybox)); err != nil {
		return fmt.Errorf("/bin/busybox: %w", err)
	} else if f.Section(".interp") != nil {
		return errors.New("/bin/busybox is dynamically linked: install busybox-static instead of busybox")
	}
	agent, err := buildAgent(ctx)
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
	// agent-suid is a setuid-root copy of the agent: a sandbox running it must stay
	// its own uid (no-new-privileges).
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"bin/busybox", 0o755, busybox}, {"agent", 0o755, agent}, {"agent-suid", 0o4755, agent}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	for _, applet := range []string{"sh", "echo", "sleep", "cat", "true", "false", "id", "ls", "touch", "head", "yes", "dd", "wc", "mount", "env", "nc", "wget", "chmod", "cp", "mkdir", "ps", "kill", "grep"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer cli.Close()
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, ref, client.ImageImportOptions{
		Changes: []string{"LABEL " + Label + "=1", `CMD ["/bin/sh"]`, "ENV PATH=/bin"},
	})
	if err != nil {
		return fmt.Errorf("import test image: %w", err)
	}
	defer res.Close()
	_, err = io.Copy(io.Discard, res)
	return err
}

// RemoveImage removes a test image and the containers still using it.
func RemoveImage(ref string) error {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	return err
}

// buildAgent compiles ./agent as a static linux binary.
func buildAgent(ctx context.Context) ([]byte, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go command is needed to build the test agent: %w", err)
	}
	dir, err := os.MkdirTemp("", "clawbox-agent-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "agent")
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "github.com/clawbox/clawbox/internal/dockertest/agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build test agent: %v\n%s", err, b)
	}
	return os.ReadFile(out)
}
