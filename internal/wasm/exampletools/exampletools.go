// Package exampletools embeds the example tools of examples/tools, built, so that
// `clawbox init` can install them on a machine without a Go toolchain.
//
// The files in tools/ are generated: `go generate ./internal/wasm/exampletools`
// rebuilds them reproducibly (GOOS=wasip1, -trimpath, -ldflags=-s -w, reactor form)
// with internal/toolbuild, stores each module gzipped (<name>.wasm.gz, about a third
// of the size) and records the Go version used in tools/GOVERSION. A test rebuilds
// them from source and fails when the committed modules are stale.
package exampletools

import (
	"bytes"
	"compress/gzip"
	"embed"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

//go:generate go run ./gen

//go:embed tools/*.wasm.gz tools/*.json tools/GOVERSION
var files embed.FS

// Names are the example tools, sorted.
var names = []string{"echo", "hash", "http_request", "json_fmt", "web_fetch"}

// Names returns the example tools' names, sorted.
func Names() []string { return slices.Clone(names) }

// Module returns an example tool's built module.
func Module(name string) ([]byte, error) {
	gz, err := files.ReadFile("tools/" + name + ".wasm.gz")
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// Manifest returns an example tool's manifest.
func Manifest(name string) ([]byte, error) { return files.ReadFile("tools/" + name + ".json") }

// GoVersion is the Go toolchain version the embedded modules were built with.
func GoVersion() string {
	b, _ := files.ReadFile("tools/GOVERSION")
	return strings.TrimSpace(string(b))
}

// Install writes every example tool's <name>.wasm and <name>.json into dir (created
// 0755 if missing) and returns the files it wrote. Existing files are never
// overwritten: a user's changed manifest or module stays as it is.
func Install(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for _, name := range names {
		for _, ext := range []string{".json", ".wasm"} { // manifest first, for a watching server
			file := name + ext
			var b []byte
			var err error
			if ext == ".wasm" {
				b, err = Module(name)
			} else {
				b, err = Manifest(name)
			}
			if err != nil {
				return written, err
			}
			ok, err := writeNew(filepath.Join(dir, file), b)
			if err != nil {
				return written, err
			}
			if ok {
				written = append(written, file)
			}
		}
	}
	return written, nil
}

// writeNew creates path with data unless it exists. The data goes to a temporary
// file first and is linked into place, so a reader never sees a partial file and an
// existing file is never replaced.
func writeNew(path string, data []byte) (bool, error) {
	if _, err := os.Lstat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Close(); err != nil {
		return false, err
	}
	if err := os.Link(f.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}
