package wasm

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/clawbox/clawbox/api"
	"github.com/tetratelabs/wazero"
	wapi "github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Engine compiles and runs tools. It is safe for concurrent use; Close releases it.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	rt    wazero.Runtime
	cache wazero.CompilationCache

	compiling chan struct{} // a slot per compilation allowed at once

	ctx    context.Context // canceled by Close; parent of the pools' work
	cancel context.CancelFunc
	wg     sync.WaitGroup // pool goroutines

	closeOnce sync.Once
	closeErr  error
}

// NewEngine creates the wazero runtime (with the on-disk compilation cache when
// cfg.CacheDir is set), WASI preview 1 and the clawbox host module.
func NewEngine(ctx context.Context, cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	// Each instance's memory is limited by its limitedAllocator, so the runtime keeps
	// wasm32's full 4 GiB page limit: every memory.grow then reaches the allocator,
	// which refuses it past the tool's limit and records that it did.
	rc := wazero.NewRuntimeConfig().WithCloseOnContextDone(true)
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("wasm: cache dir: %w", err)
		}
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm: cache dir %s: %w", cfg.CacheDir, err)
		}
		cache = c
		rc = rc.WithCompilationCache(c)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	fail := func(err error) (*Engine, error) {
		rt.Close(ctx)
		if cache != nil {
			cache.Close(ctx)
		}
		return nil, fmt.Errorf("wasm: %w", err)
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return fail(err)
	}
	if err := instantiateHostModule(ctx, rt); err != nil {
		return fail(err)
	}
	ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &Engine{
		cfg: cfg, log: cfg.Logger, rt: rt, cache: cache,
		compiling: make(chan struct{}, cfg.MaxConcurrentCompiles),
		ctx:       ectx, cancel: cancel,
	}, nil
}

// Close stops every pool, closes all modules and instances and the runtime. It is
// idempotent.
func (e *Engine) Close(ctx context.Context) error {
	e.closeOnce.Do(func() {
		e.cancel()
		e.wg.Wait()
		e.closeErr = e.rt.Close(ctx)
		if e.cache != nil {
			if err := e.cache.Close(ctx); err != nil && e.closeErr == nil {
				e.closeErr = err
			}
		}
	})
	return e.closeErr
}

// Module is one compiled tool with its resolved limits (and, for a reactor, its pool
// of ready instances). Close it when the tool is unloaded; calls in flight finish.
type Module struct {
	e        *Engine
	name     string
	manifest *api.ToolManifest
	reactor  bool
	lim      limits
	pool     *pool // nil for command modules or when snapshots are off

	// reread, for a module compiled lazily, reads its binary again for the first
	// call; digest is the binary's sha256, which the bytes read must have.
	reread   func() ([]byte, error)
	digest   [sha256.Size]byte
	codeLock chan struct{} // capacity 1: held while the first call compiles

	mu       sync.Mutex // guards refs, closed, compiled and form
	refs     int
	closed   bool
	compiled wazero.CompiledModule // nil until the first call of a lazy module
	form     *snapshotForm         // how compiled was rewritten; nil: it was not
}

// Name returns the tool's name.
func (m *Module) Name() string { return m.name }

// Reactor reports whether the module is served from pre-initialised instances.
func (m *Module) Reactor() bool { return m.reactor }

// Manifest returns the manifest the module was compiled with.
func (m *Module) Manifest() *api.ToolManifest { return m.manifest }

// Compile compiles a tool. manifest may be nil (a deny-all default is used). The
// module must import only WASI preview 1 and the clawbox host functions and export
// either _initialize and clawbox_run (reactor) or _start (command).
//
// Before wazero sees it, the module's structure is checked against the configured
// ModuleLimits: a module over one is refused with module_limit_exceeded (details
// name the limit), one that cannot be read with invalid_module. Compilations then
// wait for one of MaxConcurrentCompiles slots and are bounded by CompileTimeout.
func (e *Engine) Compile(ctx context.Context, name string, bin []byte, manifest *api.ToolManifest) (*Module, error) {
	return e.compileModule(ctx, name, bin, manifest, nil)
}

// CompileLazy checks and compiles a tool like Compile (which also fills the
// compilation cache), then releases the compiled code: the tool's first call
// compiles it again, from the bytes reread returns, outside the call's time limit.
// A tool that is never called holds neither its decoded module nor its code.
// reread must return the same bytes (same sha256); if it fails or the module
// changed, the call fails with unavailable (the tool directory's reload loads the
// new module).
func (e *Engine) CompileLazy(ctx context.Context, name string, bin []byte, manifest *api.ToolManifest, reread func() ([]byte, error)) (*Module, error) {
	if reread == nil {
		return nil, errors.New("wasm: CompileLazy needs reread")
	}
	return e.compileModule(ctx, name, bin, manifest, reread)
}

