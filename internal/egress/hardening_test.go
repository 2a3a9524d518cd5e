package egress

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
)

// recordHolds reports whether any audit record holds s in any letter case.
func recordHolds(t *testing.T, rs []audit.Record, s string) bool {
	t.Helper()
	for _, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(string(b)), strings.ToLower(s)) {
			return true
		}
	}
	return false
}

// TestDoorScansWhatTheCallerSent sends the stored value where Go would change its
// case before the scan (a header name) or where nothing scanned it (the method),
// through the door's real socket. Before the fix both reached the upstream and were
// audited as allowed, the method in plain text.
func TestDoorScansWhatTheCallerSent(t *testing.T) {
	var hits atomic.Int32
	env := newDoorEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	tests := []struct {
		name string
		body string
		code string // default leak_detected
	}{
		{"header name as written", `{"url": "` + env.base + `/", "headers": {"X-` + testSecret + `": "1"}}`, ""},
		{"method", `{"url": "` + env.base + `/", "method": "` + testSecret + `"}`, ""},
		// Refused by the policy before the leak scan: the record must not hold the
		// method or host upper- or lower-cased either.
		{"method to a refused URL", `{"url": "https://refused.example/", "method": "` + testSecret + `"}`, api.CodeBlockedByPolicy},
		{"host of a refused URL", `{"url": "https://` + testSecret + `.example/"}`, api.CodeBlockedByPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e api.Error
			resp := env.call(t, "POST", "/proxy", bearerHeader, tt.body, &e)
			if tt.code == "" {
				tt.code = api.CodeLeakDetected
			}
			if resp.StatusCode != http.StatusForbidden || e.Code != tt.code {
				t.Fatalf("HTTP %d %+v, want 403 leak_detected", resp.StatusCode, e)
			}
			if n := hits.Load(); n != 0 {
				t.Fatalf("upstream got %d requests", n)
			}
			if rec := env.audit.last(t); tt.code == api.CodeLeakDetected && rec.Decision != audit.DecisionLeak {
				t.Fatalf("audited %q, want leak", rec.Decision)
			}
			if recordHolds(t, env.audit.all(), testSecret) {
				t.Fatal("the audit holds the credential")
			}
		})
	}
}

