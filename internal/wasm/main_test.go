package wasm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// Test guests are built once per test binary from testdata/guest: as a command
// module (_start) and as a reactor (c-shared, clawbox_run).
var guests struct {
	command, reactor []byte
}

// testCacheDir is a compilation cache shared by the package's engines, so each test
// does not pay for compiling the guests again.
var testCacheDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "clawbox-wasm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	testCacheDir = filepath.Join(dir, "cache")
	var wg sync.WaitGroup
	var cmdErr, libErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		guests.command, cmdErr = buildGuest(dir, "command.wasm")
	}()
	go func() {
		defer wg.Done()
		guests.reactor, libErr = buildGuest(dir, "reactor.wasm", "-buildmode=c-shared")
	}()
	wg.Wait()
	if cmdErr != nil || libErr != nil {
		fmt.Fprintln(os.Stderr, "building test guests:", cmdErr, libErr)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

func buildGuest(dir, out string, flags ...string) ([]byte, error) {
	path := filepath.Join(dir, out)
	args := append([]string{"build", "-trimpath", "-o", path}, flags...)
	args = append(args, "./testdata/guest")
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %v\n%s", out, err, b)
	}
	return os.ReadFile(path)
}

// newTestEngine returns an engine closed at the end of the test.
func newTestEngine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = testCacheDir
	}
	e, err := NewEngine(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// compile compiles bin as the tool name, closed at the end of the test.
func compile(t *testing.T, e *Engine, name string, bin []byte) *Module {
	t.Helper()
	m, err := e.Compile(context.Background(), name, bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func readDirRecursive(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, path)
		}
		return err
	})
	return out, err
}
