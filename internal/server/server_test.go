package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func newTestServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, nil
}

func start(t *testing.T, s *Server) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

type result struct {
	status int
	header http.Header
	body   []byte
	err    api.Error
}

func do(t *testing.T, ts *httptest.Server, method, path, token, contentType, body string) result {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode >= 400 && method != "HEAD" {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: error with content type %q: %s", method, path, ct, b)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r.err); err != nil {
			t.Errorf("%s %s: error body %q is not the API error shape: %v", method, path, b, err)
		}
		if r.err.Code == "" || r.err.Message == "" {
			t.Errorf("%s %s: error body %q lacks error or code", method, path, b)
		}
	}
	return r
}

// echoRoute is a real route on the real router that decodes a body strictly.
type echoReq struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
}

func addTestRoutes(s *Server) {
	s.Handle(Route{Method: http.MethodPost, Pattern: "/test/echo", Handler: func(w http.ResponseWriter, r *http.Request) error {
		var req echoReq
		if err := DecodeJSON(r, &req); err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, req)
		return nil
	}, Doc: Doc{Summary: "echo", Request: echoReq{}, Responses: []Response{{Status: 200, Body: echoReq{}}}}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/test/fail", Handler: func(w http.ResponseWriter, r *http.Request) error {
		return errors.New("sqlite: disk I/O error at /secret/path")
	}, Doc: Doc{Summary: "fail"}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/test/panic", Handler: func(w http.ResponseWriter, r *http.Request) error {
		panic("boom with secret detail")
	}, Doc: Doc{Summary: "panic"}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/test/items/{id}", Handler: func(w http.ResponseWriter, r *http.Request) error {
		return api.Errorf(api.CodeNotFound, "item %q not found", r.PathValue("id"))
	}, Doc: Doc{Summary: "item"}})
}

