package exampletools

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/clawbox/clawbox/internal/toolbuild"
)

func TestInstall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tools")
	// A user's own manifest must survive.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mine := []byte(`{"tool":{"name":"echo","description":"mine"}}`)
	if err := os.WriteFile(filepath.Join(dir, "echo.json"), mine, 0o600); err != nil {
		t.Fatal(err)
	}
	written, err := Install(dir)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, n := range Names() {
		if n != "echo" {
			want = append(want, n+".json")
		}
		want = append(want, n+".wasm")
	}
	slices.Sort(want)
	slices.Sort(written)
	if !slices.Equal(written, want) {
		t.Fatalf("written %v\nwant    %v", written, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "echo.json")); !bytes.Equal(b, mine) {
		t.Fatalf("existing echo.json overwritten: %s", b)
	}
	for _, n := range Names() {
		got, err := os.ReadFile(filepath.Join(dir, n+".wasm"))
		if err != nil {
			t.Fatal(err)
		}
		mod, _ := Module(n)
		if !bytes.Equal(got, mod) || !bytes.HasPrefix(got, []byte("\x00asm")) {
			t.Errorf("%s.wasm is not the embedded module", n)
		}
	}
	again, err := Install(dir)
	if err != nil || len(again) != 0 {
		t.Fatalf("second install wrote %v (err %v), want nothing", again, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

// TestEmbeddedModulesAreCurrent rebuilds the examples from source and compares them
// with the embedded modules: run `go generate ./internal/wasm/exampletools` when
// it fails.
func TestEmbeddedModulesAreCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("rebuilds five WASM tools; skipped with -short")
	}
	if v := GoVersion(); v != runtime.Version() {
		t.Skipf("embedded modules were built with %s, this toolchain is %s: builds are only reproducible with the same Go version", v, runtime.Version())
	}
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2) // the builds are CPU-bound
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, errs[i] = toolbuild.Build(context.Background(), filepath.Join(root, "examples", "tools", name), out, nil)
		})
	}
	wg.Wait()
	for i, name := range names {
		if errs[i] != nil {
			t.Fatalf("build %s: %v", name, errs[i])
		}
		built, err := os.ReadFile(filepath.Join(out, name+".wasm"))
		if err != nil {
			t.Fatal(err)
		}
		embedded, err := Module(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(built, embedded) {
			t.Errorf("%s: embedded module is stale (%d bytes, rebuilt %d): run go generate ./internal/wasm/exampletools", name, len(embedded), len(built))
		}
		src, _ := os.ReadFile(filepath.Join(root, "examples", "tools", name, "manifest.json"))
		if m, _ := Manifest(name); !bytes.Equal(m, src) {
			t.Errorf("%s: embedded manifest is stale: run go generate ./internal/wasm/exampletools", name)
		}
	}
}
