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
	agent, err := buildAgent(ctx)
	if err != nil {
		return err
	}
	// agent-suid is a setuid-root copy of the agent: a sandbox running it must stay
	// its own uid (no-new-privileges).
	return ImportImage(ctx, ref, []File{{"agent", 0o755, agent}, {"agent-suid", 0o4755, agent}}, Label+"=1")
}

// File is a file to add to an imported image.
type File struct {
	Name string // path inside the image, without a leading slash
	Mode int64
	Data []byte
}

// ImportImage imports an image named ref holding Debian's static /bin/busybox (with
// sh, echo, sleep, cat, … applets) and files, with the label "key=value" label.
func ImportImage(ctx context.Context, ref string, files []File, label string) error {
	return ImportImageTmpMode(ctx, ref, files, label, 0o1777)
}

// ImportImageTmpMode is ImportImage with the image's /tmp directory in tmpMode
// (owned by root), for tests of what a sandbox user can write there.
func ImportImageTmpMode(ctx context.Context, ref string, files []File, label string, tmpMode int64) error {
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("%w: install Debian's busybox-static (apt-get install -y busybox-static)", err)
	}
	if f, err := elf.NewFile(bytes.NewReader(busybox)); err != nil {
		return fmt.Errorf("/bin/busybox: %w", err)
	} else if f.Section(".interp") != nil {
		return errors.New("/bin/busybox is dynamically linked: install busybox-static instead of busybox")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"bin", "etc", "dev", "proc", "sys", "run", "tmp"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = tmpMode
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode}); err != nil {
			return err
		}
	}
	for _, f := range append([]File{{"bin/busybox", 0o755, busybox}}, files...) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Name, Mode: f.Mode, Size: int64(len(f.Data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
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
		Changes: []string{"LABEL " + label, `CMD ["/bin/sh"]`, "ENV PATH=/bin"},
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
	dir, err := os.MkdirTemp("", "clawbox-agent-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "agent")
	if err := BuildStatic(ctx, "github.com/clawbox/clawbox/internal/dockertest/agent", out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

// BuildStatic compiles the Go main package pkg as a static linux binary at out.
func BuildStatic(ctx context.Context, pkg, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go command is needed to build %s: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", pkg, err, b)
	}
	return nil
}
