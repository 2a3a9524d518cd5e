package watch_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/clawbox/clawbox/internal/poll"
	"github.com/clawbox/clawbox/internal/watch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an OnChange that lists the directory each time it runs, so a test can
// wait for a callback that ran after a change was made.
type recorder struct {
	dir   string
	mu    sync.Mutex
	calls int
	seen  []string // the directory's names at the last call
	evs   []string // names passed to OnEvent
}

func (r *recorder) onChange() {
	ents, _ := os.ReadDir(r.dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.seen = names
}

func (r *recorder) onEvent(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, name)
}

// waitSeen waits until a callback has run that saw name in the directory.
func (r *recorder) waitSeen(t *testing.T, name string) {
	t.Helper()
	poll.Until(t, poll.Short, "a change callback that sees "+name, func() (bool, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return slices.Contains(r.seen, name), fmt.Errorf("%d calls, last saw %v", r.calls, r.seen)
	})
}

func start(t *testing.T, dir string, match func(string) bool) *recorder {
	t.Helper()
	r := &recorder{dir: dir}
	w, err := watch.New(watch.Config{
		Dir: dir, Debounce: 20 * time.Millisecond, Match: match, OnChange: r.onChange, OnEvent: r.onEvent,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := w.Close(); err != nil { // idempotent
			t.Errorf("second Close: %v", err)
		}
	})
	return r
}

func write(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestChangeIsReported(t *testing.T) {
	dir := t.TempDir()
	r := start(t, dir, nil)
	write(t, filepath.Join(dir, "a.wasm"))
	r.waitSeen(t, "a.wasm")
	// A rename into place (how tools and the store are written) counts too.
	write(t, filepath.Join(dir, ".tmp"))
	if err := os.Rename(filepath.Join(dir, ".tmp"), filepath.Join(dir, "b.wasm")); err != nil {
		t.Fatal(err)
	}
	r.waitSeen(t, "b.wasm")
}

func TestMatchFiltersEvents(t *testing.T) {
	dir := t.TempDir()
	r := start(t, dir, func(name string) bool { return strings.HasSuffix(name, ".wasm") })
	write(t, filepath.Join(dir, "ignored.txt"))
	write(t, filepath.Join(dir, "a.wasm"))
	r.waitSeen(t, "a.wasm")
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.evs, "ignored.txt") || !slices.Contains(r.evs, "a.wasm") {
		t.Errorf("OnEvent got %v, want a.wasm and not ignored.txt", r.evs)
	}
	// Only relevant events start a callback, and a burst gives at most one per event.
	if r.calls == 0 || r.calls > len(r.evs) {
		t.Errorf("%d callbacks for %d relevant events", r.calls, len(r.evs))
	}
}

func TestDirectoryMissingAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	r := start(t, dir, nil)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a.wasm"))
	r.waitSeen(t, "a.wasm")
	write(t, filepath.Join(dir, "b.wasm")) // and it is watched from then on
	r.waitSeen(t, "b.wasm")
}

func TestDirectoryRemovedAndRecreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tools")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := start(t, dir, nil)
	write(t, filepath.Join(dir, "a.wasm"))
	r.waitSeen(t, "a.wasm")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, poll.Short, "a callback after the directory went", func() (bool, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.seen) == 0, fmt.Errorf("last saw %v", r.seen)
	})
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "b.wasm"))
	r.waitSeen(t, "b.wasm")
	write(t, filepath.Join(dir, "c.wasm"))
	r.waitSeen(t, "c.wasm")
}

func TestDirectoryReplacedByRename(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "tools")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := start(t, dir, nil)
	// A new directory is prepared beside it and renamed over it (a deploy).
	next := filepath.Join(parent, "tools.new")
	if err := os.Mkdir(next, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(next, "a.wasm"))
	if err := os.Rename(dir, filepath.Join(parent, "tools.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, dir); err != nil {
		t.Fatal(err)
	}
	r.waitSeen(t, "a.wasm")
	write(t, filepath.Join(dir, "b.wasm"))
	r.waitSeen(t, "b.wasm")
}

func TestNewRefusesBadConfig(t *testing.T) {
	if _, err := watch.New(watch.Config{OnChange: func() {}}); err == nil {
		t.Error("no directory: no error")
	}
	if _, err := watch.New(watch.Config{Dir: t.TempDir()}); err == nil {
		t.Error("no OnChange: no error")
	}
}
