package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/watch"
)

// ManifestStore persists registered manifests (implemented by *store.DB).
type ManifestStore interface {
	// PutToolManifest stores the manifest JSON of a tool and reports whether it is new.
	PutToolManifest(ctx context.Context, name string, manifest json.RawMessage) (created bool, err error)
	// ToolManifests returns every stored manifest by tool name.
	ToolManifests(ctx context.Context) (map[string]json.RawMessage, error)
}

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	// Engine compiles and runs the tools. Required; the registry does not close it.
	Engine *Engine
	// Dir holds <name>.wasm and optional <name>.json manifests (not recursive).
	Dir string
	// Store persists registered manifests; nil keeps them in memory only.
	Store ManifestStore
	// Watch reloads the directory when it changes (internal/watch: also when the
	// directory appears, or is replaced). The watch starts before the first read of
	// the directory, so a module written during the initial load is loaded too.
	Watch bool
	// Debounce is the quiet time after the last change before a reload (the
	// trailing edge of a burst of events). Default 250ms.
	Debounce time.Duration
	// OnChange is called, outside any lock, after the set of loaded tools or one of
	// their manifests changed (for MCP's tools/list_changed). It must not block long.
	OnChange func()
	// MaxModuleBytes refuses larger .wasm files. Default 64 MiB.
	MaxModuleBytes int64
	// Logger receives load reports; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for LoadedAt; nil means time.Now.
	Now func() time.Time

	// afterScan, in tests, runs in each reload after the directory was read.
	afterScan func()
}

// Registry holds the loaded tools. Reads are lock-free (an atomically swapped map);
// loads are serialised.
type Registry struct {
	cfg RegistryConfig
	log *slog.Logger

	tools atomic.Pointer[map[string]*entry]

	// failed holds the failures of the last reload by tool name, each with the
	// digest of the module that failed (Status).
	failed atomic.Pointer[map[string]api.ToolLoadError]
	// pending is set by the watcher when it sees a change, cleared when the reload
	// for it starts; reloading counts the reloads in progress.
	pending   atomic.Bool
	reloading atomic.Int32

	loadMu     sync.Mutex // serialises loads; guards registered
	registered map[string]registration

	cancel    context.CancelFunc // stops a reload started by the watcher
	watcher   *watch.Watcher     // nil without cfg.Watch
	closeOnce sync.Once
}

type registration struct {
	manifest *api.ToolManifest
	raw      []byte // canonical JSON
}

// entry is one loaded tool.
type entry struct {
	mod      *Module
	info     api.ToolInfo
	manifest []byte // canonical JSON of the effective manifest
}

// NewRegistry loads the registered manifests and the tool directory (bad modules are
// reported in the log and skipped), then starts the watcher when cfg.Watch is set.
func NewRegistry(ctx context.Context, cfg RegistryConfig) (*Registry, error) {
	if cfg.Engine == nil {
		return nil, errors.New("wasm: registry needs an engine")
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 250 * time.Millisecond
	}
	if cfg.MaxModuleBytes <= 0 {
		cfg.MaxModuleBytes = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Registry{cfg: cfg, log: cfg.Logger, registered: map[string]registration{}}
	empty := map[string]*entry{}
	r.tools.Store(&empty)
	noFailures := map[string]api.ToolLoadError{}
	r.failed.Store(&noFailures)

	if cfg.Store != nil {
		stored, err := cfg.Store.ToolManifests(ctx)
		if err != nil {
			return nil, fmt.Errorf("wasm: read registered manifests: %w", err)
		}
		for name, raw := range stored {
			m, err := ParseManifest(raw)
			if err != nil || m.Tool.Name != name {
				r.log.Warn("wasm: ignoring an invalid registered manifest", "tool", name, "err", err)
				continue
			}
			r.registered[name] = registration{manifest: m, raw: canonical(m)}
		}
	}
	if cfg.Watch {
		// Watch first: a change during the initial load then starts a reload after it.
		if err := r.startWatcher(); err != nil {
			r.log.Warn("wasm: hot reload disabled", "dir", cfg.Dir, "err", err)
		}
	}
	if _, err := r.Reload(ctx); err != nil {
		r.Close(ctx)
		return nil, err
	}
	return r, nil
}

// Close stops the watcher (and waits for it) and unloads every tool. Idempotent.
func (r *Registry) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		if r.watcher != nil {
			r.cancel()
			r.watcher.Close()
		}
		r.loadMu.Lock()
		defer r.loadMu.Unlock()
		r.closeTools(ctx)
	})
	return nil
}