func TestAuth(t *testing.T) {
	s, _ := newTestServer(t, Config{PublicHealth: true, PublicMetrics: true})
	addTestRoutes(s)
	ts := start(t, s)

	cases := []struct {
		name   string
		header string
		status int
	}{
		{"no header", "", 401},
		{"wrong token", "Bearer nope", 401},
		{"lower-case scheme", "bearer " + testToken, 401},
		{"basic scheme", "Basic " + testToken, 401},
		{"double space", "Bearer  " + testToken, 401},
		{"token prefix only", "Bearer " + testToken[:10], 401},
		{"valid", "Bearer " + testToken, 404}, // the route answers: item not found
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", ts.URL+"/test/items/x", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e api.Error
			json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tc.status, e)
			}
			if tc.status == 401 {
				if e.Code != api.CodeAuthRequired {
					t.Errorf("code %q, want auth_required", e.Code)
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
}

func TestHealthPublicAndDetailed(t *testing.T) {
	s, _ := newTestServer(t, Config{PublicHealth: true, Version: "v9", Health: []HealthCheck{
		{Name: "docker", Check: func(context.Context) api.ComponentHealth {
			return api.ComponentHealth{Status: api.StatusUnavailable, Detail: "no daemon"}
		}},
	}})
	ts := start(t, s)

	r := do(t, ts, "GET", "/health", "", "", "")
	var h map[string]any
	json.Unmarshal(r.body, &h)
	if r.status != 200 || h["status"] != "degraded" || len(h) != 1 {
		t.Errorf("public health = %d %s, want only a status", r.status, r.body)
	}
	r = do(t, ts, "GET", "/health", testToken, "", "")
	var full api.HealthResponse
	json.Unmarshal(r.body, &full)
	if full.Version != "v9" || full.Components["docker"].Status != api.StatusUnavailable {
		t.Errorf("authenticated health = %s", r.body)
	}
	// A wrong token on a public route is treated as no token, not as an error.
	r = do(t, ts, "GET", "/health", "wrong", "", "")
	if r.status != 200 || strings.Contains(string(r.body), "v9") {
		t.Errorf("health with a wrong token = %d %s", r.status, r.body)
	}

	priv, _ := newTestServer(t, Config{PublicHealth: false, PublicMetrics: false})
	pts := start(t, priv)
	if r := do(t, pts, "GET", "/health", "", "", ""); r.status != 401 {
		t.Errorf("private health without token: %d", r.status)
	}
	if r := do(t, pts, "GET", "/metrics", "", "", ""); r.status != 401 {
		t.Errorf("private metrics without token: %d", r.status)
	}
	if r := do(t, pts, "GET", "/metrics", testToken, "", ""); r.status != 200 {
		t.Errorf("private metrics with token: %d", r.status)
	}
}

func TestMetrics(t *testing.T) {
	s, _ := newTestServer(t, Config{PublicMetrics: true})
	addTestRoutes(s)
	ts := start(t, s)
	do(t, ts, "GET", "/test/items/abc", testToken, "", "")
	do(t, ts, "GET", "/nope/random-1", "", "", "")
	do(t, ts, "GET", "/nope/random-2", "", "", "")
	r := do(t, ts, "GET", "/metrics", "", "", "")
	body := string(r.body)
	for _, want := range []string{
		`clawbox_http_requests_total{code="404",method="GET",route="/test/items/{id}"} 1`,
		`clawbox_http_requests_total{code="404",method="GET",route="unmatched"} 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, "random-1") || strings.Contains(body, "abc") {
		t.Error("metrics labels carry request paths (unbounded cardinality)")
	}
}

func TestErrorShapes(t *testing.T) {
	s, _ := newTestServer(t, Config{MaxBodyBytes: 64})
	addTestRoutes(s)
	ts := start(t, s)
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
		field                           string
	}{
		{"unknown route", "GET", "/no/such/route", "", "", 404, "not_found", ""},
		{"unknown route without token", "DELETE", "/containers/x/y", "", "", 404, "not_found", ""},
		{"wrong method", "DELETE", "/test/echo", "", "", 405, "method_not_allowed", ""},
		{"malformed json", "POST", "/test/echo", "application/json", `{"name":`, 400, "invalid_json", ""},
		{"not json at all", "POST", "/test/echo", "application/json", `hello`, 400, "invalid_json", ""},
		{"empty body", "POST", "/test/echo", "application/json", ``, 400, "invalid_json", ""},
		{"trailing data", "POST", "/test/echo", "application/json", `{} {}`, 400, "invalid_json", ""},
		{"wrong type", "POST", "/test/echo", "application/json", `{"count":"three"}`, 400, "invalid_request", "count"},
		{"wrong nested type", "POST", "/test/echo", "application/json", `{"tags":[1]}`, 400, "invalid_request", "tags"},
		{"wrong top-level type", "POST", "/test/echo", "application/json", `[1,2]`, 400, "invalid_request", ""},
		{"unknown field", "POST", "/test/echo", "application/json", `{"nmae":"x"}`, 400, "invalid_request", "nmae"},
		{"too large", "POST", "/test/echo", "application/json", `{"name":"` + strings.Repeat("a", 100) + `"}`, 413, "request_too_large", ""},
		{"wrong content type", "POST", "/test/echo", "text/plain", `{}`, 415, "unsupported_media_type", ""},
		{"missing content type", "POST", "/test/echo", "", `{}`, 415, "unsupported_media_type", ""},
		{"internal error", "GET", "/test/fail", "", "", 500, "internal_error", ""},
		{"panic", "GET", "/test/panic", "", "", 500, "internal_error", ""},
		{"domain error", "GET", "/test/items/zz", "", "", 404, "not_found", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, ts, tc.method, tc.path, testToken, tc.ctype, tc.body)
			if r.status != tc.status || r.err.Code != tc.code {
				t.Fatalf("got %d %q (%s), want %d %q", r.status, r.err.Code, r.body, tc.status, tc.code)
			}
			if tc.field != "" {
				d, _ := r.err.Details.(map[string]any)
				if d["field"] != tc.field {
					t.Errorf("details %v do not name field %q", r.err.Details, tc.field)
				}
			}
			for _, secret := range []string{"sqlite", "/secret/path", "boom"} {
				if strings.Contains(string(r.body), secret) {
					t.Errorf("internal detail %q leaked to the client: %s", secret, r.body)
				}
			}
			if r.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
		})
	}
	r := do(t, ts, "DELETE", "/test/echo", testToken, "", "")
	if allow := r.header.Get("Allow"); allow != "POST" {
		t.Errorf("405 Allow = %q", allow)
	}
	// HEAD works where GET does.
	r = do(t, ts, "HEAD", "/health", testToken, "", "")
	if r.status != 200 {
		t.Errorf("HEAD /health = %d", r.status)
	}
	// A good request still works.
	r = do(t, ts, "POST", "/test/echo", testToken, "application/json; charset=utf-8", `{"name":"x","count":2}`)
	if r.status != 200 || !strings.Contains(string(r.body), `"count":2`) {
		t.Errorf("valid request = %d %s", r.status, r.body)
	}
}

func TestRequestIDPropagation(t *testing.T) {
	s, _ := newTestServer(t, Config{})
	ts := start(t, s)
	req, _ := http.NewRequest("GET", ts.URL+"/health", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("X-Request-Id = %q", got)
	}
	req.Header.Set("X-Request-Id", "bad id with spaces")
	resp, err = ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got == "" || strings.Contains(got, " ") {
		t.Errorf("hostile X-Request-Id echoed: %q", got)
	}
}

func TestNewRequiresToken(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a token succeeded")
	}
}
