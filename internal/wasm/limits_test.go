package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/wasm/exampletools"
)

// localsBomb is a command module of one function declaring n i32 locals, with a
// memory: 55 bytes for n = 50,000,000. wazero accepts it, and compiling it took the
// server from 67 MB to 1.3 GB, most of it kept while the module stayed loaded.
func localsBomb(n uint32) []byte {
	body := cat([]byte{0x01}, uleb(n), []byte{0x7f, 0x0b}) // one declaration: n × i32; end
	entry := cat(uleb(uint32(len(body))), body)
	return cat(wasmHeader,
		[]byte{0x01, 0x04, 0x01, 0x60, 0x00, 0x00}, // type 0: () -> ()
		[]byte{0x03, 0x02, 0x01, 0x00},             // function 0: type 0
		[]byte{0x05, 0x03, 0x01, 0x00, 0x01},       // memory: 1 page
		section(0x07, cat([]byte{0x02}, name("_start"), []byte{0x00, 0x00}, name("memory"), []byte{0x02, 0x00})),
		section(0x0a, cat([]byte{0x01}, entry)),
	)
}

func uleb(v uint32) []byte { return binary.AppendUvarint(nil, uint64(v)) }

func name(s string) []byte { return cat(uleb(uint32(len(s))), []byte(s)) }

func section(id byte, body []byte) []byte { return cat([]byte{id}, uleb(uint32(len(body))), body) }

func TestCompileRefusesLocalsBomb(t *testing.T) {
	bomb := localsBomb(50_000_000)
	if len(bomb) != 55 {
		t.Fatalf("the bomb is %d bytes, want the 55 of the report", len(bomb))
	}
	e := newTestEngine(t, Config{})
	m, err := e.Compile(context.Background(), "bomb", bomb, nil)
	if err == nil {
		m.Close(context.Background())
		t.Fatal("a module declaring 50 million locals was compiled")
	}
	ae, ok := api.AsError(err)
	if !ok || ae.Code != api.CodeModuleLimitExceeded {
		t.Fatalf("err = %v, want module_limit_exceeded", err)
	}
	if d, _ := ae.Details.(map[string]any); d["limit"] != "sandbox.max_function_locals" {
		t.Fatalf("details = %v, want the limit sandbox.max_function_locals", ae.Details)
	}
	t.Log(err)
}

// moduleOf builds a command module: type 0 () -> (), n functions of that type whose
// bodies are body (without the size prefix), exporting function 0 as _start, plus
// any extra sections (placed in their order by the caller).
func moduleOf(n int, body []byte, extra ...[]byte) []byte {
	funcs := cat(uleb(uint32(n)), bytes.Repeat([]byte{0x00}, n))
	entry := cat(uleb(uint32(len(body))), body)
	parts := [][]byte{wasmHeader, {0x01, 0x04, 0x01, 0x60, 0x00, 0x00}}
	var before, after [][]byte // sections before and after the function section
	for _, s := range extra {
		if s[0] < 0x03 {
			before = append(before, s)
		} else {
			after = append(after, s)
		}
	}
	parts = append(parts, before...)
	parts = append(parts, section(0x03, funcs))
	var late [][]byte // sections after the code section (data)
	for _, s := range after {
		if s[0] == 0x0b {
			late = append(late, s)
			continue
		}
		parts = append(parts, s)
	}
	parts = append(parts, section(0x0a, cat(uleb(uint32(n)), bytes.Repeat(entry, n))))
	parts = append(parts, late...)
	return cat(parts...)
}

// localsBody declares n i32 locals and does nothing.
func localsBody(n uint32) []byte { return cat([]byte{0x01}, uleb(n), []byte{0x7f, 0x0b}) }

// nopBody is a body of about size bytes of nops.
func nopBody(size int) []byte {
	return cat([]byte{0x00}, bytes.Repeat([]byte{0x01}, size), []byte{0x0b})
}

func exportStart() []byte {
	return section(0x07, cat([]byte{0x01}, name("_start"), []byte{0x00, 0x00}))
}