func (e *Engine) compileModule(ctx context.Context, name string, bin []byte, manifest *api.ToolManifest, reread func() ([]byte, error)) (*Module, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if manifest == nil {
		manifest = DefaultManifest(name)
	}
	lim := e.cfg.toolLimits(manifest)
	shape, err := inspectModule(bin, e.cfg.Modules)
	if err != nil {
		return nil, fmt.Errorf("tool %s: %w", name, err)
	}
	if shape.memoryMinPages > lim.memoryPages {
		return nil, fmt.Errorf("tool %s: %w", name, limitError("sandbox.max_memory_mb", uint64(shape.memoryMinPages/16), int(lim.memoryPages/16),
			fmt.Sprintf("needs %d MiB of memory at start", shape.memoryMinPages/16)))
	}
	compiled, form, err := e.compile(ctx, bin)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", name, err)
	}
	m := &Module{e: e, name: name, manifest: manifest, compiled: compiled, form: form, lim: lim, codeLock: make(chan struct{}, 1)}
	if err := m.check(); err != nil {
		compiled.Close(ctx)
		return nil, fmt.Errorf("tool %s: %w", name, err)
	}
	if reread != nil {
		m.reread, m.digest = reread, sha256.Sum256(bin)
		m.compiled, m.form = nil, nil
		if err := compiled.Close(ctx); err != nil {
			return nil, fmt.Errorf("tool %s: %w", name, err)
		}
	}
	if m.reactor && e.cfg.PoolSize > 0 {
		m.pool = newPool(m, e.cfg.PoolSize, e.cfg.PoolIdleTimeout, e.cfg.timer)
	}
	return m, nil
}

// compile compiles bin in its snapshot form when it has one (see snapshotForm,
// returned; nil when bin is compiled as it is), in a compilation slot, under
// CompileTimeout.
func (e *Engine) compile(ctx context.Context, bin []byte) (wazero.CompiledModule, *snapshotForm, error) {
	var form *snapshotForm
	f, ok, err := newSnapshotForm(bin)
	if err != nil {
		return nil, nil, malformed("%v", err)
	}
	if ok {
		form, bin = &f, f.bin
	}
	select {
	case e.compiling <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, context.Cause(ctx)
	case <-e.ctx.Done():
		return nil, nil, errors.New("the wasm engine is closed")
	}
	defer func() { <-e.compiling }()
	cctx, cancel := context.WithTimeoutCause(ctx, e.cfg.CompileTimeout, errCompileTimeout)
	defer cancel()
	// With more than one worker wazero checks the context between functions; a
	// single-worker compilation would not notice the deadline at all.
	cctx = experimental.WithCompilationWorkers(cctx, max(2, runtime.GOMAXPROCS(0)))
	compiled, err := e.rt.CompileModule(cctx, bin)
	if err != nil && errors.Is(context.Cause(cctx), errCompileTimeout) {
		return nil, nil, &api.Error{
			Code:    api.CodeModuleLimitExceeded,
			Message: fmt.Sprintf("compiling the module took longer than %s (sandbox.compile_timeout_ms)", e.cfg.CompileTimeout),
			Details: map[string]any{"limit": "sandbox.compile_timeout_ms", "max": e.cfg.CompileTimeout.Milliseconds()},
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if form != nil {
		form.bin = nil // compiled: only the globals and the data are needed from now on
	}
	return compiled, form, nil
}

var errCompileTimeout = errors.New("compile timeout")

// code returns the module's compiled code, compiling it first if the module is
// lazy and this is its first call. The caller holds a reference (acquire).
func (m *Module) code(ctx context.Context) (wazero.CompiledModule, error) {
	if c, _ := m.loadCompiled(); c != nil {
		return c, nil
	}
	select {
	case m.codeLock <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-m.codeLock }()
	if c, _ := m.loadCompiled(); c != nil {
		return c, nil // compiled by the call that held the lock
	}
	bin, err := m.reread()
	if err == nil && sha256.Sum256(bin) != m.digest {
		err = errors.New("the module's sha256 differs from the loaded one")
	}
	if err != nil {
		m.e.log.Warn("wasm: reading a tool's module for its first call failed", "tool", m.name, "err", err)
		return nil, api.Errorf(api.CodeUnavailable, "tool %q changed or cannot be read since it was loaded: reload the tools", m.name)
	}
	c, form, err := m.e.compile(ctx, bin)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", m.name, err)
	}
	m.mu.Lock()
	m.compiled, m.form = c, form
	m.mu.Unlock()
	return c, nil
}

func (m *Module) loadCompiled() (wazero.CompiledModule, *snapshotForm) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.compiled, m.form
}

