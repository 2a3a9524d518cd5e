// Package watch calls a function after the contents of a directory change: the one
// fsnotify loop of clawbox (the tool directory, the credential store's directory).
//
// Changes are debounced on their trailing edge: after a burst of events the callback
// runs once, when the directory has been quiet for the debounce time. The watcher
// survives the directory being removed, renamed away or not existing yet: it then
// checks for it at the debounce interval (at least every RearmInterval) and, once
// the directory is back, watches it again and reports a change, since its contents
// may be new. A watcher error (events lost, such as an inotify queue overflow) is
// reported as a change too.
//
// The callback runs on the watcher's goroutine, never twice at once; Close stops the
// goroutine and waits for it, so no callback runs after Close returns.
package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is the quiet time used when Config.Debounce is zero.
const DefaultDebounce = 100 * time.Millisecond

// RearmInterval is the longest time between two checks for a missing directory.
const RearmInterval = time.Second

// Config configures a Watcher.
type Config struct {
	// Dir is the directory to watch (not recursive). Required.
	Dir string
	// Debounce is the quiet time after the last relevant event before OnChange
	// runs. Default DefaultDebounce.
	Debounce time.Duration
	// Match reports whether an event on the base name name is relevant; nil means
	// every name. Events on Dir itself are always handled.
	Match func(name string) bool
	// OnEvent, when set, is called on the watcher goroutine for each relevant event
	// (before the debounce), with the base name. It must not block.
	OnEvent func(name string)
	// OnChange is called on the watcher goroutine once a burst of relevant events
	// has gone quiet, after the directory reappeared, and after a watcher error.
	// Required.
	OnChange func()
	// Logger receives watcher errors; nil means slog.Default().
	Logger *slog.Logger
}

// Watcher watches one directory. Close it to stop.
type Watcher struct {
	cfg  Config
	dir  string
	w    *fsnotify.Watcher
	stop chan struct{}
	done chan struct{}
	once sync.Once

	armedAs fs.FileInfo // the directory the watch is on; loop goroutine only once started
}

// New starts watching cfg.Dir. A missing directory is not an error: it is watched
// once it exists. New fails only when the system's watcher cannot be created or the
// directory exists and cannot be watched.
func New(cfg Config) (*Watcher, error) {
	if cfg.Dir == "" {
		return nil, errors.New("watch: no directory")
	}
	if cfg.OnChange == nil {
		return nil, errors.New("watch: no OnChange")
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Match == nil {
		cfg.Match = func(string) bool { return true }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", cfg.Dir, err)
	}
	w := &Watcher{cfg: cfg, dir: filepath.Clean(cfg.Dir), w: fw, stop: make(chan struct{}), done: make(chan struct{})}
	armed, err := w.arm()
	if err != nil {
		fw.Close()
		return nil, fmt.Errorf("watch %s: %w", cfg.Dir, err)
	}
	go w.loop(armed)
	return w, nil
}

// Close stops the watcher and waits for its goroutine (and a callback in progress).
// It is idempotent.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		err = w.w.Close()
	})
	return err
}

// arm adds the directory to the fsnotify watcher. It reports false, and no error,
// when the directory does not exist (or is not a directory) yet.
func (w *Watcher) arm() (bool, error) {
	st, err := os.Stat(w.dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !st.IsDir()) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := w.w.Add(w.dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // removed between the stat and the add
		}
		return false, err
	}
	w.armedAs = st
	return true, nil
}

func (w *Watcher) loop(armed bool) {
	defer close(w.done)
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	rearmEvery := min(w.cfg.Debounce, RearmInterval)
	rearm := time.NewTicker(rearmEvery)
	defer rearm.Stop()
	if armed {
		rearm.Stop()
	}
	disarm := func() {
		if !armed {
			return
		}
		armed = false
		_ = w.w.Remove(w.dir) // usually gone already with the directory
		rearm.Reset(rearmEvery)
	}
	for {
		select {
		case <-w.stop:
			return
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == w.dir {
				if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					disarm()
					debounce.Reset(w.cfg.Debounce) // its contents are gone
				}
				continue
			}
			name := filepath.Base(ev.Name)
			if !w.cfg.Match(name) {
				continue
			}
			if w.cfg.OnEvent != nil {
				w.cfg.OnEvent(name)
			}
			debounce.Reset(w.cfg.Debounce) // trailing edge: wait for quiet
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			w.cfg.Logger.Warn("watch: events may have been lost", "dir", w.dir, "err", err)
			debounce.Reset(w.cfg.Debounce)
		case <-rearm.C:
			ok, err := w.arm()
			if err != nil {
				w.cfg.Logger.Warn("watch: cannot watch the directory", "dir", w.dir, "err", err)
				continue
			}
			if ok {
				armed = true
				rearm.Stop()
				debounce.Reset(w.cfg.Debounce)
			}
		case <-debounce.C:
			if armed {
				// The watch follows the directory's inode: if another directory now
				// has its path (replaced by a rename), watch that one instead.
				if st, err := os.Stat(w.dir); err != nil || !os.SameFile(st, w.armedAs) {
					disarm()
					if ok, _ := w.arm(); ok {
						armed = true
						rearm.Stop()
					}
				}
			}
			w.cfg.OnChange()
		}
	}
}