func TestInspectModuleLimits(t *testing.T) {
	small := ModuleLimits{MaxFunctions: 4, MaxFunctionLocals: 10, MaxLocals: 15, MaxFunctionBytes: 100, MaxCodeBytes: 300,
		MaxDataBytes: 50, MaxTableElements: 10, MaxImports: 1, MaxExports: 2}
	imp := func(field string) []byte { return cat(name("wasi_snapshot_preview1"), name(field), []byte{0x00, 0x00}) }
	tests := []struct {
		name  string
		bin   []byte
		limit string // "" = accepted
	}{
		{"within every limit", moduleOf(4, localsBody(3), exportStart()), ""},
		{"functions", moduleOf(5, localsBody(0), exportStart()), "sandbox.max_module_functions"},
		{"locals in one function", moduleOf(1, localsBody(11), exportStart()), "sandbox.max_function_locals"},
		{"locals in one function, split over declarations", moduleOf(1, cat([]byte{0x02, 0x06, 0x7f, 0x06, 0x7e, 0x0b}), exportStart()), "sandbox.max_function_locals"},
		{"locals in all", moduleOf(2, localsBody(8), exportStart()), "sandbox.max_module_locals"},
		{"function size", moduleOf(1, nopBody(101), exportStart()), "sandbox.max_function_bytes"},
		{"code size", moduleOf(4, nopBody(90), exportStart()), "sandbox.max_code_bytes"},
		{"data size", moduleOf(1, localsBody(0), exportStart(),
			section(0x05, []byte{0x01, 0x00, 0x01}),
			section(0x0b, cat([]byte{0x01, 0x00, 0x41, 0x00, 0x0b}, uleb(60), bytes.Repeat([]byte{'x'}, 60)))), "sandbox.max_data_bytes"},
		{"table elements", moduleOf(1, localsBody(0), exportStart(), section(0x04, []byte{0x01, 0x70, 0x00, 0x0b})), "sandbox.max_table_elements"},
		{"tables together", moduleOf(1, localsBody(0), exportStart(), section(0x04, []byte{0x02, 0x70, 0x00, 0x06, 0x70, 0x01, 0x05, 0x05})), "sandbox.max_table_elements"},
		{"table with an initialiser", moduleOf(1, localsBody(0), exportStart(), section(0x04, []byte{0x01, 0x40, 0x00, 0x70, 0x00, 0x0b, 0xd0, 0x70, 0x0b})), "sandbox.max_table_elements"},
		{"element section", moduleOf(1, localsBody(0), exportStart(), section(0x04, []byte{0x01, 0x70, 0x00, 0x01}),
			section(0x09, cat([]byte{0x01, 0x00, 0x41, 0x00, 0x0b, 0x0c}, bytes.Repeat([]byte{0x00}, 12)))), "sandbox.max_table_elements"},
		{"imports", moduleOf(1, localsBody(0), exportStart(), section(0x02, cat([]byte{0x02}, imp("a"), imp("b")))), "sandbox.max_module_imports"},
		{"exports", moduleOf(1, localsBody(0), section(0x07, cat([]byte{0x03}, name("_start"), []byte{0, 0}, name("a"), []byte{0, 0}, name("b"), []byte{0, 0}))), "sandbox.max_module_exports"},
		{"two memories", moduleOf(1, localsBody(0), exportStart(), section(0x05, []byte{0x02, 0x00, 0x01, 0x00, 0x01})), "fixed"},
		{"many globals", moduleOf(1, localsBody(0), exportStart(), section(0x06, cat(uleb(maxGlobals+1), bytes.Repeat([]byte{0x7f, 0x00, 0x41, 0x00, 0x0b}, maxGlobals+1)))), "fixed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inspectModule(tc.bin, small.withDefaults())
			if tc.limit == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			ae, ok := api.AsError(err)
			if !ok || ae.Code != api.CodeModuleLimitExceeded {
				t.Fatalf("err = %v, want module_limit_exceeded", err)
			}
			if d, _ := ae.Details.(map[string]any); d["limit"] != tc.limit {
				t.Fatalf("details = %v, want the limit %s", ae.Details, tc.limit)
			}
			if tc.limit != "fixed" && !strings.Contains(ae.Message, tc.limit) {
				t.Fatalf("message %q does not name %s", ae.Message, tc.limit)
			}
		})
	}
}

// A count that claims more entries than its section has bytes is refused before
// anything is allocated for it, whatever the limits.
func TestInspectModuleLyingCounts(t *testing.T) {
	for _, id := range []byte{1, 2, 3, 4, 5, 6, 7, 9, 10, 11} {
		bin := cat(wasmHeader, section(id, uleb(1_000_000)))
		_, err := inspectModule(bin, ModuleLimits{MaxFunctions: 1 << 30, MaxImports: 1 << 30, MaxExports: 1 << 30}.withDefaults())
		if ae, ok := api.AsError(err); !ok || ae.Code != api.CodeInvalidModule {
			t.Errorf("section %d claiming a million entries: err = %v, want invalid_module", id, err)
		}
	}
}

// The same holds for the vectors inside a section: wazero allocates an element
// vector, a name, a data segment or a name map at its declared length before reading
// it (the element case was found by FuzzInspectModule: 7 bytes that made wazero
// allocate gigabytes).
func TestInspectModuleLyingNestedLengths(t *testing.T) {
	huge := []byte{0xf0, 0xf0, 0xf0, 0x30}
	tests := map[string][]byte{
		"element vector": section(0x09, cat([]byte{0x01, 0x00, 0x41, 0x00, 0x0b}, huge)),
		"import name":    section(0x02, cat([]byte{0x01}, huge, []byte("x"))),
		"export name":    section(0x07, cat([]byte{0x01}, huge, []byte("x"))),
		"param types":    section(0x01, cat([]byte{0x01, 0x60}, huge)),
		"data bytes":     section(0x0b, cat([]byte{0x01, 0x00, 0x41, 0x00, 0x0b}, huge)),
		"custom name":    section(0x00, cat(huge, []byte("x"))),
		"function names": section(0x00, cat(name("name"), []byte{0x01, 0x05}, huge, []byte{0x00, 0x00})),
		"local names":    section(0x00, cat(name("name"), []byte{0x02, 0x08, 0x01, 0x00}, huge, []byte{0x00, 0x00})),
	}
	for what, sec := range tests {
		_, err := inspectModule(cat(wasmHeader, sec), ModuleLimits{}.withDefaults())
		if ae, ok := api.AsError(err); !ok || (ae.Code != api.CodeInvalidModule && ae.Code != api.CodeModuleLimitExceeded) {
			t.Errorf("%s claiming %d entries: err = %v, want it refused", what, 0x30<<21, err)
		}
	}
}