// check validates the module's imports and exports against the ABI.
func (m *Module) check() error {
	for _, imp := range m.compiled.ImportedFunctions() {
		mod, fn, _ := imp.Import()
		switch {
		case mod == wasi_snapshot_preview1.ModuleName:
		case mod == hostModuleName && hostFuncs[fn]:
		default:
			return fmt.Errorf("imports %s.%s, which clawbox does not provide", mod, fn)
		}
	}
	if n := len(m.compiled.ImportedMemories()); n > 0 {
		return errors.New("imports a memory, which clawbox does not provide")
	}
	exp := m.compiled.ExportedFunctions()
	isFunc := func(name string, results ...wapi.ValueType) bool {
		f, ok := exp[name]
		if !ok || len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != len(results) {
			return false
		}
		for i, r := range results {
			if f.ResultTypes()[i] != r {
				return false
			}
		}
		return true
	}
	switch {
	case isFunc("_initialize") && isFunc("clawbox_run", wapi.ValueTypeI32):
		m.reactor = true
	case isFunc("_start"):
	default:
		return errors.New("exports neither _start nor _initialize with clawbox_run")
	}
	return nil
}

// Close unloads the module: its pool stops now, its compiled code is released when
// the last call in flight returns. It is idempotent.
func (m *Module) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	refs := m.refs
	m.mu.Unlock()
	if m.pool != nil {
		m.pool.close(ctx)
	}
	if refs == 0 {
		return m.closeCompiled(ctx)
	}
	return nil
}

// closeCompiled releases the compiled code, if there is any; once the module is
// closed and no call holds a reference, by the one who saw that last.
func (m *Module) closeCompiled(ctx context.Context) error {
	m.mu.Lock()
	c := m.compiled
	m.compiled, m.form = nil, nil
	m.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close(ctx)
}

func (m *Module) acquire() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.refs++
	return true
}

func (m *Module) release(ctx context.Context) {
	m.mu.Lock()
	m.refs--
	last := m.closed && m.refs == 0
	m.mu.Unlock()
	if last {
		m.closeCompiled(ctx)
	}
}

// Call is one execution request.
type Call struct {
	RequestID string
	// Params is the JSON delivered on stdin; empty means null.
	Params json.RawMessage
	// Capabilities are what the request asked for (may be nil). Resources.TimeoutMS
	// narrows the wall-time limit; the rest is passed to the HTTPDoer.
	Capabilities *api.ExecuteCapabilities
}

// Result is a successful call.
type Result struct {
	// Output is stdout parsed as JSON, or stdout as a JSON string when it is not JSON.
	Output json.RawMessage
	// Logs are the "log" host calls, capped.
	Logs []api.LogEntry
	// Duration is the wall time of the call.
	Duration time.Duration
	// HostCalls is how many host calls the tool made.
	HostCalls int
}

// Response builds the 200 body of POST /execute (before output redaction).
func (r *Result) Response(requestID string) *api.ExecuteResponse {
	return &api.ExecuteResponse{
		RequestID: requestID,
		Status:    api.ExecutionOK,
		Output:    r.Output,
		Metadata: api.ExecutionMetadata{
			ExecutionTimeMS: r.Duration.Milliseconds(),
			Logs:            r.Logs,
			Sanitization:    api.SanitizationReport{ActionsTaken: []string{}},
		},
	}
}

// instance is one instantiated guest with its stdio slot and memory allocator.
type instance struct {
	mod   wapi.Module
	slot  *slot
	alloc *limitedAllocator
	form  *snapshotForm // the module's form; nil: compiled as it was
}

