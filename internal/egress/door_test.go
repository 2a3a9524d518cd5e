package egress

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
)

const doorToken = "0123456789abcdef0123456789abcdef"

// doorClient talks HTTP/1.1 to a door's Unix socket.
func doorClient(t *testing.T, path string) *http.Client {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

type doorEnv struct {
	*testEnv
	door   *Door
	client *http.Client
	base   string // the upstream, http://upstream.test:port
}

func newDoorEnv(t *testing.T, cfg Config, h http.HandlerFunc) *doorEnv {
	t.Helper()
	base := upstream(t, &cfg, h)
	env := newTestEnv(t, cfg)
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	d, err := env.gw.OpenDoor(DoorSpec{
		SandboxID:    "sandbox-1",
		SocketPath:   sock,
		Allowlist:    []string{"*.upstream.test:" + portOf(base)},
		Narrow:       []string{"upstream.test:" + portOf(base)},
		Credentials:  []string{"tok"},
		Authenticate: func(tok string) bool { return tok == doorToken },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return &doorEnv{testEnv: env, door: d, client: doorClient(t, sock), base: base}
}

// call sends a request to the door and decodes the JSON answer into out.
func (e *doorEnv) call(t *testing.T, method, path string, header http.Header, body string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, "http://door"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: content type %q", method, path, ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp
}

var bearerHeader = http.Header{"Authorization": {"Bearer " + doorToken}}

func TestDoorProxy(t *testing.T) {
	env := newDoorEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Method", r.Method)
			w.Header().Add("X-Multi", "a")
			w.Header().Add("X-Multi", "b")
			w.Write(b)
		case "/auth":
			io.WriteString(w, r.Header.Get("Authorization"))
		case "/redirect":
			http.Redirect(w, r, "https://elsewhere.example/", http.StatusMovedPermanently)
		case "/binary":
			w.Write([]byte{0xff, 0x00, 0xfe, 'x'})
		case "/big":
			io.WriteString(w, strings.Repeat("z", 2000))
		}
	})
	tests := []struct {
		name   string
		req    string
		status int // upstream status in the JSON answer
		check  func(t *testing.T, r ProxyResponse)
	}{
		{"POST with text body", `{"url": "` + env.base + `/echo", "method": "POST", "body": "hello", "headers": {"X-A": "1"}}`, 200,
			func(t *testing.T, r ProxyResponse) {
				if r.Body != "hello" || r.BodyBase64 != "" || r.Truncated || r.Headers["x-method"] != "POST" || r.Headers["x-multi"] != "a, b" {
					t.Fatalf("%+v", r)
				}
			}},
		{"method defaults to GET", `{"url": "` + env.base + `/echo"}`, 200,
			func(t *testing.T, r ProxyResponse) {
				if r.Headers["x-method"] != "GET" {
					t.Fatalf("%+v", r)
				}
			}},
		{"binary request body", `{"url": "` + env.base + `/echo", "method": "PUT", "body_base64": "` + base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff}) + `"}`, 200,
			func(t *testing.T, r ProxyResponse) {
				if r.Body != "" || r.BodyBase64 != base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff}) {
					t.Fatalf("%+v", r)
				}
			}},
		{"binary response body", `{"url": "` + env.base + `/binary"}`, 200,
			func(t *testing.T, r ProxyResponse) {
				b, err := base64.StdEncoding.DecodeString(r.BodyBase64)
				if err != nil || !bytes.Equal(b, []byte{0xff, 0x00, 0xfe, 'x'}) || r.Body != "" {
					t.Fatalf("%+v", r)
				}
			}},
		{"credential injected and redacted", `{"url": "` + env.base + `/auth"}`, 200,
			func(t *testing.T, r ProxyResponse) {
				if r.Body != "Bearer [REDACTED]" {
					t.Fatalf("%+v", r)
				}
			}},
		{"redirect returned", `{"url": "` + env.base + `/redirect"}`, 301,
			func(t *testing.T, r ProxyResponse) {
				if r.Headers["location"] != "https://elsewhere.example/" {
					t.Fatalf("%+v", r)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out ProxyResponse
			resp := env.call(t, "POST", "/proxy", bearerHeader, tt.req, &out)
			if resp.StatusCode != 200 || out.Status != tt.status {
				t.Fatalf("HTTP %d, upstream status %d, want 200 and %d", resp.StatusCode, out.Status, tt.status)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Fatal("no X-Request-Id")
			}
			tt.check(t, out)
			rec := env.audit.last(t)
			if rec.ContainerID != "sandbox-1" || rec.RequestID != resp.Header.Get("X-Request-Id") || rec.Decision != audit.DecisionAllowed {
				t.Fatalf("audit record %+v", rec)
			}
		})
	}
}

