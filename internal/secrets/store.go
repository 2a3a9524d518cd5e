package secrets

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/secrets/leak"
	"github.com/clawbox/clawbox/internal/watch"
)

// DefaultDebounce is how long the watcher waits after the last change to the store
// file before it reloads it.
const DefaultDebounce = 100 * time.Millisecond

// Config configures a Store. Zero values mean the documented default.
type Config struct {
	// Path of the store file (credentials.enc). Required. Its directory is created
	// 0700 when missing.
	Path string
	// Key is the master key (LoadMasterKey). Required.
	Key MasterKey
	// Logger receives reload failures and warnings; default slog.Default(). No value
	// is ever logged.
	Logger *slog.Logger
	// Debounce is the quiet time after a change before reloading; default
	// DefaultDebounce.
	Debounce time.Duration
	// NoWatch disables live reload (for one-shot use such as the CLI).
	NoWatch bool
	// OnReload, when set, is called by the watcher after each reload it attempts,
	// with nil or the error that made it keep the last good set. It runs on the
	// watcher goroutine and must not block.
	OnReload func(error)
	// Now is the clock for UpdatedAt; default time.Now.
	Now func() time.Time
}

// Store is the encrypted credential store: CRUD on the file, the in-memory set the
// gateway uses (swapped atomically on every change, ours or another process's), and
// the egress methods CheckOutbound, Inject, Redact and RedactJSON. Its methods are
// safe for concurrent use. A nil *Store behaves as an empty store: it knows no
// credential and still scans for the credential patterns.
type Store struct {
	path     string
	key      MasterKey
	phKey    []byte
	log      *slog.Logger
	debounce time.Duration
	onReload func(error)
	now      func() time.Time

	// mu serialises writers of the file (Put, Delete) with the watcher's reload, so
	// the snapshot always reflects the file's latest content.
	mu   sync.Mutex
	snap atomic.Pointer[snapshot]

	watcher *watch.Watcher // nil with NoWatch
}

// snapshot is one immutable credential set.
type snapshot struct {
	entries      []*entry // sorted by name; index = scanner owner
	byName       map[string]int
	placeholders []string // by index; "" unless placeholder mode
	scan         *leak.Scanner
	sum          [32]byte // sha256 of the file it came from; zero when there was none
}

// Open loads the store at cfg.Path (a missing file is an empty store) and, unless
// cfg.NoWatch, starts watching its directory so changes take effect without a
// restart. Close stops the watcher.
func Open(cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("credential store: no path")
	}
	if cfg.Key.IsZero() {
		return nil, ErrNoMasterKey
	}
	s := &Store{
		path:     filepath.Clean(cfg.Path),
		key:      cfg.Key,
		phKey:    cfg.Key.derive(nil, placeholderInfo),
		log:      cfg.Logger,
		debounce: cfg.Debounce,
		onReload: cfg.OnReload,
		now:      cfg.Now,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.debounce <= 0 {
		s.debounce = DefaultDebounce
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return nil, fmt.Errorf("credential store: %w", err)
	}
	s.mu.Lock()
	entries, sum, err := s.readLocked()
	if err == nil {
		s.swapLocked(entries, sum)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("credential store %s: %w", s.path, err)
	}
	if cfg.NoWatch {
		return s, nil
	}
	base := filepath.Base(s.path)
	w, err := watch.New(watch.Config{
		Dir:      filepath.Dir(s.path),
		Debounce: s.debounce,
		Match:    func(name string) bool { return name == base },
		OnChange: func() {
			err := s.reload()
			if s.onReload != nil {
				s.onReload(err)
			}
		},
		Logger: s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("credential store: %w", err)
	}
	s.watcher = w
	return s, nil
}

// PatternsOnly returns the Store of a server without a master key: it holds no
// credential and has no file, so CheckOutbound and the Redact methods look for the
// credential patterns only, Inject injects nothing, and Put and Delete answer
// unavailable. It is a real value, not a nil pointer, so that leak scanning on such
// a server never hangs on a nil check.
func PatternsOnly() *Store {
	s := &Store{log: slog.Default(), now: time.Now}
	s.snap.Store(newSnapshot(nil, nil, [32]byte{}))
	return s
}

// Close stops the watcher and waits for it. It is idempotent and safe on a nil Store.
func (s *Store) Close() error {
	if s == nil || s.watcher == nil {
		return nil
	}
	return s.watcher.Close()
}

// load returns the current snapshot (an empty one for a nil Store).
func (s *Store) load() *snapshot {
	if s == nil {
		return newSnapshot(nil, nil, [32]byte{})
	}
	return s.snap.Load()
}

// List returns every entry without its value, sorted by name.
func (s *Store) List() []api.Credential {
	snap := s.load()
	out := make([]api.Credential, 0, len(snap.entries))
	for _, e := range snap.entries {
		out = append(out, e.public())
	}
	return out
}

// Put creates or replaces the credential name. Validation failures are
// *api.Error with code invalid_request and details naming the field.
func (s *Store) Put(name string, req api.PutCredentialRequest) (api.Credential, error) {
	if s == nil || s.key.IsZero() {
		return api.Credential{}, api.Errorf(api.CodeUnavailable, "credential store is not configured (no master key)")
	}
	e, err := newEntry(name, req, s.now())
	if err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			ae := api.Errorf(api.CodeInvalidRequest, "credential: %s", fe.Error())
			ae.Details = map[string]string{"field": fe.field}
			return api.Credential{}, ae
		}
		return api.Credential{}, err
	}
	err = s.update(func(entries []*entry) ([]*entry, error) {
		i := slices.IndexFunc(entries, func(x *entry) bool { return x.Name == name })
		if i >= 0 {
			entries[i] = e
			return entries, nil
		}
		return append(entries, e), nil
	})
	if err != nil {
		return api.Credential{}, err
	}
	s.log.Info("credential stored", "credential", name, "host", e.Host)
	return e.public(), nil
}

