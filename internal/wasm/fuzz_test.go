package wasm

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// FuzzHostCallRequest feeds arbitrary guest bytes to the host-call dispatcher: every
// input must give a JSON reply with exactly one of "ok" or "error", never a panic.
func FuzzHostCallRequest(f *testing.F) {
	for _, seed := range []string{
		`{"method":"log","params":{"level":"info","message":"hi"}}`,
		`{"method":"log","params":{"level":"nope","message":""}}`,
		`{"method":"log","params":"not an object"}`,
		`{"method":"http_request","params":{"url":"https://example.com","method":"post","headers":{"a":"b"},"body":"x"}}`,
		`{"method":"http_request","params":{"url":"https://example.com","headers":{"a":1}}}`,
		`{"method":"http_request","params":{"url":"https://example.com","body_base64":"!!"}}`,
		`{"method":"http_request","params":{"url":"https://example.com","body":"a","body_base64":"YQ=="}}`,
		`{"method":"http_request","params":{}}`,
		`{"method":"credential_get","params":null}`,
		`{"method":""}`,
		`[]`,
		`null`,
		"\xff\xfe",
		``,
	} {
		f.Add([]byte(seed))
	}
	doer := fixedHTTP{Status: 200, Body: []byte("\xffbinary")}
	f.Fuzz(func(t *testing.T, req []byte) {
		st := &callState{http: doer, logger: slog.New(slog.DiscardHandler), maxCalls: 10, maxReq: 1 << 20, maxLogs: 4, maxLogLen: 1024}
		st.calls++
		reply := st.dispatch(context.Background(), req)
		var r map[string]json.RawMessage
		if err := json.Unmarshal(reply, &r); err != nil {
			t.Fatalf("reply %q is not a JSON object: %v", reply, err)
		}
		_, ok := r["ok"]
		_, isErr := r["error"]
		if ok == isErr {
			t.Fatalf("reply %s must have exactly one of ok and error", reply)
		}
		if len(st.logs) > st.maxLogs {
			t.Fatalf("%d logs kept, limit %d", len(st.logs), st.maxLogs)
		}
	})
}

// fixedHTTP answers every request with itself (and, unlike fakeHTTP, keeps nothing).
type fixedHTTP HTTPResponse

func (f fixedHTTP) Do(context.Context, CallInfo, HTTPRequest) (HTTPResponse, error) {
	return HTTPResponse(f), nil
}

// FuzzInspectModule checks that the structure reader never panics, agrees with
// wazero (a module wazero compiles is one the reader reads) and, with limits, only
// refuses with a limit error naming a key.
func FuzzInspectModule(f *testing.F) {
	for _, seed := range [][]byte{trapModule, bigMemoryModule, noEntryModule, badImportModule, wasmHeader, localsBomb(50_000_000), {0, 'a', 's', 'm', 1, 0, 0, 0, 5, 0xff}} {
		f.Add(seed)
	}
	e, err := NewEngine(context.Background(), Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close(context.Background()) })
	unlimited := ModuleLimits{MaxFunctions: 1 << 30, MaxFunctionLocals: 1 << 30, MaxLocals: 1 << 30, MaxFunctionBytes: 1 << 30,
		MaxCodeBytes: 1 << 30, MaxDataBytes: 1 << 30, MaxTableElements: 1 << 30, MaxImports: 1 << 30, MaxExports: 1 << 30}
	f.Fuzz(func(t *testing.T, bin []byte) {
		_, lerr := inspectModule(bin, ModuleLimits{}.withDefaults())
		if lerr != nil {
			ae, ok := api.AsError(lerr)
			if !ok || (ae.Code != api.CodeInvalidModule && ae.Code != api.CodeModuleLimitExceeded) {
				t.Fatalf("error %v is not invalid_module or module_limit_exceeded", lerr)
			}
		}
		_, perr := inspectModule(bin, unlimited)
		if ae, ok := api.AsError(perr); ok && ae.Code == api.CodeModuleLimitExceeded {
			// Only the fixed limits remain: wazero may well accept those modules.
			return
		}
		if lerr == nil && perr != nil {
			t.Fatalf("accepted with limits, refused without: %v", perr)
		}
		if lerr != nil {
			return // never hand wazero what the reader refused: that is the point
		}
		c, err := e.rt.CompileModule(context.Background(), bin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		if perr != nil {
			t.Fatalf("wazero compiles the module but the reader fails: %v", perr)
		}
		// A valid module has a snapshot form or none; the form is valid too.
		f, ok, err := newSnapshotForm(bin)
		if err != nil {
			t.Fatalf("newSnapshotForm of a valid module: %v", err)
		}
		if !ok {
			return
		}
		fc, err := e.rt.CompileModule(context.Background(), f.bin)
		if err != nil {
			t.Fatalf("the snapshot form of a valid module does not compile: %v", err)
		}
		defer fc.Close(context.Background())
		if len(fc.ExportedFunctions()) != len(c.ExportedFunctions()) {
			t.Fatalf("the snapshot form exports %d functions, the module %d", len(fc.ExportedFunctions()), len(c.ExportedFunctions()))
		}
	})
}

func TestInspectModuleMemory(t *testing.T) {
	tests := []struct {
		name string
		bin  []byte
		want uint32
	}{
		{"no memory", trapModule, 0},
		{"2000 pages", bigMemoryModule, 2000},
		{"go guest", guests.command, 0}, // checked below to be non-zero
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := inspectModule(tc.bin, ModuleLimits{}.withDefaults())
			if err != nil {
				t.Fatal(err)
			}
			got := s.memoryMinPages
			if tc.name == "go guest" {
				if got == 0 || got > 16*64 {
					t.Fatalf("go guest: %d pages", got)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %d pages, want %d", got, tc.want)
			}
		})
	}
	for _, bad := range [][]byte{nil, []byte("\x00asm"), []byte("notwasm!"), cat(wasmHeader, []byte{5, 10, 1})} {
		_, err := inspectModule(bad, ModuleLimits{}.withDefaults())
		if ae, ok := api.AsError(err); !ok || ae.Code != api.CodeInvalidModule {
			t.Errorf("inspectModule(%q) = %v, want invalid_module", bad, err)
		}
	}
}
