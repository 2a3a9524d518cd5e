package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// forms are the two builds of the test guest.
func forms() []struct {
	name string
	bin  []byte
} {
	return []struct {
		name string
		bin  []byte
	}{{"command", guests.command}, {"reactor", guests.reactor}}
}

func TestEngineEchoBothForms(t *testing.T) {
	e := newTestEngine(t, Config{})
	for _, form := range forms() {
		t.Run(form.name, func(t *testing.T) {
			m := compile(t, e, "guest", form.bin)
			if want := form.name == "reactor"; m.Reactor() != want {
				t.Fatalf("Reactor() = %v, want %v", m.Reactor(), want)
			}
			for i := range 3 { // several calls: each gets a fresh instance
				params := fmt.Sprintf(`{"mode":"echo","value":{"i":%d}}`, i)
				res, err := m.Execute(context.Background(), Call{Params: json.RawMessage(params)})
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf(`{"value":{"i":%d}}`, i); string(res.Output) != want {
					t.Fatalf("output %s, want %s", res.Output, want)
				}
				if len(res.Logs) != 0 {
					t.Fatalf("logs %v, want none", res.Logs)
				}
			}
		})
	}
}

func TestEngineConcurrentCalls(t *testing.T) {
	e := newTestEngine(t, Config{PoolSize: 1})
	m := compile(t, e, "guest", guests.reactor)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			res, err := m.Execute(context.Background(), Call{Params: json.RawMessage(fmt.Sprintf(`{"mode":"echo","value":%d}`, i))})
			if err != nil {
				errs <- err
				return
			}
			if want := fmt.Sprintf(`{"value":%d}`, i); string(res.Output) != want {
				errs <- fmt.Errorf("call %d: output %s, want %s", i, res.Output, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func timeoutMS(ms int64) *api.ExecuteCapabilities {
	return &api.ExecuteCapabilities{Resources: &api.ExecuteResources{TimeoutMS: &ms}}
}

func TestEngineFailures(t *testing.T) {
	e := newTestEngine(t, Config{MaxMemoryMB: 48, MaxOutputBytes: 1 << 20})
	tests := []struct {
		name   string
		params string
		caps   *api.ExecuteCapabilities
		code   string
		check  func(t *testing.T, ae *api.Error)
	}{
		{
			name: "spinning guest stopped by timeout", params: `{"mode":"loop"}`, caps: timeoutMS(300), code: api.CodeTimeout,
			check: func(t *testing.T, ae *api.Error) {
				if !errors.Is(ae, context.DeadlineExceeded) {
					t.Error("timeout error does not satisfy errors.Is(err, context.DeadlineExceeded)")
				}
			},
		},
		{name: "sleeping guest stopped by timeout", params: `{"mode":"sleep"}`, caps: timeoutMS(300), code: api.CodeTimeout},
		{
			name: "memory growth beyond the limit", params: `{"mode":"grow"}`, code: api.CodeToolFailed,
			check: func(t *testing.T, ae *api.Error) {
				d := ae.Details.(map[string]any)
				if d["memory_limit_exceeded"] != true {
					t.Errorf("details %v: want memory_limit_exceeded", d)
				}
			},
		},
		{
			name: "stdout flood", params: `{"mode":"stdout_flood","n":32}`, code: api.CodeOutputTooLarge,
		},
		{
			name: "stderr flood is capped", params: `{"mode":"stderr_flood","n":32}`, code: api.CodeToolFailed,
			check: func(t *testing.T, ae *api.Error) {
				s := ae.Details.(map[string]any)["stderr"].(string)
				if len(s) > stderrTailBytes || !strings.Contains(s, "END-OF-STDERR") || !strings.Contains(s, "flooded") {
					t.Errorf("stderr tail (%d bytes) does not end the flood: %q", len(s), s[max(0, len(s)-64):])
				}
			},
		},
		{
			name: "non-zero exit", params: `{"mode":"exit","n":3}`, code: api.CodeToolFailed,
			check: func(t *testing.T, ae *api.Error) {
				d := ae.Details.(map[string]any)
				if d["exit_code"] != int64(3) || !strings.Contains(d["stderr"].(string), "boom") {
					t.Errorf("details %v: want exit_code 3 and the stderr tail", d)
				}
			},
		},
		{
			name: "handler error", params: `{"mode":"nonsense"}`, code: api.CodeToolFailed,
			check: func(t *testing.T, ae *api.Error) {
				d := ae.Details.(map[string]any)
				if d["exit_code"] != int64(1) || !strings.Contains(d["stderr"].(string), `unknown mode "nonsense"`) {
					t.Errorf("details %v: want exit_code 1 and the handler's error", d)
				}
				if _, ok := d["code"]; ok {
					t.Errorf("details %v: a plain error has no code", d)
				}
			},
		},
		{
			// No network on this engine: the host call's refusal passes through the
			// toolkit as the call's error, with the host's code and message.
			name: "host call error keeps its code", params: `{"mode":"http_err","url":"https://example.com/"}`, code: api.CodeToolFailed,
			check: func(t *testing.T, ae *api.Error) {
				d := ae.Details.(map[string]any)
				if d["code"] != api.CodeUnavailable || d["message"] != "network is not available to tools on this server" || d["exit_code"] != int64(1) {
					t.Errorf("details %v: want the host's code and message", d)
				}
				if !strings.Contains(ae.Message, "unavailable: network is not available") {
					t.Errorf("message %q does not carry the code", ae.Message)
				}
			},
		},
		{
			name: "failure record of the tool's own", params: `{"mode":"forged_failure","value":{"error":{"code":"invalid_input","message":"n must be 2"}}}`, code: api.CodeToolFailed,
			check: func(t *testing.T, ae *api.Error) {
				d := ae.Details.(map[string]any)
				if d["code"] != "invalid_input" || d["exit_code"] != int64(2) {
					t.Errorf("details %v: want code invalid_input", d)
				}
			},
		},
		{
			name: "malformed failure record is ignored", params: `{"mode":"forged_failure","value":{"error":{"code":"Not A Code","message":"x"}}}`, code: api.CodeToolFailed,
			check: func(t *testing.T, ae *api.Error) {
				if d := ae.Details.(map[string]any); d["code"] != nil || d["message"] != nil {
					t.Errorf("details %v: a malformed record must not set a code", d)
				}
			},
		},
	}
	for _, form := range forms() {
		m := compile(t, e, "guest", form.bin)
		for _, tc := range tests {
			t.Run(form.name+"/"+tc.name, func(t *testing.T) {
				_, err := m.Execute(context.Background(), Call{Params: json.RawMessage(tc.params), Capabilities: tc.caps})
				ae, ok := api.AsError(err)
				if !ok || ae.Code != tc.code {
					t.Fatalf("err = %v, want code %s", err, tc.code)
				}
				if tc.check != nil {
					tc.check(t, ae)
				}
				// The exit code reaches the audit record typed, not through details.
				if d, ok := ae.Details.(map[string]any); ok && d["exit_code"] != nil {
					var te *ToolError
					if !errors.As(err, &te) || te.ExitCode == nil || int64(*te.ExitCode) != d["exit_code"] {
						t.Errorf("exit code %v in details, typed %+v", d["exit_code"], te)
					}
				}
			})
		}
	}
}

func TestEngineCallerCancel(t *testing.T) {
	e := newTestEngine(t, Config{})
	m := compile(t, e, "guest", guests.command)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := m.Execute(ctx, Call{Params: json.RawMessage(`{"mode":"loop"}`)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, ok := api.AsError(err); ok {
		t.Fatalf("a canceled call must not be reported as a tool error: %v", err)
	}
}

func TestEngineClosedModule(t *testing.T) {
	e := newTestEngine(t, Config{})
	m := compile(t, e, "guest", guests.reactor)
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := m.Execute(context.Background(), Call{})
	if errCode(err) != api.CodeToolNotFound {
		t.Fatalf("err = %v, want tool_not_found", err)
	}
}

func TestEngineLogs(t *testing.T) {
	e := newTestEngine(t, Config{MaxLogEntries: 5, MaxHostCalls: 100})
	m := compile(t, e, "guest", guests.command)
	res, err := m.Execute(context.Background(), Call{Params: json.RawMessage(`{"mode":"log","n":8}`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Logs) != 6 {
		t.Fatalf("got %d log entries, want 5 and a note: %v", len(res.Logs), res.Logs)
	}
	if res.Logs[0] != (api.LogEntry{Level: "debug", Message: "entry 0"}) {
		t.Errorf("first entry %+v", res.Logs[0])
	}
	if last := res.Logs[5]; last.Level != "warn" || !strings.Contains(last.Message, "3 entries dropped") {
		t.Errorf("last entry %+v, want the dropped note", last)
	}
}

func TestEngineHostCallLimit(t *testing.T) {
	e := newTestEngine(t, Config{MaxHostCalls: 3})
	m := compile(t, e, "guest", guests.reactor)
	res, err := m.Execute(context.Background(), Call{Params: json.RawMessage(`{"mode":"hostcalls","n":5}`)})
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Failed    int    `json:"failed"`
		LastError string `json:"last_error"`
	}
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatal(err)
	}
	if out.Failed != 2 || !strings.Contains(out.LastError, "host_call limit exceeded (max 3)") {
		t.Fatalf("got %+v, want 2 calls refused by the limit", out)
	}
	if res.HostCalls != 5 {
		t.Fatalf("HostCalls = %d, want 5", res.HostCalls)
	}
}

func TestEngineHostilePointers(t *testing.T) {
	e := newTestEngine(t, Config{})
	m := compile(t, e, "guest", guests.command)
	res, err := m.Execute(context.Background(), Call{Params: json.RawMessage(`{"mode":"hostile"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(res.Output, &got); err != nil {
		t.Fatal(err)
	}
	okReplyLen := float64(len(`{"ok":null}`))
	want := map[string]float64{
		"req_out_of_bounds":  -1,
		"req_len_huge":       -1,
		"resp_out_of_bounds": -1,
		"resp_cap_huge":      -1,
		"no_pending":         -1,
		"short":              -okReplyLen, // the reply does not fit: its length, negated
		"result_short":       -okReplyLen, // still does not fit
		"result_bad_ptr":     -1,
		"result":             okReplyLen, // fetched whole
		"after_fetch":        -1,         // nothing pending any more
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got["result_reply"] != `{"ok":null}` {
		t.Errorf("fetched reply %q", got["result_reply"])
	}
	if r, _ := got["malformed_reply"].(string); !strings.Contains(r, `"error"`) {
		t.Errorf("malformed request reply %q, want an error reply", r)
	}
	// Only the one well-formed log request with valid regions was served.
	if len(res.Logs) != 1 {
		t.Errorf("logs %v, want the one served hostile log call", res.Logs)
	}
}

// fakeHTTP records requests and answers with a fixed response or error.
type fakeHTTP struct {
	mu    sync.Mutex
	calls []CallInfo
	reqs  []HTTPRequest
	resp  HTTPResponse
	err   error
}

func (f *fakeHTTP) Do(ctx context.Context, call CallInfo, req HTTPRequest) (HTTPResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	f.reqs = append(f.reqs, req)
	return f.resp, f.err
}

func TestEngineHTTPRequest(t *testing.T) {
	big := strings.Repeat("a", 200_000) + "THE-END!"
	tests := []struct {
		name string
		doer HTTPDoer
		want string
	}{
		{
			name: "reply larger than the guest buffer is fetched whole",
			doer: &fakeHTTP{resp: HTTPResponse{Status: 201, Headers: map[string]string{"Content-Type": "text/plain"}, Body: []byte(big)}},
			want: `{"len":200008,"status":201,"tail":"THE-END!","truncated":false}`,
		},
		{
			name: "policy refusal reaches the guest with its code",
			doer: &fakeHTTP{err: api.Errorf(api.CodeBlockedByPolicy, "host example.com is not allowed")},
			want: `{"code":"blocked_by_policy","error":"host example.com is not allowed"}`,
		},
		{
			name: "internal errors are not shown to the guest",
			doer: &fakeHTTP{err: errors.New("dial tcp 10.1.2.3:443: secret internal detail")},
			want: `{"code":"upstream_error","error":"http request failed"}`,
		},
		{
			name: "no network configured",
			doer: nil,
			want: `{"code":"unavailable","error":"network is not available to tools on this server"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(t, Config{HTTP: tc.doer})
			manifest := &api.ToolManifest{Tool: api.ToolMeta{Name: "guest", Description: "d"}, Network: &api.ToolNetworkConfig{Allowlist: []string{"example.com"}}}
			m, err := e.Compile(context.Background(), "guest", guests.reactor, manifest)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(context.Background())
			caps := &api.ExecuteCapabilities{Credentials: []string{"github"}}
			res, err := m.Execute(context.Background(), Call{RequestID: "req-1", Params: json.RawMessage(`{"mode":"http","url":"https://example.com/x"}`), Capabilities: caps})
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Output) != tc.want {
				t.Fatalf("output %s\nwant   %s", res.Output, tc.want)
			}
			f, ok := tc.doer.(*fakeHTTP)
			if !ok {
				return
			}
			if len(f.reqs) != 1 {
				t.Fatalf("doer saw %d requests, want 1", len(f.reqs))
			}
			r, c := f.reqs[0], f.calls[0]
			if r.URL != "https://example.com/x" || r.Method != "POST" || r.Headers["X-Test"] != "1" || string(r.Body) != "hello" {
				t.Errorf("request %+v", r)
			}
			if c.Tool != "guest" || c.RequestID != "req-1" || c.Manifest != manifest || c.Capabilities != caps {
				t.Errorf("call info %+v", c)
			}
		})
	}
}

// Raw modules, hand-assembled: each is the smallest module showing one fault.
var (
	wasmHeader = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	typeVoid   = []byte{0x01, 0x04, 0x01, 0x60, 0x00, 0x00} // type 0: () -> ()
	funcOne    = []byte{0x03, 0x02, 0x01, 0x00}             // one function of type 0
	// _start: unreachable
	trapModule = cat(wasmHeader, typeVoid, funcOne,
		[]byte{0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00},
		[]byte{0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b})
	// _start is an import of env.foo
	badImportModule = cat(wasmHeader, typeVoid,
		[]byte{0x02, 0x0b, 0x01, 0x03, 'e', 'n', 'v', 0x03, 'f', 'o', 'o', 0x00, 0x00},
		[]byte{0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00})
	// an exported memory of 2000 pages (125 MiB) at start
	bigMemoryModule = cat(wasmHeader, typeVoid, funcOne,
		[]byte{0x05, 0x04, 0x01, 0x00, 0xd0, 0x0f},
		[]byte{0x07, 0x13, 0x02, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, 0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00},
		[]byte{0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b})
	// a function, but no entry point
	noEntryModule = cat(wasmHeader, typeVoid, funcOne, []byte{0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b})
)

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestEngineRawModules(t *testing.T) {
	e := newTestEngine(t, Config{MaxMemoryMB: 64})
	t.Run("trap is tool_failed", func(t *testing.T) {
		m := compile(t, e, "trap", trapModule)
		_, err := m.Execute(context.Background(), Call{})
		ae, ok := api.AsError(err)
		if !ok || ae.Code != api.CodeToolFailed {
			t.Fatalf("err = %v, want tool_failed", err)
		}
		if d := ae.Details.(map[string]any); d["trap"] == nil || d["exit_code"] != nil {
			t.Fatalf("details %v: want a trap and no exit code", d)
		}
		if te, ok := err.(*ToolError); !ok || te.ExitCode != nil {
			t.Fatalf("a trap is a ToolError without an exit code: %#v", err)
		}
	})
	for _, tc := range []struct {
		name string
		bin  []byte
	}{
		{"import clawbox does not provide", badImportModule},
		{"memory over the limit at start", bigMemoryModule},
		{"no entry point", noEntryModule},
		{"not wasm", []byte("definitely not a module")},
	} {
		t.Run("refused at compile: "+tc.name, func(t *testing.T) {
			m, err := e.Compile(context.Background(), "bad", tc.bin, nil)
			if err == nil {
				m.Close(context.Background())
				t.Fatal("compiled")
			}
		})
	}
}

func TestEngineOutputForms(t *testing.T) {
	tests := []struct {
		name, stdout, want string
	}{
		{"json object", `{"a":1}` + "\n", `{"a":1}`},
		{"json number", ` 42 `, `42`},
		{"plain text", "hello\n", `"hello\n"`},
		{"empty", "", `""`},
		{"invalid utf-8", "a\xffb", "\"a\ufffdb\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(parseOutput([]byte(tc.stdout))); got != tc.want {
				t.Fatalf("parseOutput(%q) = %s, want %s", tc.stdout, got, tc.want)
			}
		})
	}
}

// TestEngineCompilationCache shows the cache is reused on a second start: the first
// engine writes compiled code to the directory; the second compiles the same module
// without writing anything (a miss would add an entry or rewrite one).
func TestEngineCompilationCache(t *testing.T) {
	dir := t.TempDir()
	snapshot := func() map[string]string {
		files, err := readDirRecursive(dir)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, f := range files {
			st, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = fmt.Sprintf("%d %d", st.Size(), st.ModTime().UnixNano())
		}
		return out
	}
	var after []map[string]string
	for i := range 2 {
		e, err := NewEngine(context.Background(), Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		m, err := e.Compile(context.Background(), "trap", trapModule, nil)
		if err != nil {
			t.Fatal(err)
		}
		m.Close(context.Background())
		if err := e.Close(context.Background()); err != nil {
			t.Fatalf("engine %d: close: %v", i, err)
		}
		after = append(after, snapshot())
	}
	if len(after[0]) == 0 {
		t.Fatal("the first start wrote nothing to the compilation cache")
	}
	if !maps.Equal(after[0], after[1]) {
		t.Errorf("the second start rewrote the cache (a miss):\nfirst  %v\nsecond %v", after[0], after[1])
	}
}

func errCode(err error) string {
	if ae, ok := api.AsError(err); ok {
		return ae.Code
	}
	return ""
}

// BenchmarkExecute compares a call of the command form (the Go runtime starts on the
// request path) with the reactor form without a snapshot (the same, plus
// clawbox_run) and with one (each call's instance is restored from the state
// _initialize left: see snapshot.go).
func BenchmarkExecute(b *testing.B) {
	for _, bc := range []struct {
		name string
		bin  []byte
		pool int
	}{
		{"command", guests.command, 0},
		{"reactor/initialised", guests.reactor, -1},
		{"reactor/snapshot", guests.reactor, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e, err := NewEngine(context.Background(), Config{CacheDir: testCacheDir, PoolSize: bc.pool})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close(context.Background())
			m, err := e.Compile(context.Background(), "guest", bc.bin, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(context.Background())
			call := Call{Params: json.RawMessage(`{"mode":"echo","value":1}`)}
			for b.Loop() {
				if _, err := m.Execute(context.Background(), call); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestEngineGuestSeesNoHost(t *testing.T) {
	e := newTestEngine(t, Config{})
	for _, form := range forms() {
		t.Run(form.name, func(t *testing.T) {
			m := compile(t, e, "guest", form.bin)
			res, err := m.Execute(context.Background(), Call{Params: json.RawMessage(`{"mode":"sandbox"}`)})
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Env        []string `json:"env"`
				Args       int      `json:"args"`
				ReadFails  bool     `json:"read_fails"`
				DirFails   bool     `json:"dir_fails"`
				WriteFails bool     `json:"write_fails"`
				ClockReal  bool     `json:"clock_real"`
			}
			if err := json.Unmarshal(res.Output, &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Env) != 0 || got.Args > 1 || !got.ReadFails || !got.DirFails || !got.WriteFails {
				t.Fatalf("the guest sees the host: %s", res.Output)
			}
			if !got.ClockReal {
				t.Errorf("the guest's clock is not the real time: %s", res.Output)
			}
		})
	}
	if _, err := os.Stat("/tmp/clawbox-guest-was-here"); err == nil {
		t.Fatal("the guest wrote a host file")
	}
}

func TestToolFailureRecord(t *testing.T) {
	long := "a" + strings.Repeat("é", maxFailureMessageLen) // 2 bytes each: a cut at the limit splits one
	tests := []struct {
		name, stdout, code, msg string
		ok                      bool
	}{
		{"record", `{"error":{"code":"blocked_by_policy","message":"GET x is not allowed"}}`, "blocked_by_policy", "GET x is not allowed", true},
		{"surrounding space", " \n{\"error\":{\"code\":\"rate_limited\",\"message\":\"slow down\"}}\n", "rate_limited", "slow down", true},
		{"long message is cut to valid UTF-8", `{"error":{"code":"upstream_error","message":"` + long + `"}}`, "upstream_error", "a" + strings.Repeat("é", maxFailureMessageLen/2-1), true},
		{"empty", ``, "", "", false},
		{"not JSON", `boom`, "", "", false},
		{"trailing output", `{"error":{"code":"x","message":"y"}} more`, "", "", false},
		{"no error", `{"ok":1}`, "", "", false},
		{"error is a string", `{"error":"x"}`, "", "", false},
		{"no code", `{"error":{"message":"y"}}`, "", "", false},
		{"upper case", `{"error":{"code":"Blocked","message":"y"}}`, "", "", false},
		{"leading digit", `{"error":{"code":"1x","message":"y"}}`, "", "", false},
		{"too long", `{"error":{"code":"` + strings.Repeat("a", maxFailureCodeLen+1) + `","message":"y"}}`, "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, msg, ok := toolFailure([]byte(tc.stdout))
			if ok != tc.ok || code != tc.code || msg != tc.msg {
				t.Errorf("toolFailure = %q, %q (%d bytes), %v; want %q, %q, %v", code, msg, len(msg), ok, tc.code, tc.msg, tc.ok)
			}
		})
	}
}
