package sandbox

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// countingCloser counts its Close calls.
type countingCloser struct{ n atomic.Int32 }

func (c *countingCloser) Close() error { c.n.Add(1); return nil }

func TestHostResourcesReleaseIsIdempotent(t *testing.T) {
	newRes := func(t *testing.T) (*hostResources, string, *countingCloser, *countingCloser) {
		dir := filepath.Join(t.TempDir(), "clawbox-x")
		if err := makeSocketDir(dir, "tok"); err != nil {
			t.Fatal(err)
		}
		r := newHostResources("clawbox-x", dir, slog.New(slog.DiscardHandler))
		door, sup := &countingCloser{}, &countingCloser{}
		r.setDoor(door)
		r.setSupervisor(sup)
		return r, dir, door, sup
	}
	t.Run("release many times, concurrently", func(t *testing.T) {
		r, dir, door, sup := newRes(t)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(r.release)
		}
		wg.Wait()
		r.release()
		if door.n.Load() != 1 || sup.n.Load() != 1 {
			t.Errorf("door closed %d times, supervisor link %d times; want 1 each", door.n.Load(), sup.n.Load())
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket dir after release: %v", err)
		}
		if r.socketDir() != "" {
			t.Errorf("socketDir() = %q after release", r.socketDir())
		}
	})
	t.Run("detach keeps the directory, release after it removes it", func(t *testing.T) {
		r, dir, door, sup := newRes(t)
		r.detach()
		r.detach()
		if door.n.Load() != 1 || sup.n.Load() != 1 {
			t.Errorf("door closed %d times, supervisor link %d times; want 1 each", door.n.Load(), sup.n.Load())
		}
		if _, err := os.Stat(filepath.Join(dir, "token")); err != nil {
			t.Errorf("detach removed the token file: %v", err)
		}
		r.release()
		if door.n.Load() != 1 || sup.n.Load() != 1 {
			t.Errorf("release after detach closed again: door %d, supervisor link %d", door.n.Load(), sup.n.Load())
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket dir after release: %v", err)
		}
	})
	t.Run("a door handed over after release is closed at once", func(t *testing.T) {
		r, _, _, _ := newRes(t)
		r.release()
		late := &countingCloser{}
		if r.setDoor(late) {
			t.Error("setDoor accepted a door after release")
		}
		r.release()
		if late.n.Load() != 1 {
			t.Errorf("late door closed %d times, want 1", late.n.Load())
		}
	})
}
