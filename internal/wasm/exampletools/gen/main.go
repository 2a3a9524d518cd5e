// Command gen rebuilds the embedded example tools (run by go generate in the parent
// directory): every examples/tools/<name> is built with internal/toolbuild, its
// module gzipped into ../tools/<name>.wasm.gz and its manifest copied to
// ../tools/<name>.json; the Go version used is written to ../tools/GOVERSION.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/clawbox/clawbox/internal/toolbuild"
	"github.com/clawbox/clawbox/internal/wasm/exampletools"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	// go generate runs in the package directory: internal/wasm/exampletools.
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		return err
	}
	out := "tools"
	tmp, err := os.MkdirTemp("", "clawbox-exampletools-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, name := range exampletools.Names() {
		if _, err := toolbuild.Build(ctx, filepath.Join(root, "examples", "tools", name), tmp, os.Stderr); err != nil {
			return err
		}
		bin, err := os.ReadFile(filepath.Join(tmp, name+".wasm"))
		if err != nil {
			return err
		}
		var gz bytes.Buffer
		zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		if err != nil {
			return err
		}
		zw.Write(bin)
		if err := zw.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name+".wasm.gz"), gz.Bytes(), 0o644); err != nil {
			return err
		}
		manifest, err := os.ReadFile(filepath.Join(tmp, name+".json"))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name+".json"), manifest, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(out, "GOVERSION"), []byte(runtime.Version()+"\n"), 0o644)
}