// instantiate creates a fresh instance. For a reactor it also runs _initialize
// (under ctx, so a hanging start-up is stopped).
func (m *Module) instantiate(ctx context.Context) (*instance, error) {
	inst, err := m.newInstance(ctx, &limitedAllocator{})
	if err != nil {
		return nil, err
	}
	if err := inst.applyData(); err != nil {
		inst.mod.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	if m.reactor {
		if _, err := inst.mod.ExportedFunction("_initialize").Call(ctx); err != nil {
			inst.mod.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return inst, nil
}

// newInstance instantiates the module without running anything in it, its memory
// from alloc (whose limit it sets).
func (m *Module) newInstance(ctx context.Context, alloc *limitedAllocator) (*instance, error) {
	compiled, form := m.loadCompiled()
	if compiled == nil {
		return nil, fmt.Errorf("tool %q: the wasm module is closed", m.name)
	}
	s := &slot{}
	alloc.limit = uint64(m.lim.memoryPages) * 65536
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithStdin(slotReader{s}).
		WithStdout(slotWriter{s: s}).
		WithStderr(slotWriter{s: s, stderr: true}).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(nanosleep).
		WithRandSource(crand.Reader)
	mod, err := m.e.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, alloc), compiled, cfg)
	if err != nil {
		return nil, err
	}
	return &instance{mod: mod, slot: s, alloc: alloc, form: form}, nil
}

// nanosleep sleeps in short slices so that a guest asleep past its deadline is
// noticed promptly: wazero checks the deadline when the guest runs again.
func nanosleep(ns int64) {
	const slice = int64(10 * time.Millisecond)
	time.Sleep(time.Duration(min(ns, slice)))
}

// Execute runs one call on a fresh instance. Errors are *api.Error with codes
// tool_not_found (the module was unloaded), timeout, output_too_large and
// tool_failed; a canceled ctx gives ctx's error; anything else is our fault.
func (m *Module) Execute(ctx context.Context, call Call) (*Result, error) {
	if !m.acquire() {
		return nil, api.Errorf(api.CodeToolNotFound, "tool %q not found", m.name)
	}
	defer m.release(context.WithoutCancel(ctx))
	// A lazy module's first call compiles it before its time limit starts.
	if _, err := m.code(ctx); err != nil {
		return nil, err
	}

	var requested time.Duration
	if c := call.Capabilities; c != nil && c.Resources != nil && c.Resources.TimeoutMS != nil {
		requested = time.Duration(*c.Resources.TimeoutMS) * time.Millisecond
	}
	timeout := m.lim.timeout(requested)
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	params := call.Params
	if len(bytes.TrimSpace(params)) == 0 {
		params = json.RawMessage("null")
	}
	stdout := &cappedWriter{limit: m.e.cfg.MaxOutputBytes}
	stderr := &tailWriter{limit: int(m.e.cfg.MaxStderrBytes)}
	st := &callState{
		info:      CallInfo{Tool: m.name, RequestID: call.RequestID, Manifest: m.manifest, Capabilities: call.Capabilities},
		http:      m.e.cfg.HTTP,
		logger:    m.e.log,
		maxCalls:  m.e.cfg.MaxHostCalls,
		maxReq:    m.e.cfg.MaxHostRequestBytes,
		maxLogs:   m.e.cfg.MaxLogEntries,
		maxLogLen: m.e.cfg.MaxLogBytes,
	}

	var inst *instance
	var err error
	if m.pool != nil {
		inst, err = m.pool.take(cctx)
	} else {
		inst, err = m.instantiate(cctx)
	}
	var exitCode uint32
	if err == nil {
		inst.slot.in, inst.slot.out, inst.slot.err = bytes.NewReader(params), stdout, stderr
		sctx := context.WithValue(cctx, ctxKey{}, st)
		if m.reactor {
			var res []uint64
			res, err = inst.mod.ExportedFunction("clawbox_run").Call(sctx)
			if err == nil {
				exitCode = uint32(wapi.DecodeI32(res[0]))
			}
		} else {
			_, err = inst.mod.ExportedFunction("_start").Call(sctx)
		}
		inst.mod.Close(context.WithoutCancel(ctx))
	}
	elapsed := time.Since(start)
	if m.pool != nil {
		afterCall(ctx, m.pool.refill)
	}

	if err := m.classify(ctx, cctx, err, exitCode, inst, stdout, stderr, timeout); err != nil {
		return nil, err
	}
	return &Result{
		Output:    parseOutput(stdout.buf.Bytes()),
		Logs:      st.finalLogs(),
		Duration:  elapsed,
		HostCalls: st.calls,
	}, nil
}

// classify turns the outcome of a call into nil (success) or its error.
func (m *Module) classify(ctx, cctx context.Context, err error, exitCode uint32, inst *instance, stdout *cappedWriter, stderr *tailWriter, timeout time.Duration) error {
	if stdout.overflow {
		return &api.Error{
			Code:    api.CodeOutputTooLarge,
			Message: fmt.Sprintf("tool %q wrote more than %d bytes to stdout", m.name, stdout.limit),
			Details: map[string]any{"limit_bytes": stdout.limit},
		}
	}
	var ee *sys.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		switch ee.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return m.timeoutError(timeout)
		case sys.ExitCodeContextCanceled:
			return fmt.Errorf("tool %q: %w", m.name, context.Cause(ctx))
		}
		exitCode = ee.ExitCode()
	case ctx.Err() != nil:
		return fmt.Errorf("tool %q: %w", m.name, context.Cause(ctx))
	case cctx.Err() != nil:
		return m.timeoutError(timeout)
	case m.e.ctx.Err() != nil:
		return fmt.Errorf("tool %q: the wasm engine is closed", m.name) // ours: a 500
	default:
		// Not an exit: the guest trapped (or failed to instantiate). wazero's message
		// names the trap and the guest's stack; its first line is enough.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return m.failed(-1, msg, inst, stderr, nil)
	}
	if exitCode != 0 {
		return m.failed(int64(exitCode), "", inst, stderr, stdout.buf.Bytes())
	}
	return nil
}

