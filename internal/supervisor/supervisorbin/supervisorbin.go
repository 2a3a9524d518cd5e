// Package supervisorbin embeds the clawbox-supervisor binary (see
// internal/supervisor/cmd/clawbox-supervisor), built for linux/amd64 and
// linux/arm64, so that the server can mount it into every container sandbox
// without a Go toolchain on the host.
//
// The files in bin/ are generated: `go generate ./internal/supervisor/supervisorbin`
// rebuilds them reproducibly (CGO_ENABLED=0, GOOS=linux, -trimpath, -buildvcs=false,
// -ldflags="-s -w -buildid="), stores each gzipped (clawbox-supervisor-<arch>.gz)
// and records the Go version used in bin/GOVERSION. A test rebuilds them from
// source and fails when the committed binaries are stale.
package supervisorbin

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

//go:generate go run ./gen

//go:embed bin/*.gz bin/GOVERSION
var files embed.FS

// Arches are the architectures a binary is embedded for.
var Arches = []string{"amd64", "arm64"}

// Binary returns the supervisor built for GOARCH arch.
func Binary(arch string) ([]byte, error) {
	gz, err := files.ReadFile("bin/clawbox-supervisor-" + arch + ".gz")
	if err != nil {
		return nil, fmt.Errorf("no embedded supervisor for %q (have %v)", arch, Arches)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// GoVersion is the Go toolchain version the embedded binaries were built with.
func GoVersion() string {
	b, _ := files.ReadFile("bin/GOVERSION")
	return strings.TrimSpace(string(b))
}

// Install writes the supervisor for arch into dir (created 0755 if missing) as
// clawbox-supervisor-<first 16 hex digits of its SHA-256>, mode 0555, unless a file
// of that name with the same content is already there, and returns its path. The
// name is the content, so servers of different versions sharing a dir never
// replace each other's binary under a running sandbox. A file of that name with
// other content (tampered with, or cut short) is replaced.
func Install(dir, arch string) (string, error) {
	bin, err := Binary(arch)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(bin)
	path := filepath.Join(dir, "clawbox-supervisor-"+hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("supervisor dir: %w", err)
	}
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, bin) {
		if st, err := os.Lstat(path); err == nil && st.Mode().IsRegular() && st.Mode().Perm() == 0o555 {
			return path, nil
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("supervisor binary: %w", err)
	}
	f, err := os.CreateTemp(dir, ".clawbox-supervisor-*")
	if err != nil {
		return "", fmt.Errorf("supervisor binary: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(bin); err != nil {
		f.Close()
		return "", fmt.Errorf("supervisor binary: %w", err)
	}
	if err := f.Chmod(0o555); err != nil {
		f.Close()
		return "", fmt.Errorf("supervisor binary: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("supervisor binary: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("supervisor binary: %w", err)
	}
	// rename replaces atomically: a container starting now mounts either the
	// old inode or the complete new one.
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("supervisor binary: %w", err)
	}
	return path, nil
}
