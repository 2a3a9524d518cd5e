package wasm

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
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

// FuzzMemoryMinPages checks that the memory-section reader never panics and agrees
// with wazero: a module wazero compiles is one the reader can read.
func FuzzMemoryMinPages(f *testing.F) {
	for _, seed := range [][]byte{trapModule, bigMemoryModule, noEntryModule, badImportModule, wasmHeader, {0, 'a', 's', 'm', 1, 0, 0, 0, 5, 0xff}} {
		f.Add(seed)
	}
	e, err := NewEngine(context.Background(), Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close(context.Background()) })
	f.Fuzz(func(t *testing.T, bin []byte) {
		_, perr := memoryMinPages(bin)
		c, err := e.rt.CompileModule(context.Background(), bin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		if perr != nil {
			t.Fatalf("wazero compiles the module but the memory reader fails: %v", perr)
		}
	})
}

func TestMemoryMinPages(t *testing.T) {
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
			got, err := memoryMinPages(tc.bin)
			if err != nil {
				t.Fatal(err)
			}
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
		if _, err := memoryMinPages(bad); err == nil {
			t.Errorf("memoryMinPages(%q) accepted a malformed module", bad)
		}
	}
}
