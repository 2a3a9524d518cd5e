// Package toolbuild scaffolds and builds Go WASM tools: the logic behind
// `clawbox new-tool` and `clawbox build`.
//
// A scaffolded tool is a self-contained Go module: main.go, manifest.json, go.mod
// (module clawboxtool/<name>, no requirements) and a copy of the toolkit package in
// toolkit/. Vendoring the toolkit is deliberate: the tool then builds offline on any
// machine with a Go toolchain, with no clawbox source checkout, module proxy or
// replace directive. The toolkit is small and its host ABI is stable.
//
// Build compiles with GOOS=wasip1 GOARCH=wasm, -trimpath and -ldflags=-s -w. It first
// builds the reactor form (-buildmode=c-shared), which the server serves from
// pre-initialised instances; a program that does not use the toolkit has no
// clawbox_run export and is rebuilt as a plain command module.
package toolbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/clawbox/clawbox/internal/wasm"
	"github.com/clawbox/clawbox/toolkit"
)

// Scaffold writes a new tool project in dir/name. It fails if that path exists.
func Scaffold(dir, name string) error {
	if err := wasm.ValidateName(name); err != nil {
		return err
	}
	root := filepath.Join(dir, name)
	if _, err := os.Lstat(root); err == nil {
		return fmt.Errorf("directory already exists: %s", root)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, "toolkit"), 0o755); err != nil {
		return err
	}
	module := "clawboxtool/" + name
	files := map[string]string{
		"go.mod":        fmt.Sprintf("module %s\n\ngo 1.24\n", module),
		"main.go":       strings.NewReplacer("MODULE", module, "NAME", name).Replace(mainTemplate),
		"manifest.json": strings.ReplaceAll(manifestTemplate, "NAME", name),
		"README.md":     strings.ReplaceAll(readmeTemplate, "NAME", name),
	}
	for file, content := range files {
		if err := os.WriteFile(filepath.Join(root, file), []byte(content), 0o644); err != nil {
			return err
		}
	}
	entries, err := fs.ReadDir(toolkit.Source, ".")
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := fs.ReadFile(toolkit.Source, e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, "toolkit", e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

const mainTemplate = `// Command NAME is a clawbox WASM tool. Its params arrive as JSON on stdin and its
// result leaves as JSON on stdout; build and install it with "clawbox build".
package main

import (
	"context"

	"MODULE/toolkit"
)

type input struct {
	Name string ` + "`json:\"name\"`" + `
}

type output struct {
	Greeting string ` + "`json:\"greeting\"`" + `
}

func main() {
	toolkit.RunTyped(func(ctx context.Context, in input) (output, error) {
		if in.Name == "" {
			in.Name = "world"
		}
		toolkit.Log("info", "greeting "+in.Name)
		return output{Greeting: "Hello, " + in.Name + "!"}, nil
	})
}
`

const manifestTemplate = `{
  "tool": {"name": "NAME", "description": "A clawbox WASM tool", "version": "0.1.0"},
  "input_schema": {
    "type": "object",
    "properties": {"name": {"type": "string", "description": "Who to greet."}},
    "additionalProperties": false
  },
  "network": {"allowlist": []},
  "credentials": {"available": []},
  "resources": {"default_timeout_ms": 10000}
}
`

const readmeTemplate = "# NAME\n\nA clawbox WASM tool written in Go.\n\n" +
	"- Try it natively: `echo '{\"name\":\"you\"}' | go run .`\n" +
	"- Build and install it into the tool directory: `clawbox build .`\n" +
	"- Call it: `clawbox run NAME '{\"name\":\"you\"}'`\n\n" +
	"`toolkit/` is a copy of clawbox's toolkit package, so the tool builds offline.\n" +
	"`manifest.json` declares the tool's network allowlist, credentials and limits.\n"

// Result describes an installed tool.
type Result struct {
	// Name is the tool's name: the manifest's tool.name, else the source directory's.
	Name string
	// Path is the installed module, toolDir/<name>.wasm.
	Path string
	// SHA256 is the hex digest of the installed module, as a server reports it once
	// it has loaded this build (api.ToolStatus).
	SHA256 string
	// Size is the module's size in bytes.
	Size int
}

// Build compiles the tool in srcDir and installs <name>.wasm (and <name>.json when
// srcDir has a manifest.json) into toolDir, each atomically. The name is the
// manifest's tool.name, else srcDir's base name. Compiler output goes to progress.
func Build(ctx context.Context, srcDir, toolDir string, progress io.Writer) (Result, error) {
	var res Result
	if err := build(ctx, srcDir, toolDir, progress, &res); err != nil {
		return Result{}, err
	}
	return res, nil
}

func build(ctx context.Context, srcDir, toolDir string, progress io.Writer, res *Result) error {
	if progress == nil {
		progress = io.Discard
	}
	src, err := filepath.Abs(srcDir)
	if err != nil {
		return err
	}
	if st, err := os.Stat(src); err != nil {
		return fmt.Errorf("source directory not found: %s", srcDir)
	} else if !st.IsDir() {
		return fmt.Errorf("source %s is not a directory", srcDir)
	}
	name := filepath.Base(src)
	manifest, err := os.ReadFile(filepath.Join(src, "manifest.json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		manifest = nil
	case err != nil:
		return err
	default:
		m, err := wasm.ParseManifest(manifest)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(srcDir, "manifest.json"), err)
		}
		name = m.Tool.Name
	}
	if err := wasm.ValidateName(name); err != nil {
		return fmt.Errorf("tool name %q: must be 1-64 chars, [a-zA-Z0-9_-] only", name)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("the Go toolchain (go 1.24 or later) is needed to build tools; see https://go.dev/dl")
	}
	tmp, err := os.MkdirTemp("", "clawbox-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, name+".wasm")

	fmt.Fprintf(progress, "Building tool %q from %s...\n", name, srcDir)
	if err := goBuild(ctx, goBin, src, out, progress, "-buildmode=c-shared"); err != nil {
		return err
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	if !hasExport(bin, "clawbox_run") {
		fmt.Fprintf(progress, "%s does not use the toolkit: building it as a command module\n", name)
		if err := goBuild(ctx, goBin, src, out, progress); err != nil {
			return err
		}
		if bin, err = os.ReadFile(out); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(toolDir, 0o755); err != nil {
		return err
	}
	// The manifest first: when the module appears, its manifest is already there.
	if manifest != nil {
		if err := writeAtomic(filepath.Join(toolDir, name+".json"), manifest); err != nil {
			return err
		}
	}
	path := filepath.Join(toolDir, name+".wasm")
	if err := writeAtomic(path, bin); err != nil {
		return err
	}
	sum := sha256.Sum256(bin)
	*res = Result{Name: name, Path: path, SHA256: hex.EncodeToString(sum[:]), Size: len(bin)}
	fmt.Fprintf(progress, "Installed %s.wasm (%d bytes) into %s\n", name, len(bin), toolDir)
	return nil
}

func goBuild(ctx context.Context, goBin, dir, out string, progress io.Writer, flags ...string) error {
	args := append([]string{"build", "-trimpath", "-ldflags=-s -w", "-o", out}, flags...)
	args = append(args, ".")
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = progress, progress
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build in %s: %w", dir, err)
	}
	return nil
}

// writeAtomic writes data to path through a temporary file in the same directory,
// synced and renamed into place.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// hasExport reports whether a wasm binary exports a function named name.
func hasExport(bin []byte, name string) bool {
	if len(bin) < 8 || !bytes.Equal(bin[:4], []byte("\x00asm")) {
		return false
	}
	p := bin[8:]
	for len(p) > 0 {
		id := p[0]
		size, n := uleb(p[1:])
		if n == 0 || size > uint64(len(p)-1-n) {
			return false
		}
		body := p[1+n : 1+n+int(size)]
		p = p[1+n+int(size):]
		if id != 7 { // export section
			continue
		}
		count, n := uleb(body)
		body = body[n:]
		for ; n > 0 && count > 0; count-- {
			l, m := uleb(body)
			if m == 0 || l+1 > uint64(len(body)-m) {
				return false
			}
			exp, kind := string(body[m:m+int(l)]), body[m+int(l)]
			body = body[m+int(l)+1:]
			if _, m = uleb(body); m == 0 {
				return false
			}
			body = body[m:]
			if kind == 0 && exp == name {
				return true
			}
		}
	}
	return false
}

func uleb(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}