func (m *Module) timeoutError(timeout time.Duration) error {
	return &api.Error{
		Code:    api.CodeTimeout,
		Message: fmt.Sprintf("tool %q timed out after %s", m.name, timeout),
		Details: map[string]any{"timeout_ms": timeout.Milliseconds()},
	}
}

// failed builds the tool_failed error of a call that exited non-zero (exitCode >= 0,
// stdout what it wrote) or trapped (exitCode -1). A tool that exits with a failure
// record on stdout (see toolFailure) fails with its code and message in the details.
func (m *Module) failed(exitCode int64, trap string, inst *instance, stderr *tailWriter, stdout []byte) error {
	details := map[string]any{"stderr": stderr.tail(stderrTailBytes)}
	msg := fmt.Sprintf("tool %q failed", m.name)
	if exitCode >= 0 {
		details["exit_code"] = exitCode
		msg = fmt.Sprintf("tool %q exited with code %d", m.name, exitCode)
		if code, text, ok := toolFailure(stdout); ok {
			details["code"], details["message"] = code, text
			msg = fmt.Sprintf("tool %q failed: %s: %s", m.name, code, text)
		}
	}
	if trap != "" {
		details["trap"] = trap
		msg = fmt.Sprintf("tool %q trapped", m.name)
	}
	if inst != nil && inst.alloc.denied {
		details["memory_limit_exceeded"] = true
		details["memory_limit_mb"] = m.lim.memoryPages / 16
		msg += fmt.Sprintf(" after exceeding its memory limit of %d MiB", m.lim.memoryPages/16)
	}
	te := &ToolError{API: &api.Error{Code: api.CodeToolFailed, Message: msg, Details: details}}
	if exitCode >= 0 {
		c := int(exitCode)
		te.ExitCode = &c
	}
	return te
}

// Bounds of a tool's failure record.
const (
	maxFailureCodeLen    = 64
	maxFailureMessageLen = 1024
)

// toolFailure reads the failure record a tool writes on stdout before it exits
// non-zero, {"error": {"code": "...", "message": "..."}} and nothing else (the
// toolkit writes it for a handler error with a code, such as a host call's
// refusal). The code must be lower snake case and at most 64 bytes; the message is
// cut to at most 1 KiB on a character boundary. Anything else is not a record.
func toolFailure(stdout []byte) (code, message string, ok bool) {
	var rec struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	trimmed := bytes.TrimSpace(stdout)
	if len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &rec) != nil || rec.Error == nil {
		return "", "", false
	}
	code = rec.Error.Code
	if code == "" || len(code) > maxFailureCodeLen {
		return "", "", false
	}
	for i, c := range []byte(code) {
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return "", "", false
		}
	}
	message = rec.Error.Message // valid UTF-8: encoding/json replaces invalid bytes
	if n := maxFailureMessageLen; len(message) > n {
		for n > 0 && !utf8.RuneStart(message[n]) {
			n--
		}
		message = message[:n]
	}
	return code, message, true
}

// ToolError is how a tool run fails: an *api.Error with code tool_failed (its
// details carry the stderr tail, and the exit code or the trap, for the client, and
// the tool's own code and message when it reported one),
// with the exit code typed for whoever records it.
type ToolError struct {
	API *api.Error
	// ExitCode is the tool's exit code; nil when it trapped instead of exiting.
	ExitCode *int
}

func (e *ToolError) Error() string { return e.API.Error() }

// Unwrap lets api.AsError find the wire error.
func (e *ToolError) Unwrap() error { return e.API }

// parseOutput returns stdout as JSON: itself when it is JSON, else a JSON string.
func parseOutput(out []byte) json.RawMessage {
	trimmed := bytes.TrimSpace(out)
	if len(trimmed) > 0 && json.Valid(trimmed) {
		return json.RawMessage(bytes.Clone(trimmed))
	}
	b, _ := json.Marshal(string(bytes.ToValidUTF8(out, []byte("\uFFFD"))))
	return b
}