// TestDoScansRawHeaderNames is the WASM http_request path: the host call hands the
// gateway the tool's header map as the tool wrote it.
func TestDoScansRawHeaderNames(t *testing.T) {
	var cfg Config
	var hits atomic.Int32
	base := upstream(t, &cfg, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	env := newTestEnv(t, cfg)
	p, err := ParsePolicy([]string{"upstream.test:" + portOf(base)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Call{
		{Tool: "t", Policy: p, URL: base + "/", Headers: map[string]string{"x-" + testSecret: "1"}},
		{Tool: "t", Policy: p, URL: base + "/", Method: testSecret},
	} {
		_, err := env.gw.Do(context.Background(), c)
		wantCode(t, err, api.CodeLeakDetected)
	}
	if hits.Load() != 0 {
		t.Fatalf("upstream got %d requests", hits.Load())
	}
	if recordHolds(t, env.audit.all(), testSecret) {
		t.Fatal("the audit holds the credential")
	}
}

// lowerSecret is a credential in lower case: an upstream that echoes it into a
// header name hands it back exact, because the door lower-cases names.
const lowerSecret = "lower-case-secret-value-4711"

type lowerSecrets struct{}

func (lowerSecrets) CheckOutbound([]string, string, *url.URL, http.Header, []byte) error {
	return nil
}

func (lowerSecrets) Inject(_ []string, req *http.Request) ([]string, error) {
	req.Header.Set("Authorization", "Bearer "+lowerSecret)
	return []string{"low"}, nil
}

func (lowerSecrets) Redact(b []byte) ([]byte, int) {
	return bytes.ReplaceAll(b, []byte(lowerSecret), []byte("[REDACTED]")), bytes.Count(b, []byte(lowerSecret))
}

// TestDoorRedactsResponseHeaderNames: before the fix header names were not redacted.
func TestDoorRedactsResponseHeaderNames(t *testing.T) {
	env := newDoorEnv(t, Config{Secrets: lowerSecrets{}}, func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.Header()["x-echo-"+tok] = []string{"v"}
		w.Header()["X-Upper-"+strings.ToUpper(tok)] = []string{"v"}
		w.Header().Set("X-Value", tok)
		io.WriteString(w, "body "+tok)
	})
	var out ProxyResponse
	resp := env.call(t, "POST", "/proxy", bearerHeader, `{"url": "`+env.base+`/"}`, &out)
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	b, _ := json.Marshal(out)
	if strings.Contains(strings.ToLower(string(b)), lowerSecret) {
		t.Fatalf("the response holds the credential: %s", b)
	}
	if out.Headers["x-value"] != "[REDACTED]" || out.Body != "body [REDACTED]" {
		t.Fatalf("response %s", b)
	}
}

// TestDoorConcurrencyLimit: one request more than MaxConcurrentPerDoor is refused at
// once with 429, while the others are still in flight.
func TestDoorConcurrencyLimit(t *testing.T) {
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	env := newDoorEnv(t, Config{MaxConcurrentPerDoor: 2}, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	})
	body := `{"url": "` + env.base + `/"}`
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", "http://door/proxy", strings.NewReader(body))
			req.Header = bearerHeader.Clone()
			if resp, err := env.client.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	defer wg.Wait()
	defer close(release)
	for range 2 {
		<-arrived
	}
	var e api.Error
	resp := env.call(t, "POST", "/proxy", bearerHeader, body, &e)
	if resp.StatusCode != http.StatusTooManyRequests || e.Code != api.CodeRateLimited || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("HTTP %d %+v, want 429 rate_limited with Retry-After", resp.StatusCode, e)
	}
}

// TestDoorCloseWhileRequestsArrive closes a door while requests keep arriving; run
// with -race. The shutdown timeout is so short that Close cuts connections off while
// their requests are being dispatched: before the fix a handler could call
// inflight.Add while Close waited (the race detector reported it in about one run
// in two of this test).
func TestDoorCloseWhileRequestsArrive(t *testing.T) {
	for range 50 {
		env := newDoorEnv(t, Config{MaxConcurrentPerDoor: 64, DoorShutdownTimeout: time.Microsecond}, func(w http.ResponseWriter, r *http.Request) {})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					req, _ := http.NewRequest("GET", "http://door/health", nil)
					resp, err := env.client.Do(req)
					if err != nil {
						continue
					}
					resp.Body.Close()
				}
			}()
		}
		if err := env.door.Close(); err != nil {
			t.Fatal(err)
		}
		close(stop)
		wg.Wait()
	}
}

// repeatReader yields n bytes of c without holding them.
type repeatReader struct {
	n int64
	c byte
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), r.n))
	for i := range p[:k] {
		p[i] = r.c
	}
	r.n -= int64(k)
	return k, nil
}

// TestDoorMemoryBound sends 40 concurrent 9 MiB requests to a refused URL (the
// attack that took the server from 67 MB to 1.56 GB) and measures the heap: it must
// stay below 3 × MaxRequestBytes × MaxConcurrentPerDoor above where it started.
func TestDoorMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 360 MiB through a door; run without -short")
	}
	const limit = 10 << 20
	const conc = 4
	env := newDoorEnv(t, Config{MaxRequestBytes: limit, MaxConcurrentPerDoor: conc, RefusalsPerSecond: -1}, func(w http.ResponseWriter, r *http.Request) {})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	const n = 40
	const size = 9 << 20
	var wg sync.WaitGroup
	var refused, limited atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prefix := `{"url": "https://refused.example/", "body": "`
			body := io.MultiReader(strings.NewReader(prefix), &repeatReader{n: size, c: 'a'}, strings.NewReader(`"}`))
			req, _ := http.NewRequest("POST", "http://door/proxy", body)
			req.ContentLength = int64(len(prefix)) + size + 2
			req.Header = bearerHeader.Clone()
			resp, err := env.client.Do(req)
			if err != nil {
				return // a 429 may close the connection before the body is sent
			}
			defer resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusForbidden:
				refused.Add(1)
			case http.StatusTooManyRequests:
				limited.Add(1)
			default:
				t.Errorf("HTTP %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(done)
	<-sampled
	if refused.Load() == 0 {
		t.Fatal("no request was refused by the policy")
	}
	grew := int64(peak.Load()) - int64(base)
	bound := int64(3 * limit * conc)
	t.Logf("heap in use grew by %d MiB (bound %d MiB); %d refused, %d rate limited", grew>>20, bound>>20, refused.Load(), limited.Load())
	if grew > bound {
		t.Fatalf("heap in use grew by %d MiB, more than %d MiB", grew>>20, bound>>20)
	}
}

