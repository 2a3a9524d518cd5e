package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/poll"
	"github.com/clawbox/clawbox/internal/store"
	"github.com/clawbox/clawbox/internal/wasm/exampletools"
)

var _ ManifestStore = (*store.DB)(nil)

// exampleDir returns a tool directory holding the example tools.
func exampleDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := exampletools.Install(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newTestRegistry(t *testing.T, cfg RegistryConfig) *Registry {
	t.Helper()
	r, err := NewRegistry(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func TestRegistryExampleTools(t *testing.T) {
	doer := &fakeHTTP{resp: HTTPResponse{
		Status:  200,
		Headers: map[string]string{"Content-Type": "text/html; charset=utf-8"},
		Body:    []byte(`<html><head><style>p{}</style><script>var x=1;</script></head><body><h1>Title</h1><p>Some &amp; text</p></body></html>`),
	}}
	e := newTestEngine(t, Config{HTTP: doer})
	dir := exampleDir(t)
	// http_request is left out to save a compile (seconds under -race); the engine's
	// own tests cover the http_request host call.
	os.Remove(filepath.Join(dir, "http_request.wasm"))
	r := newTestRegistry(t, RegistryConfig{Engine: e, Dir: dir})

	var names []string
	for _, info := range r.List() {
		names = append(names, info.Tool.Name)
		if info.Source != api.ToolSourceFile || !info.Reactor || len(info.SHA256) != 64 {
			t.Errorf("%s: source %q reactor %v sha256 %q", info.Tool.Name, info.Source, info.Reactor, info.SHA256)
		}
	}
	if want := []string{"echo", "hash", "json_fmt", "web_fetch"}; !slices.Equal(names, want) {
		t.Fatalf("loaded %v, want %v", names, want)
	}

	tests := []struct {
		name, tool, params, want string
	}{
		{"echo", "echo", `{"hello":"world"}`, `{"tool":"echo","version":"0.1.0","echo":{"hello":"world"},"message":"Hello from clawbox WASM sandbox!"}`},
		{"echo without params", "echo", ``, `{"tool":"echo","version":"0.1.0","echo":null,"message":"Hello from clawbox WASM sandbox!"}`},
		// FIPS 180-2 test vector for "abc".
		{"hash sha256", "hash", `{"data":"abc"}`, `{"algorithm":"sha256","hex":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","base64":"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=","length":3}`},
		{"hash empty", "hash", `{"data":""}`, `{"algorithm":"sha256","hex":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","base64":"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","length":0}`},
		{"json_fmt format", "json_fmt", `{"data":"{\"b\":[1,2],\"a\":true}","indent":1}`, `{"result":"{\n \"b\": [\n  1,\n  2\n ],\n \"a\": true\n}"}`},
		{"json_fmt extract", "json_fmt", `{"action":"extract","data":{"items":[{"name":"x"},{"name":"y"}]},"path":"items.1.name"}`, `{"path":"items.1.name","value":"y"}`},
		{"json_fmt validate", "json_fmt", `{"action":"validate","data":"{oops"}`, `{"error":"invalid character 'o' looking for beginning of object key string","valid":false}`},
		{"web_fetch", "web_fetch", `{"url":"https://example.com/"}`, `{"url":"https://example.com/","status":200,"content_type":"text/html; charset=utf-8","content":"Title\nSome \u0026 text","length":17,"truncated":false}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := r.Execute(context.Background(), api.ExecuteRequest{Tool: tc.tool, Params: json.RawMessage(tc.params)}, "req")
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Output) != tc.want {
				t.Fatalf("output %s\nwant   %s", res.Output, tc.want)
			}
		})
	}
	t.Run("hash failure is tool_failed", func(t *testing.T) {
		_, err := r.Execute(context.Background(), api.ExecuteRequest{Tool: "hash", Params: json.RawMessage(`{"data":"x","algorithm":"crc7"}`)}, "req")
		if errCode(err) != api.CodeToolFailed {
			t.Fatalf("err = %v, want tool_failed", err)
		}
	})
	for _, tool := range []string{"nope", "../../etc/passwd", ""} {
		t.Run("unknown tool "+tool, func(t *testing.T) {
			_, err := r.Execute(context.Background(), api.ExecuteRequest{Tool: tool}, "req")
			if errCode(err) != api.CodeToolNotFound {
				t.Fatalf("err = %v, want tool_not_found", err)
			}
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRegistryBadFilesAreSkipped(t *testing.T) {
	dir := t.TempDir()
	echo, err := exampletools.Module("echo")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "good.wasm"), guests.command)
	writeFile(t, filepath.Join(dir, "corrupt.wasm"), []byte("\x00asm\x01\x00\x00\x00garbage"))
	writeFile(t, filepath.Join(dir, "bad name.wasm"), echo)
	writeFile(t, filepath.Join(dir, "wrongname.wasm"), echo)
	writeFile(t, filepath.Join(dir, "wrongname.json"), []byte(`{"tool":{"name":"other","description":"d"}}`))
	writeFile(t, filepath.Join(dir, "badjson.wasm"), echo)
	writeFile(t, filepath.Join(dir, "badjson.json"), []byte(`{"tool":`))
	writeFile(t, filepath.Join(dir, "unknownkey.wasm"), echo)
	writeFile(t, filepath.Join(dir, "unknownkey.json"), []byte(`{"tool":{"name":"unknownkey","description":"d"},"netwrok":{}}`))
	writeFile(t, filepath.Join(dir, "trap.wasm"), trapModule)
	writeFile(t, filepath.Join(dir, "notes.txt"), []byte("ignored"))

	e := newTestEngine(t, Config{})
	r := newTestRegistry(t, RegistryConfig{Engine: e, Dir: dir})
	resp, err := r.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"good", "trap"}; !slices.Equal(resp.Tools, want) {
		t.Fatalf("loaded %v, want %v", resp.Tools, want)
	}
	if resp.Reloaded != 7 {
		t.Errorf("reloaded = %d, want 7 modules seen", resp.Reloaded)
	}
	var failed []string
	for _, f := range resp.Failed {
		failed = append(failed, f.File)
		if f.Error == "" {
			t.Errorf("%s: no reason given", f.File)
		}
	}
	slices.Sort(failed)
	if want := []string{"bad name.wasm", "badjson.wasm", "corrupt.wasm", "unknownkey.wasm", "wrongname.wasm"}; !slices.Equal(failed, want) {
		t.Fatalf("failed %v, want %v", failed, want)
	}
	if info, _ := r.Get("good"); info.Source != api.ToolSourceDefault || info.Network != nil {
		t.Errorf("a tool without a manifest gets the deny-all default, got %+v", info)
	}
}

func TestRegistryHotReload(t *testing.T) {
	dir := t.TempDir()
	changed := make(chan struct{}, 16)
	e := newTestEngine(t, Config{})
	r := newTestRegistry(t, RegistryConfig{
		Engine:   e,
		Dir:      dir,
		Watch:    true,
		Debounce: 20 * time.Millisecond,
		OnChange: func() { changed <- struct{}{} },
	})
	if len(r.List()) != 0 {
		t.Fatal("empty dir loaded tools")
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for !cond() {
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("no change notification: %s", what)
			}
		}
	}

	// Written in pieces, as a slow copy would: the trailing-edge debounce loads the
	// final file (an intermediate load fails and is replaced by the next one).
	bin := guests.reactor
	path := filepath.Join(dir, "fresh.wasm")
	writeFile(t, path, bin[:len(bin)/2])
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bin[len(bin)/2:]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	waitFor("fresh.wasm loaded", func() bool { _, ok := r.Get("fresh"); return ok })
	res, err := r.Execute(context.Background(), api.ExecuteRequest{Tool: "fresh", Params: json.RawMessage(`{"mode":"echo","value":1}`)}, "")
	if err != nil || string(res.Output) != `{"value":1}` {
		t.Fatalf("fresh: %s, %v", res.Output, err)
	}

	// A manifest appearing beside it is picked up.
	writeFile(t, filepath.Join(dir, "fresh.json"), []byte(`{"tool":{"name":"fresh","description":"now with a manifest"}}`))
	waitFor("fresh.json loaded", func() bool { info, _ := r.Get("fresh"); return info.Source == api.ToolSourceFile })

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor("fresh.wasm unloaded", func() bool { _, ok := r.Get("fresh"); return !ok })
}

func TestRegistryRegisterPersists(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "guest.wasm"), guests.command)
	dbPath := filepath.Join(t.TempDir(), "state.db")
	e := newTestEngine(t, Config{})

	open := func() (*store.DB, *Registry) {
		db, err := store.Open(ctx, dbPath)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRegistry(ctx, RegistryConfig{Engine: e, Dir: dir, Store: db})
		if err != nil {
			t.Fatal(err)
		}
		return db, r
	}
	db, r := open()
	if info, _ := r.Get("guest"); info.Source != api.ToolSourceDefault {
		t.Fatalf("source %q before registering", info.Source)
	}
	m := &api.ToolManifest{
		Tool:    api.ToolMeta{Name: "guest", Description: "registered"},
		Network: &api.ToolNetworkConfig{Allowlist: []string{"api.example.com"}},
	}
	for i, wantCreated := range []bool{true, false} {
		created, err := r.Register(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if created != wantCreated {
			t.Errorf("register #%d: created = %v, want %v", i+1, created, wantCreated)
		}
	}
	for _, tc := range []struct {
		name string
		m    *api.ToolManifest
		code string
	}{
		{"unloaded tool", &api.ToolManifest{Tool: api.ToolMeta{Name: "ghost", Description: "d"}}, api.CodeToolNotFound},
		{"bad name", &api.ToolManifest{Tool: api.ToolMeta{Name: "a/b", Description: "d"}}, api.CodeInvalidRequest},
		{"no description", &api.ToolManifest{Tool: api.ToolMeta{Name: "guest"}}, api.CodeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.Register(ctx, tc.m); errCode(err) != tc.code {
				t.Fatalf("err = %v, want %s", err, tc.code)
			}
		})
	}
	r.Close(ctx)
	db.Close()

	db, r = open()
	defer db.Close()
	defer r.Close(ctx)
	info, ok := r.Get("guest")
	if !ok || info.Source != api.ToolSourceRegistered || info.Tool.Description != "registered" || info.Tool.Version != "0.1.0" {
		t.Fatalf("after reopen: %+v", info)
	}
	if info.Network == nil || !slices.Equal(info.Network.Allowlist, []string{"api.example.com"}) {
		t.Fatalf("after reopen: network %+v", info.Network)
	}
}

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name, in, code, field string
	}{
		{"minimal", `{"tool":{"name":"x","description":"d"}}`, "", ""},
		{"full", `{"tool":{"name":"x","description":"d","version":"1"},"input_schema":{"type":"object"},"network":{"allowlist":["a.com"],"max_concurrent":3},"credentials":{"available":["gh"]},"resources":{"default_timeout_ms":1,"max_timeout_ms":2,"default_memory_mb":3,"max_memory_mb":4}}`, "", ""},
		{"not json", `{`, api.CodeInvalidJSON, ""},
		{"trailing data", `{"tool":{"name":"x","description":"d"}} {}`, api.CodeInvalidJSON, ""},
		{"unknown key", `{"tool":{"name":"x","description":"d"},"extra":1}`, api.CodeInvalidRequest, ""},
		{"bad name", `{"tool":{"name":"x y","description":"d"}}`, api.CodeInvalidRequest, "tool.name"},
		{"long name", `{"tool":{"name":"` + strings.Repeat("a", 65) + `","description":"d"}}`, api.CodeInvalidRequest, "tool.name"},
		{"no description", `{"tool":{"name":"x"}}`, api.CodeInvalidRequest, "tool.description"},
		{"empty rule", `{"tool":{"name":"x","description":"d"},"network":{"allowlist":[""]}}`, api.CodeInvalidRequest, "network.allowlist"},
		{"negative timeout", `{"tool":{"name":"x","description":"d"},"resources":{"default_timeout_ms":-1}}`, api.CodeInvalidRequest, "resources.default_timeout_ms"},
		{"schema not an object", `{"tool":{"name":"x","description":"d"},"input_schema":[1]}`, api.CodeInvalidRequest, "input_schema"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tc.in))
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if m.Tool.Version == "" {
					t.Error("version not defaulted")
				}
				return
			}
			ae, ok := api.AsError(err)
			if !ok || ae.Code != tc.code {
				t.Fatalf("err = %v, want %s", err, tc.code)
			}
			if tc.field != "" {
				if d, _ := ae.Details.(map[string]string); d["field"] != tc.field {
					t.Fatalf("details %v, want field %s", ae.Details, tc.field)
				}
			}
		})
	}
}

func TestToolLimits(t *testing.T) {
	cfg := Config{DefaultTimeout: 30 * time.Second, MaxTimeout: 60 * time.Second, MaxMemoryMB: 64}.withDefaults()
	res := func(r api.ToolResourceConfig) *api.ToolManifest { return &api.ToolManifest{Resources: &r} }
	tests := []struct {
		name      string
		m         *api.ToolManifest
		requested time.Duration
		timeout   time.Duration
		memMB     uint32
	}{
		{"no manifest", nil, 0, 30 * time.Second, 64},
		{"manifest default", res(api.ToolResourceConfig{DefaultTimeoutMS: 5000}), 0, 5 * time.Second, 64},
		{"manifest above server max is clamped", res(api.ToolResourceConfig{DefaultTimeoutMS: 600_000, DefaultMemoryMB: 1024}), 0, 60 * time.Second, 64},
		{"request within manifest max", res(api.ToolResourceConfig{MaxTimeoutMS: 10_000}), 8 * time.Second, 8 * time.Second, 64},
		{"request above manifest max is clamped", res(api.ToolResourceConfig{MaxTimeoutMS: 10_000}), time.Hour, 10 * time.Second, 64},
		{"request above server max is clamped", nil, time.Hour, 60 * time.Second, 64},
		{"smaller memory", res(api.ToolResourceConfig{DefaultMemoryMB: 16}), 0, 30 * time.Second, 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := cfg.toolLimits(tc.m)
			if got := l.timeout(tc.requested); got != tc.timeout {
				t.Errorf("timeout = %s, want %s", got, tc.timeout)
			}
			if l.memoryPages != tc.memMB*16 {
				t.Errorf("memory = %d pages, want %d MiB", l.memoryPages, tc.memMB)
			}
		})
	}
}

// TestRegistryHammer runs calls while registrations keep replacing the tool's module:
// every call must succeed on the old or the new version.
func TestRegistryHammer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "guest.wasm"), guests.reactor)
	e := newTestEngine(t, Config{PoolSize: 1})
	r := newTestRegistry(t, RegistryConfig{Engine: e, Dir: dir})

	stop := make(chan struct{})
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				params := fmt.Sprintf(`{"mode":"echo","value":%d}`, w*1000+i)
				res, err := r.Execute(ctx, api.ExecuteRequest{Tool: "guest", Params: json.RawMessage(params)}, "")
				if err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf(`{"value":%d}`, w*1000+i); string(res.Output) != want {
					errs <- fmt.Errorf("output %s, want %s", res.Output, want)
					return
				}
			}
		})
	}
	for i := range 6 {
		m := &api.ToolManifest{Tool: api.ToolMeta{Name: "guest", Description: fmt.Sprintf("version %d", i)}}
		if _, err := r.Register(ctx, m); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if info, _ := r.Get("guest"); info.Tool.Description != "version 5" {
		t.Fatalf("final manifest %q", info.Tool.Description)
	}
}

// A tool written while the initial load is compiling (a `clawbox build` right after
// `serve` started) is loaded: the watcher is on before the directory is first read.
// This failed before: the watcher started after the initial load, and a module written
// between the directory scan and the watch was never loaded.
func TestRegistryWatchesDuringInitialLoad(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "first.wasm"), guests.command)
	var once sync.Once
	e := newTestEngine(t, Config{})
	r := newTestRegistry(t, RegistryConfig{
		Engine:   e,
		Dir:      dir,
		Watch:    true,
		Debounce: 20 * time.Millisecond,
		afterScan: func() {
			once.Do(func() { writeFile(t, filepath.Join(dir, "late.wasm"), guests.reactor) })
		},
	})
	if _, ok := r.Get("first"); !ok {
		t.Fatal("first.wasm not loaded by the initial load")
	}
	poll.Until(t, poll.Slow, "late.wasm, written during the initial load, to load", func() (bool, error) {
		_, ok := r.Get("late")
		return ok, fmt.Errorf("loaded: %v", r.List())
	})
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Status tells the module now in the directory from the loaded one, and reports the
// load error of the module that failed by its digest.
func TestRegistryStatus(t *testing.T) {
	dir := t.TempDir()
	e := newTestEngine(t, Config{})
	r := newTestRegistry(t, RegistryConfig{Engine: e, Dir: dir, Watch: true, Debounce: 20 * time.Millisecond})
	if st := r.Status("tool"); st.SHA256 != "" || st.FileSHA256 != "" || st.LoadError != nil || !st.Watching || st.Name != "tool" {
		t.Fatalf("status of an absent tool: %+v", st)
	}
	if st := r.Status("../x"); st.FileSHA256 != "" {
		t.Fatalf("status of a bad name read a file: %+v", st)
	}
	path := filepath.Join(dir, "tool.wasm")
	writeFile(t, path, guests.command)
	good := hexSum(guests.command)
	poll.Until(t, poll.Slow, "the module to load", func() (bool, error) {
		st := r.Status("tool")
		return st.SHA256 == good, fmt.Errorf("%+v", st)
	})
	if st := r.Status("tool"); st.FileSHA256 != good || st.LoadError != nil || st.LoadedAt == nil {
		t.Errorf("status of the loaded module: %+v", st)
	}

	bad := []byte("\x00asm\x01\x00\x00\x00garbage")
	writeFile(t, path, bad)
	poll.Until(t, poll.Slow, "the bad module's load error", func() (bool, error) {
		st := r.Status("tool")
		return st.LoadError != nil && st.LoadError.SHA256 == hexSum(bad), fmt.Errorf("%+v", st)
	})
	st := r.Status("tool")
	if st.SHA256 != "" || st.FileSHA256 != hexSum(bad) || st.LoadError.Error == "" || st.LoadError.File != "tool.wasm" {
		t.Errorf("status after a failed load: %+v", st)
	}
	// The reload response carries the digest too.
	resp, _ := r.Reload(context.Background())
	if len(resp.Failed) != 1 || resp.Failed[0].SHA256 != hexSum(bad) {
		t.Errorf("reload failures: %+v", resp.Failed)
	}
	// Fixed again: the error is gone.
	writeFile(t, path, guests.command)
	poll.Until(t, poll.Slow, "the fixed module to load", func() (bool, error) {
		st := r.Status("tool")
		return st.SHA256 == good && st.LoadError == nil, fmt.Errorf("%+v", st)
	})
}
