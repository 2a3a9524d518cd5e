// Command gen rebuilds the embedded supervisor binaries (run by go generate in
// the parent directory): clawbox-supervisor is built for every arch of
// supervisorbin.Arches, gzipped into ../bin/clawbox-supervisor-<arch>.gz, and the
// Go version used is written to ../bin/GOVERSION.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/clawbox/clawbox/internal/supervisor/supervisorbin"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	// go generate runs in the package directory: internal/supervisor/supervisorbin.
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "clawbox-supervisorbin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, arch := range supervisorbin.Arches {
		out := filepath.Join(tmp, arch)
		if err := supervisorbin.Build(ctx, root, arch, out, os.Stderr); err != nil {
			return err
		}
		bin, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		var gz bytes.Buffer
		zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		if err != nil {
			return err
		}
		if _, err := zw.Write(bin); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join("bin", "clawbox-supervisor-"+arch+".gz"), gz.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join("bin", "GOVERSION"), []byte(runtime.Version()+"\n"), 0o644)
}