func (r *Registry) closeTools(ctx context.Context) {
	old := r.tools.Swap(&map[string]*entry{})
	for _, e := range *old {
		e.mod.Close(ctx)
	}
}

// List returns the loaded tools, sorted by name.
func (r *Registry) List() []api.ToolInfo {
	m := *r.tools.Load()
	out := make([]api.ToolInfo, 0, len(m))
	for _, e := range m {
		out = append(out, e.info)
	}
	slices.SortFunc(out, func(a, b api.ToolInfo) int { return strings.Compare(a.Tool.Name, b.Tool.Name) })
	return out
}

// Get returns a loaded tool.
func (r *Registry) Get(name string) (api.ToolInfo, bool) {
	e, ok := (*r.tools.Load())[name]
	if !ok {
		return api.ToolInfo{}, false
	}
	return e.info, true
}

// Execute runs one call of a loaded tool. Errors are those of Module.Execute, and
// tool_not_found for an unknown tool.
func (r *Registry) Execute(ctx context.Context, req api.ExecuteRequest, requestID string) (*Result, error) {
	call := Call{RequestID: requestID, Params: req.Params, Capabilities: req.Capabilities}
	for attempt := 0; ; attempt++ {
		e, ok := (*r.tools.Load())[req.Tool]
		if !ok {
			if ValidateName(req.Tool) != nil {
				return nil, api.Errorf(api.CodeToolNotFound, "tool not found")
			}
			return nil, api.Errorf(api.CodeToolNotFound, "tool %q not found", req.Tool)
		}
		res, err := e.mod.Execute(ctx, call)
		// A reload may have replaced the module between the lookup and the call:
		// look it up again.
		if attempt < 3 && errCodeIs(err, api.CodeToolNotFound) {
			continue
		}
		return res, err
	}
}

// Status says whether the module now in the tool directory as name.wasm is the one
// loaded, or why it is not: its digest, the loaded module's, the last load error of
// the tool (with the digest of the module that failed) and whether a reload is
// pending or running. It never waits for a reload.
func (r *Registry) Status(name string) api.ToolStatus {
	st := api.ToolStatus{Name: name, Watching: r.watcher != nil}
	if ValidateName(name) != nil {
		return st
	}
	// Read the loading state first: a load that ends after it is seen by the reads below.
	st.Loading = r.pending.Load() || r.reloading.Load() > 0
	if e, ok := (*r.tools.Load())[name]; ok {
		st.SHA256 = e.info.SHA256
		at := e.info.LoadedAt
		st.LoadedAt = &at
	}
	if f, ok := (*r.failed.Load())[name]; ok {
		st.LoadError = &f
	}
	st.FileSHA256, _ = fileDigest(filepath.Join(r.cfg.Dir, name+".wasm"))
	return st
}

// fileDigest returns the hex sha256 of a regular file, "" when there is none.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", filepath.Base(path))
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func errCodeIs(err error, code string) bool {
	ae, ok := api.AsError(err)
	return ok && ae.Code == code
}