// TestRefusalBudget: refusals count against a budget of their own; once it is spent
// every request of the caller is refused with 429 (through the door before its body
// is read), until the budget refills.
func TestRefusalBudget(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	env := newDoorEnv(t, Config{RefusalsPerSecond: 1, RefusalBurst: 3, Now: clock}, func(w http.ResponseWriter, r *http.Request) {})
	refusedBody := `{"url": "https://refused.example/"}`
	okBody := `{"url": "` + env.base + `/"}`
	for i := range 3 {
		var e api.Error
		if resp := env.call(t, "POST", "/proxy", bearerHeader, refusedBody, &e); resp.StatusCode != 403 {
			t.Fatalf("refusal %d: HTTP %d %+v", i, resp.StatusCode, e)
		}
	}
	var e api.Error
	resp := env.call(t, "POST", "/proxy", bearerHeader, okBody, &e)
	if resp.StatusCode != http.StatusTooManyRequests || e.Code != api.CodeRateLimited {
		t.Fatalf("after the budget: HTTP %d %+v, want 429 rate_limited", resp.StatusCode, e)
	}
	if rec := env.audit.last(t); rec.Decision != audit.DecisionRateLimited {
		t.Fatalf("audited %q", rec.Decision)
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if resp := env.call(t, "POST", "/proxy", bearerHeader, okBody, nil); resp.StatusCode != 200 {
		t.Fatalf("after refilling: HTTP %d", resp.StatusCode)
	}
}

func TestUnquoteInPlace(t *testing.T) {
	for _, s := range []string{"", "plain", `a"b\c/d`, "\b\f\n\r\t", "é€😀", "\u2028", "\U0001F600"} {
		lit, _ := json.Marshal(s)
		esc := []byte(`"` + strings.ReplaceAll(strings.Trim(string(lit), `"`), "/", `\/`) + `"`)
		got, err := unquoteInPlace(esc)
		if err != nil || string(got) != s {
			t.Errorf("%s: %q %v, want %q", lit, got, err, s)
		}
	}
	got, err := unquoteInPlace([]byte(`"\u0067\u0068\u0070_x \ud800 \u00e9"`))
	if err != nil || string(got) != "ghp_x \ufffd é" {
		t.Errorf("escapes: %q %v", got, err)
	}
	for _, bad := range []string{`"\x"`, `"\u12"`, "\"\xff\"", "\"a\nb\"", `"a"b"`, `x`} {
		if _, err := unquoteInPlace([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := base64DecodeInPlace([]byte("!!")); err == nil {
		t.Error("bad base64 accepted")
	}
	if n, err := base64DecodeInPlace([]byte("aGVs\nbG8=")); err != nil || n != 5 {
		t.Errorf("base64 with a line break: %d %v", n, err)
	}
}

func (lowerSecrets) CheckBody([]string, string, *url.URL, []byte) error { return nil }

func (lowerSecrets) StreamCarry() int { return len(lowerSecret) }

func (lowerSecrets) RedactStream(w io.Writer) io.WriteCloser {
	return &holdbackRedactor{w: w, secret: []byte(lowerSecret)}
}