// Delete removes the credential name; an unknown name is a not_found *api.Error.
func (s *Store) Delete(name string) error {
	if s == nil || s.key.IsZero() {
		return api.Errorf(api.CodeUnavailable, "credential store is not configured (no master key)")
	}
	if !nameRE.MatchString(name) {
		// No entry can have this name: answer without touching the files.
		return api.Errorf(api.CodeNotFound, "credential not found: not a valid credential name")
	}
	err := s.update(func(entries []*entry) ([]*entry, error) {
		i := slices.IndexFunc(entries, func(x *entry) bool { return x.Name == name })
		if i < 0 {
			return nil, api.Errorf(api.CodeNotFound, "credential %q not found", name)
		}
		return slices.Delete(entries, i, i+1), nil
	})
	if err != nil {
		return err
	}
	s.log.Info("credential removed", "credential", name)
	return nil
}

// update applies fn to the entries currently in the file (not the in-memory copy, so
// a change written by another process is not lost), writes the result and swaps it in.
func (s *Store) update(fn func([]*entry) ([]*entry, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lockFile(s.path)
	if err != nil {
		return err
	}
	defer unlock()
	entries, _, err := s.readLocked()
	if err != nil {
		// Never overwrite a file we cannot read: it may hold credentials under
		// another key or a newer version.
		s.log.Error("credential store cannot be read; refusing to write it", "path", s.path, "err", err)
		return fmt.Errorf("%w: %w", api.Errorf(api.CodeUnavailable, "credential store cannot be read; see the server log"), err)
	}
	entries, err = fn(entries)
	if err != nil {
		return err
	}
	slices.SortFunc(entries, func(a, b *entry) int { return strings.Compare(a.Name, b.Name) })
	data, err := seal(s.key, entries)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.path, data); err != nil {
		return err
	}
	s.swapLocked(entries, sha256.Sum256(data))
	return nil
}

// readLocked reads and decrypts the file. A missing file is an empty store.
func (s *Store) readLocked() ([]*entry, [32]byte, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, [32]byte{}, nil
	}
	if err != nil {
		return nil, [32]byte{}, err
	}
	entries, err := open(s.key, data)
	if err != nil {
		return nil, [32]byte{}, err
	}
	return entries, sha256.Sum256(data), nil
}

// swapLocked makes entries the current set.
func (s *Store) swapLocked(entries []*entry, sum [32]byte) {
	snap := newSnapshot(entries, s.phKey, sum)
	for _, e := range snap.entries {
		if len(e.Value) < MinSecretLen {
			s.log.Warn("credential value is too short to scan for leaks", "credential", e.Name, "min_length", MinSecretLen)
		}
	}
	s.snap.Store(snap)
}

func newSnapshot(entries []*entry, phKey []byte, sum [32]byte) *snapshot {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b *entry) int { return strings.Compare(a.Name, b.Name) })
	snap := &snapshot{
		entries:      entries,
		byName:       make(map[string]int, len(entries)),
		placeholders: make([]string, len(entries)),
		sum:          sum,
	}
	specs := make([]leak.Secret, len(entries))
	for i, e := range entries {
		snap.byName[e.Name] = i
		if e.Placeholder {
			snap.placeholders[i] = placeholderFor(phKey, e.Name, e.Value)
		}
		specs[i] = leak.Secret{Name: e.Name, Value: e.Value, Placeholder: snap.placeholders[i]}
	}
	snap.scan = leak.New(specs)
	return snap
}

// reload re-reads the file after a change. A file that cannot be read or decrypted
// is logged and the last good set kept.
func (s *Store) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, sum, err := s.readLocked()
	if err != nil {
		s.log.Warn("credential store changed but cannot be loaded; keeping the last good set", "path", s.path, "err", err)
		return err
	}
	if sum == s.snap.Load().sum {
		return nil
	}
	s.swapLocked(entries, sum)
	s.log.Info("credential store reloaded", "path", s.path, "credentials", len(entries))
	return nil
}