// Register validates a manifest for a loaded tool, persists it and reloads the tool
// with it. It reports whether the tool had no registered manifest before. Errors:
// invalid_request (bad manifest), tool_not_found (the module is not loaded).
func (r *Registry) Register(ctx context.Context, m *api.ToolManifest) (created bool, err error) {
	if m == nil {
		return false, api.Errorf(api.CodeInvalidRequest, "missing manifest")
	}
	mc := *m
	if err := ValidateManifest(&mc); err != nil {
		return false, err
	}
	name := mc.Tool.Name
	if _, ok := r.Get(name); !ok {
		return false, api.Errorf(api.CodeToolNotFound, "tool %q not loaded: register only loaded tools", name)
	}
	raw := canonical(&mc)
	r.loadMu.Lock()
	if r.cfg.Store != nil {
		created, err = r.cfg.Store.PutToolManifest(ctx, name, raw)
		if err != nil {
			r.loadMu.Unlock()
			return false, fmt.Errorf("wasm: persist manifest of %s: %w", name, err)
		}
	} else {
		_, had := r.registered[name]
		created = !had
	}
	r.registered[name] = registration{manifest: &mc, raw: raw}
	resp, changed := r.reloadLocked(ctx)
	r.loadMu.Unlock()
	if changed {
		r.notify()
	}
	// The tool is compiled again with its new manifest: say so if that failed
	// (a module over a limit, or a manifest whose memory limit is below its start).
	for _, f := range resp.Failed {
		if f.Name == name && f.Code != "" {
			return created, &api.Error{Code: f.Code, Message: "manifest registered, but the tool did not load: " + f.Error}
		}
	}
	return created, nil
}

// Reload rescans the directory: new and changed modules and manifests are compiled,
// removed ones unloaded, unchanged ones kept; the new set replaces the old one
// atomically. Files that cannot be loaded are reported and skipped.
func (r *Registry) Reload(ctx context.Context) (api.ToolReloadResponse, error) {
	r.loadMu.Lock()
	resp, changed := r.reloadLocked(ctx)
	r.loadMu.Unlock()
	if changed {
		r.notify()
	}
	return resp, nil
}

func (r *Registry) notify() {
	if r.cfg.OnChange != nil {
		r.cfg.OnChange()
	}
}

// reloadLocked does a Reload; loadMu is held. It reports whether the set changed.
func (r *Registry) reloadLocked(ctx context.Context) (api.ToolReloadResponse, bool) {
	r.reloading.Add(1)
	defer r.reloading.Add(-1)
	resp := api.ToolReloadResponse{Tools: []string{}, Failed: []api.ToolLoadError{}}
	old := *r.tools.Load()
	next := map[string]*entry{}
	failed := map[string]api.ToolLoadError{}
	fail := func(name, file, digest string, err error) {
		le := api.ToolLoadError{Name: name, File: file, Error: err.Error(), SHA256: digest}
		if ae, ok := api.AsError(err); ok {
			le.Code = ae.Code
		}
		resp.Failed = append(resp.Failed, le)
		if name != "" && ValidateName(name) == nil {
			failed[name] = le
		}
		r.log.Warn("wasm: tool not loaded", "tool", name, "file", file, "err", err)
	}

	files, err := os.ReadDir(r.cfg.Dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		fail("", r.cfg.Dir, "", err)
	}
	if r.cfg.afterScan != nil {
		r.cfg.afterScan()
	}
	var names []string
	for _, f := range files {
		file := f.Name()
		name, ok := strings.CutSuffix(file, ".wasm")
		if !ok || f.IsDir() {
			continue
		}
		resp.Reloaded++
		if err := ValidateName(name); err != nil {
			fail(name, file, "", errors.New("invalid tool name: must be 1-64 chars, [a-zA-Z0-9_-] only"))
			continue
		}
		names = append(names, name)
	}
	// Compile in parallel: compiling a Go-built module takes seconds without a cache.
	entries := make([]*entry, len(names))
	digests := make([]string, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			entries[i], digests[i], errs[i] = r.load(ctx, name, old[name])
		})
	}
	wg.Wait()
	for i, name := range names {
		if errs[i] != nil {
			fail(name, name+".wasm", digests[i], errs[i])
			continue
		}
		next[name] = entries[i]
	}

	changed := len(next) != len(old)
	for name, e := range next {
		if old[name] != e {
			changed = true
		}
		resp.Tools = append(resp.Tools, name)
	}
	slices.Sort(resp.Tools)
	r.tools.Store(&next)
	r.failed.Store(&failed)
	for name, e := range old {
		if next[name] != e {
			e.mod.Close(ctx)
		}
	}
	return resp, changed
}

