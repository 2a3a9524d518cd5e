package dockertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/moby/moby/client"
)

// EnvDebianTarball names the Debian root tarball built by scripts/debian-image.sh
// (scripts/test.sh builds it and exports this variable). Without it the tests ask the
// script where the tarball of the current inputs would be.
const EnvDebianTarball = "CLAWBOX_TEST_DEBIAN_TARBALL"

// ErrNoDebianTarball is returned (wrapped) by DebianTarball when the tarball has not
// been built: the tests that need it skip, unless DebianRequired.
var ErrNoDebianTarball = errors.New("the Debian test image has not been built: run scripts/debian-image.sh (as root; debootstrap, minutes the first time, cached after)")

// DebianRequired reports whether a missing Debian tarball must fail the tests rather
// than skip them: in CI (CI set) and under scripts/test.sh (EnvDebianTarball set).
func DebianRequired() bool {
	return os.Getenv("CI") != "" || os.Getenv(EnvDebianTarball) != ""
}

// DebianTarball returns the path of the Debian root tarball: EnvDebianTarball, or
// else the path scripts/debian-image.sh --path prints. A tarball that does not exist
// is an error wrapping ErrNoDebianTarball.
func DebianTarball(ctx context.Context) (string, error) {
	path := os.Getenv(EnvDebianTarball)
	if path == "" {
		script, err := debianScript()
		if err != nil {
			return "", err
		}
		out, err := exec.CommandContext(ctx, "bash", script, "--path").Output()
		if err != nil {
			return "", fmt.Errorf("%s --path: %w", script, err)
		}
		path = strings.TrimSpace(string(out))
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return "", fmt.Errorf("%s: %w", path, ErrNoDebianTarball)
	}
	if err != nil {
		return "", err
	}
	return path, nil
}

// debianScript is scripts/debian-image.sh of this source tree.
func debianScript() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the source tree of dockertest")
	}
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "debian-image.sh")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("scripts/debian-image.sh: %w", err)
	}
	return script, nil
}

// DebianRef is the image reference of a tarball: "clawbox-test/debian:<hash>", the
// hash being the one in the tarball's name (debian-<hash>.tar).
func DebianRef(tarball string) string {
	hash := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(tarball), "debian-"), ".tar")
	return "clawbox-test/debian:" + strings.ToLower(hash)
}

// ImportDebian imports the tarball as the image DebianRef(tarball), labelled Label,
// with a Debian PATH and /bin/sh as its command, and returns the reference. Remove
// it with RemoveImage.
func ImportDebian(ctx context.Context, tarball string) (string, error) {
	ref := DebianRef(tarball)
	f, err := os.Open(tarball)
	if err != nil {
		return "", err
	}
	defer f.Close()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: f, SourceName: "-"}, ref, client.ImageImportOptions{
		Changes: []string{
			"LABEL " + Label + "=1",
			`CMD ["/bin/sh"]`,
			"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"ENV LANG=C.UTF-8",
		},
	})
	if err != nil {
		return "", fmt.Errorf("import the Debian test image %s: %w", tarball, err)
	}
	defer res.Close()
	if _, err := io.Copy(io.Discard, res); err != nil {
		return "", fmt.Errorf("import the Debian test image %s: %w", tarball, err)
	}
	return ref, nil
}