// The example tools and the Go test guests pass the default limits with a wide margin.
func TestDefaultModuleLimitsFitGoTools(t *testing.T) {
	bins := map[string][]byte{"guest command": guests.command, "guest reactor": guests.reactor}
	for _, name := range []string{"echo", "hash", "json_fmt", "http_request", "web_fetch"} {
		b, err := exampletools.Module(name)
		if err != nil {
			t.Fatal(err)
		}
		bins[name] = b
	}
	// A tenth of each default must still fit: the defaults leave a margin of ten.
	tenth := DefaultModuleLimits
	for _, p := range []*int{&tenth.MaxFunctions, &tenth.MaxFunctionLocals, &tenth.MaxLocals, &tenth.MaxFunctionBytes,
		&tenth.MaxCodeBytes, &tenth.MaxTableElements, &tenth.MaxImports, &tenth.MaxExports} {
		*p /= 10
	}
	tenth.MaxDataBytes /= 5 // Go's data is larger: a margin of five
	for name, b := range bins {
		if _, err := inspectModule(b, tenth); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCompileTimeout(t *testing.T) {
	e := newTestEngine(t, Config{CacheDir: t.TempDir(), CompileTimeout: time.Nanosecond})
	_, err := e.Compile(context.Background(), "trap", trapModule, nil)
	ae, ok := api.AsError(err)
	if !ok || ae.Code != api.CodeModuleLimitExceeded || !strings.Contains(ae.Message, "sandbox.compile_timeout_ms") {
		t.Fatalf("err = %v, want module_limit_exceeded naming sandbox.compile_timeout_ms", err)
	}
}

// A compilation waits for a slot: with the only slot taken, Compile gives up when
// its context ends, without compiling.
func TestCompileWaitsForASlot(t *testing.T) {
	e := newTestEngine(t, Config{CacheDir: t.TempDir(), MaxConcurrentCompiles: 1})
	e.compiling <- struct{}{} // the one slot is busy
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.Compile(ctx, "trap", trapModule, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	<-e.compiling
	m, err := e.Compile(context.Background(), "trap", trapModule, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Close(context.Background())
}

// Through the tool directory a bomb is reported with its code and skipped, the other
// tools load.
func TestRegistrySkipsModulesOverLimits(t *testing.T) {
	e := newTestEngine(t, Config{})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bomb.wasm"), localsBomb(50_000_000))
	writeFile(t, filepath.Join(dir, "trap.wasm"), trapModule)
	r := newTestRegistry(t, RegistryConfig{Engine: e, Dir: dir})
	if _, ok := r.Get("trap"); !ok {
		t.Fatal("trap not loaded beside the bomb")
	}
	if _, ok := r.Get("bomb"); ok {
		t.Fatal("the bomb was loaded")
	}
	resp, err := r.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Failed) != 1 || resp.Failed[0].Name != "bomb" || resp.Failed[0].Code != api.CodeModuleLimitExceeded ||
		!strings.Contains(resp.Failed[0].Error, "sandbox.max_function_locals") {
		t.Fatalf("failed = %+v, want the bomb with module_limit_exceeded", resp.Failed)
	}
}

// Registering a manifest recompiles the tool: when the module no longer loads with
// it (here: a memory limit below what the module needs at start), Register says so
// with the code instead of answering "registered" for a tool that is gone.
func TestRegisterReportsAToolThatNoLongerLoads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "guest.wasm"), guests.command)
	r := newTestRegistry(t, RegistryConfig{Engine: newTestEngine(t, Config{}), Dir: dir})
	if _, ok := r.Get("guest"); !ok {
		t.Fatal("guest not loaded")
	}
	m := &api.ToolManifest{Tool: api.ToolMeta{Name: "guest", Description: "d"}, Resources: &api.ToolResourceConfig{DefaultMemoryMB: 1}}
	_, err := r.Register(ctx, m)
	if ae, ok := api.AsError(err); !ok || ae.Code != api.CodeModuleLimitExceeded || !strings.Contains(ae.Message, "did not load") {
		t.Fatalf("err = %v, want module_limit_exceeded saying the tool did not load", err)
	}
	if _, ok := r.Get("guest"); ok {
		t.Fatal("guest still listed")
	}
}