// load returns the entry of one tool, reusing prev when neither the module nor the
// effective manifest changed, and the module's digest (also when it fails, if the
// file could be read). loadMu is held (it only reads r.registered).
func (r *Registry) load(ctx context.Context, name string, prev *entry) (*entry, string, error) {
	path := filepath.Join(r.cfg.Dir, name+".wasm")
	if err := ctx.Err(); err != nil {
		return nil, "", err // shutting down: do not start another compile
	}
	bin, err := readCapped(path, r.cfg.MaxModuleBytes)
	if err != nil {
		digest, _ := fileDigest(path) // a module over the limit still says which one failed
		return nil, digest, err
	}
	sum := sha256.Sum256(bin)
	digest := hex.EncodeToString(sum[:])
	manifest, source, err := r.manifestFor(name)
	if err != nil {
		return nil, digest, err
	}
	raw := canonical(manifest)
	if prev != nil && prev.info.SHA256 == digest && bytes.Equal(prev.manifest, raw) && prev.info.Source == source {
		return prev, digest, nil
	}
	// Checked and compiled now (the cache is then warm), decoded again on the first
	// call from the file, which must still be the same module.
	mod, err := r.cfg.Engine.CompileLazy(ctx, name, bin, manifest, func() ([]byte, error) {
		return readCapped(path, r.cfg.MaxModuleBytes)
	})
	if err != nil {
		return nil, digest, err
	}
	return &entry{
		mod:      mod,
		manifest: raw,
		info: api.ToolInfo{
			ToolManifest: *manifest,
			Source:       source,
			SHA256:       digest,
			Reactor:      mod.Reactor(),
			LoadedAt:     r.cfg.Now().UTC(),
		},
	}, digest, nil
}

// manifestFor returns a tool's effective manifest: the registered one, else
// <name>.json, else the deny-all default.
func (r *Registry) manifestFor(name string) (*api.ToolManifest, string, error) {
	if reg, ok := r.registered[name]; ok {
		return reg.manifest, api.ToolSourceRegistered, nil
	}
	path := filepath.Join(r.cfg.Dir, name+".json")
	b, err := readCapped(path, 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultManifest(name), api.ToolSourceDefault, nil
	}
	if err != nil {
		return nil, "", err
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, "", fmt.Errorf("manifest %s.json: %w", name, err)
	}
	if m.Tool.Name != name {
		return nil, "", fmt.Errorf("manifest %s.json names the tool %q", name, m.Tool.Name)
	}
	return m, api.ToolSourceFile, nil
}

func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", filepath.Base(path))
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", filepath.Base(path), limit)
	}
	b := make([]byte, 0, st.Size())
	buf := bytes.NewBuffer(b)
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", filepath.Base(path), limit)
	}
	return buf.Bytes(), nil
}

func canonical(m *api.ToolManifest) []byte {
	b, _ := json.Marshal(m)
	return b
}

// startWatcher watches the directory and reloads on the trailing edge of each burst
// of changes to .wasm or .json files.
func (r *Registry) startWatcher() error {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := watch.New(watch.Config{
		Dir:      r.cfg.Dir,
		Debounce: r.cfg.Debounce,
		Match: func(name string) bool {
			return strings.HasSuffix(name, ".wasm") || strings.HasSuffix(name, ".json")
		},
		OnEvent: func(string) { r.pending.Store(true) },
		OnChange: func() {
			r.pending.Store(false) // before the reload reads the directory
			resp, _ := r.Reload(ctx)
			r.log.Info("wasm: tool directory reloaded", "tools", len(resp.Tools), "failed", len(resp.Failed))
		},
		Logger: r.log,
	})
	if err != nil {
		cancel()
		return err
	}
	r.watcher, r.cancel = w, cancel
	return nil
}
