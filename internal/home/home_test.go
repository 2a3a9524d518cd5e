package home

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/clawbox/clawbox/internal/config"
)

func TestInitLayoutAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cb")
	res, err := Init(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{
		"":            0o700 | os.ModeDir,
		"config.toml": 0o600,
		"token":       0o600,
		"master.key":  0o600,
		"tools":       0o755 | os.ModeDir,
		"audit":       0o700 | os.ModeDir,
		"proxies":     0o700 | os.ModeDir,
		"workspaces":  0o700 | os.ModeDir,
		"state.db":    0o600,
	}
	for name, mode := range want {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if st.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", name, st.Mode(), mode)
		}
	}
	if !res.Created() {
		t.Error("first Init reports nothing created")
	}
	tok, _ := os.ReadFile(filepath.Join(dir, "token"))
	if len(strings.TrimSpace(string(tok))) != 64 {
		t.Errorf("token %q is not 64 hex characters", tok)
	}
	// The written config loads, and its token is the token file's.
	cfg, err := config.Load(res.Config, func(k string) (string, bool) {
		if k == "HOME" {
			return "/nonexistent", true
		}
		return "", false
	})
	if err != nil {
		t.Fatalf("generated config does not load: %v", err)
	}
	got, err := cfg.Token()
	if err != nil || got != strings.TrimSpace(string(tok)) {
		t.Errorf("config token = %q, %v; file has %q", got, err, tok)
	}
	if cfg.Store.Path != filepath.Join(dir, "state.db") || cfg.Sandbox.ToolDir != filepath.Join(dir, "tools") {
		t.Errorf("config paths not under %s: %s %s", dir, cfg.Store.Path, cfg.Sandbox.ToolDir)
	}
}

func TestInitIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(context.Background(), dir, nil); err != nil {
		t.Fatal(err)
	}
	before := map[string][]byte{}
	for _, f := range []string{"config.toml", "token", "master.key"} {
		before[f], _ = os.ReadFile(filepath.Join(dir, f))
	}
	// A user edit survives a second init.
	cfgPath := filepath.Join(dir, "config.toml")
	edited := append(before["config.toml"], []byte("\n# my edit\n")...)
	os.WriteFile(cfgPath, edited, 0o600)
	before["config.toml"] = edited
	os.Chmod(filepath.Join(dir, "token"), 0o644)

	res, err := Init(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Created() {
		t.Errorf("second Init created something: %+v", res.Items)
	}
	for f, b := range before {
		after, _ := os.ReadFile(filepath.Join(dir, f))
		if string(after) != string(b) {
			t.Errorf("%s changed on second init", f)
		}
	}
	var warned bool
	for _, it := range res.Items {
		if strings.HasSuffix(it.Path, "token") && strings.Contains(it.Warning, "chmod 600") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("a world-readable token file was not reported: %+v", res.Items)
	}
	if st, _ := os.Stat(filepath.Join(dir, "token")); st.Mode().Perm() != 0o644 {
		t.Errorf("init changed the mode of an existing file")
	}
}

func TestInitRefusesWrongKinds(t *testing.T) {
	dir := t.TempDir()
	// A file where a directory belongs.
	os.WriteFile(filepath.Join(dir, "tools"), []byte("x"), 0o600)
	if _, err := Init(context.Background(), dir, nil); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file in place of tools/: err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "tools")); string(b) != "x" {
		t.Error("init overwrote a file")
	}
}

func TestInitUnwritableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores directory permissions; use a path under a regular file instead.
		parent := filepath.Join(t.TempDir(), "file")
		os.WriteFile(parent, nil, 0o600)
		if _, err := Init(context.Background(), filepath.Join(parent, "cb"), nil); err == nil {
			t.Fatal("Init under a regular file succeeded")
		}
		return
	}
	parent := t.TempDir()
	os.Chmod(parent, 0o500)
	t.Cleanup(func() { os.Chmod(parent, 0o700) })
	if _, err := Init(context.Background(), filepath.Join(parent, "cb"), nil); err == nil {
		t.Fatal("Init in a read-only directory succeeded")
	}
}

func TestInitRunsInstaller(t *testing.T) {
	dir := t.TempDir()
	var gotDir string
	res, err := Init(context.Background(), dir, func(toolDir string) ([]string, error) {
		gotDir = toolDir
		p := filepath.Join(toolDir, "echo.wasm")
		return []string{p}, os.WriteFile(p, []byte("\x00asm"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if gotDir != filepath.Join(dir, "tools") {
		t.Errorf("installer got %q", gotDir)
	}
	if res.Items[len(res.Items)-1].Path != filepath.Join(dir, "tools", "echo.wasm") {
		t.Errorf("installed file not reported: %+v", res.Items)
	}
}

// TestWriteNewIsWholeOrAbsent reads a file while writeNew creates it, as a client
// command reads config.toml while the first `serve` writes it: the reader sees no
// file or the whole file, never an empty or partial one. Two writers racing for
// the same path end with one file, one of them reporting it created, and no
// temporary file left behind.
func TestWriteNewIsWholeOrAbsent(t *testing.T) {
	dir := t.TempDir()
	content := []byte(strings.Repeat("x", 256<<10))
	for i := range 40 {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		stop := make(chan struct{})
		bad := make(chan int, 1)
		go func() {
			defer close(bad)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if b, err := os.ReadFile(p); err == nil && len(b) != len(content) {
					bad <- len(b)
					return
				}
			}
		}()
		var r1, r2 Result
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, r := range []*Result{&r1, &r2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[j] = r.writeNew(p, content)
			}()
		}
		wg.Wait()
		close(stop)
		if n, ok := <-bad; ok {
			t.Fatalf("a reader saw %s with %d of %d bytes", p, n, len(content))
		}
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if got := r1.Created() || r2.Created(); !got || (r1.Created() && r2.Created()) {
			t.Fatalf("created by first: %v, by second: %v; want exactly one", r1.Created(), r2.Created())
		}
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 || st.Size() != int64(len(content)) {
			t.Fatalf("%s: %v, %v", p, st, err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