func TestDoorTruncates(t *testing.T) {
	env := newDoorEnv(t, Config{MaxResponseBytes: 100}, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("z", 2000))
	})
	var out ProxyResponse
	env.call(t, "POST", "/proxy", bearerHeader, `{"url": "`+env.base+`/big"}`, &out)
	if !out.Truncated || out.Body != strings.Repeat("z", 100) {
		t.Fatalf("truncated %v, %d bytes", out.Truncated, len(out.Body))
	}
}

func TestDoorErrors(t *testing.T) {
	env := newDoorEnv(t, Config{MaxRequestBytes: 1024}, func(w http.ResponseWriter, r *http.Request) {})
	basic := func(user, pass string) http.Header {
		return http.Header{"Proxy-Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}}
	}
	ok := `{"url": "` + env.base + `/"}`
	tests := []struct {
		name   string
		method string
		path   string
		header http.Header
		body   string
		status int
		code   string // "" for success
	}{
		{"no token", "POST", "/proxy", nil, ok, 401, api.CodeUnauthorized},
		{"wrong token", "POST", "/proxy", http.Header{"Authorization": {"Bearer nope"}}, ok, 401, api.CodeUnauthorized},
		{"not bearer", "POST", "/proxy", http.Header{"Authorization": {"Token " + doorToken}}, ok, 401, api.CodeUnauthorized},
		{"basic with wrong password", "POST", "/proxy", basic("x", "nope"), ok, 401, api.CodeUnauthorized},
		{"token as basic user is not enough", "POST", "/proxy", basic(doorToken, ""), ok, 401, api.CodeUnauthorized},
		{"proxy-authorization basic", "POST", "/proxy", basic("anything", doorToken), ok, 200, ""},
		{"proxy-authorization bearer", "POST", "/proxy", http.Header{"Proxy-Authorization": {"Bearer " + doorToken}}, ok, 200, ""},
		{"unknown route", "GET", "/nope", bearerHeader, "", 404, api.CodeNotFound},
		{"unknown route unauthenticated", "POST", "/admin", nil, "", 404, api.CodeNotFound},
		{"wrong method on proxy", "GET", "/proxy", bearerHeader, "", 405, api.CodeMethodNotAllowed},
		{"wrong method on health", "DELETE", "/health", nil, "", 405, api.CodeMethodNotAllowed},
		{"too large", "POST", "/proxy", bearerHeader, `{"url": "` + strings.Repeat("a", 2000) + `"}`, 413, api.CodeTooLarge},
		{"malformed JSON", "POST", "/proxy", bearerHeader, `{"url": `, 400, api.CodeInvalidJSON},
		{"trailing data", "POST", "/proxy", bearerHeader, ok + ` {}`, 400, api.CodeInvalidJSON},
		{"not an object", "POST", "/proxy", bearerHeader, `["x"]`, 400, api.CodeInvalidRequest},
		{"unknown field", "POST", "/proxy", bearerHeader, `{"url": "http://a/", "container_id": "other"}`, 400, api.CodeInvalidRequest},
		{"wrong type", "POST", "/proxy", bearerHeader, `{"url": 5}`, 400, api.CodeInvalidRequest},
		{"missing url", "POST", "/proxy", bearerHeader, `{}`, 400, api.CodeInvalidRequest},
		{"both bodies", "POST", "/proxy", bearerHeader, `{"url": "http://a/", "body": "x", "body_base64": "eA=="}`, 400, api.CodeInvalidRequest},
		{"bad base64", "POST", "/proxy", bearerHeader, `{"url": "` + env.base + `/", "body_base64": "!!"}`, 400, api.CodeInvalidRequest},
		{"bad base64 to a refused URL is refused by the policy first", "POST", "/proxy", bearerHeader, `{"url": "http://a/", "body_base64": "!!"}`, 403, api.CodeBlockedByPolicy},
		{"method too long", "POST", "/proxy", bearerHeader, `{"url": "` + env.base + `/", "method": "` + strings.Repeat("G", MaxMethodLen+1) + `"}`, 400, api.CodeInvalidRequest},
		{"method not a token", "POST", "/proxy", bearerHeader, `{"url": "` + env.base + `/", "method": "GET /x"}`, 400, api.CodeInvalidRequest},
		{"blocked by policy", "POST", "/proxy", bearerHeader, `{"url": "https://evil.example/"}`, 403, api.CodeBlockedByPolicy},
		{"request list narrows the server list", "POST", "/proxy", bearerHeader, `{"url": "` + strings.Replace(env.base, "upstream.test", "sub.upstream.test", 1) + `/"}`, 403, api.CodeBlockedByPolicy},
		{"leak", "POST", "/proxy", bearerHeader, `{"url": "` + env.base + `/", "headers": {"X-Key": "` + testSecret + `"}}`, 403, api.CodeLeakDetected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e api.Error
			resp := env.call(t, tt.method, tt.path, tt.header, tt.body, &e)
			if resp.StatusCode != tt.status || e.Code != tt.code {
				t.Fatalf("HTTP %d %+v, want %d %q", resp.StatusCode, e, tt.status, tt.code)
			}
			if tt.code != "" && e.Message == "" {
				t.Fatalf("error without message: %+v", e)
			}
			if tt.status == 405 && resp.Header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
			if tt.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
}

func TestDoorHealthAndSocket(t *testing.T) {
	env := newDoorEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {})
	var h map[string]string
	resp := env.call(t, "GET", "/health", nil, "", &h)
	if resp.StatusCode != 200 || h["container_id"] != "sandbox-1" || h["status"] != "ok" || len(h) != 2 {
		t.Fatalf("HTTP %d %v", resp.StatusCode, h)
	}
	fi, err := os.Stat(env.door.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o666 {
		t.Fatalf("socket mode %v, want a 0666 socket", fi.Mode())
	}
}

func TestDoorSocketFile(t *testing.T) {
	env := newTestEnv(t, Config{})
	spec := func(path string) DoorSpec {
		return DoorSpec{SandboxID: "s", SocketPath: path, Authenticate: func(string) bool { return true }}
	}

	t.Run("stale socket is replaced", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "proxy.sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		ln.Close() // leaves the file behind, as a crashed server would
		d, err := env.gw.OpenDoor(spec(path))
		if err != nil {
			t.Fatalf("OpenDoor over a stale socket: %v", err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("live socket is an error", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "proxy.sock")
		d, err := env.gw.OpenDoor(spec(path))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if d2, err := env.gw.OpenDoor(spec(path)); err == nil {
			d2.Close()
			t.Fatal("a second door opened on a live socket")
		}
		// The first door still works.
		var h map[string]string
		resp, err := doorClient(t, path).Get("http://door/health")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if h["status"] != "ok" {
			t.Fatalf("health after a refused second door: %v", h)
		}
	})
	t.Run("bad rule is an error naming it", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "proxy.sock")
		s := spec(path)
		s.Allowlist, s.Narrow = []string{"*"}, []string{"ftp://x.example"}
		_, err := env.gw.OpenDoor(s)
		e := wantCode(t, err, api.CodeInvalidRequest)
		if !strings.Contains(e.Message, "ftp://x.example") {
			t.Fatalf("error %q does not name the rule", e.Message)
		}
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Fatalf("a socket was left behind: %v", err)
		}
	})
	t.Run("regular file is an error", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "proxy.sock")
		os.WriteFile(path, []byte("x"), 0o600)
		if d, err := env.gw.OpenDoor(spec(path)); err == nil {
			d.Close()
			t.Fatal("a door replaced a regular file")
		}
	})
	t.Run("close removes the socket and is idempotent", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "proxy.sock")
		d, err := env.gw.OpenDoor(spec(path))
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Fatalf("socket still there after Close: %v", err)
		}
	})
}

