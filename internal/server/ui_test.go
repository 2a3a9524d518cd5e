package server

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/ui"
)

// TestUIServed: the dashboard is served at /ui/ without a token, with its CSP, and
// behind the same Host and Origin checks as the API; it is not an API route.
func TestUIServed(t *testing.T) {
	s, _ := newTestServer(t, Config{})
	ts := start(t, s)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())

	r := do(t, ts, "GET", "/ui/", "", "", "")
	if r.status != 200 || !strings.Contains(string(r.body), `<script type="module" src="js/app.js">`) {
		t.Fatalf("GET /ui/ = %d %.200s", r.status, r.body)
	}
	if got := r.header.Get("Content-Security-Policy"); got != ui.CSP {
		t.Errorf("CSP = %q", got)
	}
	if got := r.header.Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}
	if r := do(t, ts, "GET", "/ui/js/app.js", "", "", ""); r.status != 200 || r.header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("GET /ui/js/app.js = %d %q", r.status, r.header.Get("Content-Type"))
	}
	if r := do(t, ts, "HEAD", "/ui/style.css", "", "", ""); r.status != 200 || len(r.body) != 0 {
		t.Errorf("HEAD /ui/style.css = %d with %d bytes", r.status, len(r.body))
	}

	// /ui redirects to /ui/ without following anything else.
	c := ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(ts.URL + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui = %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/ui/nope.js", 404, api.CodeNotFound},
		{"GET", "/ui/js/", 404, api.CodeNotFound},
		{"GET", "/ui/js/../index.html", 404, api.CodeNotFound},
		{"GET", "/ui//index.html", 404, api.CodeNotFound},
		{"GET", "/ui/%2e%2e/openapi.json", 404, api.CodeNotFound},
		{"POST", "/ui/", 405, api.CodeMethodNotAllowed},
		{"DELETE", "/ui/js/app.js", 405, api.CodeMethodNotAllowed},
		{"PUT", "/ui", 405, api.CodeMethodNotAllowed},
	} {
		r := do(t, ts, tc.method, tc.path, "", "", "")
		if r.status != tc.status || r.err.Code != tc.code {
			t.Errorf("%s %s = %d %q, want %d %q", tc.method, tc.path, r.status, r.err.Code, tc.status, tc.code)
		}
		if r.status == 405 && r.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, r.header.Get("Allow"))
		}
	}

	// A rebound name and a foreign page are refused as on every API route.
	if status, e := browserRequest(t, ts.Client(), ts.URL, "/ui/", "evil.example:"+port, ""); status != 421 || e.Code != api.CodeHostNotAllowed {
		t.Errorf("rebound /ui/ = %d %q", status, e.Code)
	}
	if status, e := browserRequest(t, ts.Client(), ts.URL, "/ui/js/app.js", "127.0.0.1:"+port, "http://evil.example"); status != 403 || e.Code != api.CodeOriginNotAllowed {
		t.Errorf("cross-site /ui/js/app.js = %d %q", status, e.Code)
	}
	if status, _ := browserRequest(t, ts.Client(), ts.URL, "/ui/js/app.js", "127.0.0.1:"+port, "http://127.0.0.1:"+port); status != 200 {
		t.Errorf("same-origin /ui/js/app.js = %d", status)
	}

	// Not an API route: absent from the OpenAPI document, counted under one route label.
	doc := do(t, ts, "GET", "/openapi.json", "", "", "")
	if strings.Contains(string(doc.body), `"/ui`) {
		t.Error("the dashboard is in the OpenAPI document")
	}
	m := do(t, ts, "GET", "/metrics", testToken, "", "")
	body := string(m.body)
	if !strings.Contains(body, `clawbox_http_requests_total{code="200",method="GET",route="/ui/"}`) {
		t.Errorf("the dashboard's requests are not counted under route /ui/:\n%s", grepLines(body, "/ui"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