// Close waits for a request in flight, and cuts it off after DoorShutdownTimeout.
func TestDoorCloseWithRequestInFlight(t *testing.T) {
	entered := make(chan struct{})
	stop := make(chan struct{})
	cfg := Config{DoorShutdownTimeout: 50 * time.Millisecond}
	env := newDoorEnv(t, cfg, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	t.Cleanup(func() { close(stop) })
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://door/proxy", strings.NewReader(`{"url": "`+env.base+`/"}`))
		req.Header = bearerHeader.Clone()
		resp, err := env.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-entered
	if err := env.door.Close(); err != nil {
		t.Fatal(err)
	}
	// The in-flight request was cut off: the client sees an error or an error answer,
	// and the pipeline recorded it.
	<-errc
	if rec := env.audit.last(t); rec.Decision != audit.DecisionError {
		t.Fatalf("audit record of the cut-off request: %+v", rec)
	}
}

func TestDoorConcurrentRequests(t *testing.T) {
	env := newDoorEnv(t, Config{MaxConcurrentPerDoor: 16}, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Query().Get("n"))
	})
	const n = 16
	errs := make(chan error, n)
	for i := range n {
		go func() {
			want := strings.Repeat("x", i+1)
			body := `{"url": "` + env.base + `/?n=` + want + `"}`
			req, _ := http.NewRequest("POST", "http://door/proxy", strings.NewReader(body))
			req.Header = bearerHeader.Clone()
			resp, err := env.client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var out ProxyResponse
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				errs <- err
				return
			}
			if out.Body != want {
				errs <- fmt.Errorf("got %q, want %q", out.Body, want)
				return
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
