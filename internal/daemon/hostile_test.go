package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"

	"github.com/clawbox/clawbox/internal/testkit"
)

// hostileIDs are path segments, already percent-encoded as they travel, that try
// traversal, encoded slashes, NUL, header injection, odd Unicode and sheer length.
var hostileIDs = []struct{ name, seg string }{
	{"encoded traversal", "..%2f..%2fetc%2fpasswd"},
	{"double-encoded traversal", "..%252f..%252fetc%252fpasswd"},
	{"encoded dots", "%2e%2e"},
	{"backslash traversal", "..%5c..%5cwindows"},
	{"NUL", "clawbox-x%00y"},
	{"CRLF", "clawbox-x%0d%0aX-Injected:%201"},
	{"invalid UTF-8", "%ff%fe%fd"},
	{"fullwidth", "%ef%bd%83lawbox"},
	{"RTL override", "clawbox-%e2%80%aex"},
	{"very long", strings.Repeat("a", 8000)},
}

// hostileResult is one answer of the server, with the error body when there is one.
type hostileResult struct {
	status int
	ctype  string
	body   []byte
	err    api.Error
}

type hostileClient struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

func (h *hostileClient) do(method, path, ctype string, body io.Reader, hdr http.Header) hostileResult {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, body)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	r := hostileResult{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type")}
	if strings.HasPrefix(r.ctype, "text/event-stream") || strings.HasPrefix(r.ctype, "application/x-ndjson") {
		return r // a stream that would not end: the status is the answer
	}
	r.body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if r.status >= 400 {
		_ = json.Unmarshal(r.body, &r.err)
	}
	return r
}

// check fails when an answer to a client mistake is not one of the documented
// errors in the API error shape: never a 5xx (except 503 unavailable, for a backend
// that is down), always {"error","code"} with the code's own status.
func (h *hostileClient) check(what string, r hostileResult, allowed ...int) {
	h.t.Helper()
	if r.status >= 500 && !(r.status == 503 && r.err.Code == api.CodeUnavailable) {
		h.t.Errorf("%s: %d %s", what, r.status, r.body)
		return
	}
	if len(allowed) > 0 && !slices.Contains(allowed, r.status) {
		h.t.Errorf("%s: status %d, want one of %v: %s", what, r.status, allowed, r.body)
		return
	}
	if r.status < 400 {
		return
	}
	if r.ctype != "application/json" || r.err.Code == "" || r.err.Message == "" {
		h.t.Errorf("%s: %d not in the API error shape (%s): %s", what, r.status, r.ctype, r.body)
		return
	}
	if (&api.Error{Code: r.err.Code}).Status() != r.status {
		h.t.Errorf("%s: code %q is not a documented code for status %d", what, r.err.Code, r.status)
	}
}

// openAPIOp is one operation of the served OpenAPI document.
type openAPIOp struct {
	method, path string
	params       []string
	bodySchema   string // component name of the request body, "" for none
}

var pathParamRe = regexp.MustCompile(`\{([^}]+)\}`)

// servedOperations reads /openapi.json from the running server: new routes are
// covered without touching this test.
func servedOperations(t *testing.T, h *hostileClient) ([]openAPIOp, map[string]map[string]any) {
	r := h.do("GET", "/openapi.json", "", nil, nil)
	if r.status != 200 {
		t.Fatalf("GET /openapi.json = %d", r.status)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody *struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	var ops []openAPIOp
	for path, methods := range doc.Paths {
		for m, op := range methods {
			o := openAPIOp{method: strings.ToUpper(m), path: path}
			for _, p := range pathParamRe.FindAllStringSubmatch(path, -1) {
				o.params = append(o.params, p[1])
			}
			if op.RequestBody != nil {
				ref := op.RequestBody.Content["application/json"].Schema.Ref
				o.bodySchema = strings.TrimPrefix(ref, "#/components/schemas/")
			}
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].method+ops[i].path < ops[j].method+ops[j].path })
	if len(ops) < 10 {
		t.Fatalf("only %d operations documented", len(ops))
	}
	return ops, doc.Components.Schemas
}

// wrongKind returns a JSON value of a kind the schema does not accept, or nil when
// the schema accepts anything.
func wrongKind(schema map[string]any) any {
	var types []string
	switch v := schema["type"].(type) {
	case string:
		types = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				types = append(types, s)
			}
		}
	}
	if len(types) == 0 {
		return nil
	}
	if slices.Contains(types, "string") {
		return []int{1, 2}
	}
	return "not-the-right-kind"
}

// treeOf lists the files under dir (relative paths), leaving out what changes on
// its own (audit log, SQLite files).
func treeOf(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(rel, "audit") || strings.HasPrefix(filepath.Base(rel), "state.db") {
			return nil
		}
		out = append(out, rel)
		return nil
	})
	return out
}

// TestHostileInputOnEveryRoute walks the served OpenAPI document and sends every
// route malformed, truncated, mistyped, oversized and unknown-field bodies, the wrong
// content type, hostile path segments and query values; then hostile credential and
// tool names, a huge header, and concurrent deletes of one sandbox. Every answer is
// a documented error in the API error shape (never a 500), and nothing is created.
func TestHostileInputOnEveryRoute(t *testing.T) {
	cfg := testConfig(t)
	cfg.Containers.KillOnShutdown = true // nothing outlives the test, even on failure
	cfg.Server.MaxBodyBytes = 64 << 10
	dockerOK := dockerErr == nil && imageErr == nil
	if dockerOK {
		cfg.Containers.AllowedImages = []string{"clawbox-test/"}
		cfg.Containers.DefaultImage = testImage
	}
	var serverLog testkit.Buffer
	addrs, _ := runDaemonLog(t, cfg, &serverLog)
	tok, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	h := &hostileClient{t: t, base: addrs[0], token: tok, hc: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	// A credential stored before the hostile requests must survive them unchanged.
	c := apiClient(t, cfg, addrs[0])
	const keepValue = "sk-keep0123456789abcdefghijklmnop"
	if _, err := c.PutCredential(context.Background(), "KEEP", api.PutCredentialRequest{Value: keepValue, Host: "example.com"}); err != nil {
		t.Fatal(err)
	}
	home := filepath.Dir(cfg.Server.AuthTokenFile)
	before := treeOf(t, filepath.Dir(home))
	ops, schemas := servedOperations(t, h)

	var wrongTypes int // probes of a property with a value of the wrong kind
	for _, op := range ops {
		// MCP speaks JSON-RPC with its own error shape: it is only checked for 5xx.
		mcp := op.path == "/mcp"
		t.Run(op.method+" "+op.path, func(t *testing.T) {
			h := *h
			h.t = t
			concrete := pathParamRe.ReplaceAllString(op.path, "clawbox-no-such-thing")
			if op.bodySchema != "" && !mcp {
				bodies := []struct {
					name, ctype, body string
					status            int
					code              string
				}{
					{"malformed", "application/json", `{"a":`, 400, api.CodeInvalidJSON},
					{"truncated", "application/json", `{"tool":"echo","params":{"x":[1,2`, 400, api.CodeInvalidJSON},
					{"not json", "application/json", `hello`, 400, api.CodeInvalidJSON},
					{"trailing garbage", "application/json", `{} x`, 400, api.CodeInvalidJSON},
					{"deep nesting", "application/json", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), 400, api.CodeInvalidJSON},
					{"invalid UTF-8 string", "application/json", "{\"zz\":\"\xff\xfe\"}", 400, api.CodeInvalidRequest},
					{"array", "application/json", `[1,2,3]`, 400, api.CodeInvalidRequest},
					{"number", "application/json", `12`, 400, api.CodeInvalidRequest},
					{"string", "application/json", `"x"`, 400, api.CodeInvalidRequest},
					{"unknown field", "application/json", `{"zz_unknown":1}`, 400, api.CodeInvalidRequest},
					{"unknown odd Unicode field", "application/json", `{"t\u0430sk":1,"\u202e":2}`, 400, api.CodeInvalidRequest},
					{"wrong content type", "text/plain", `{}`, 415, api.CodeUnsupportedMedia},
					{"form content type", "application/x-www-form-urlencoded", `a=b`, 415, api.CodeUnsupportedMedia},
					{"too large", "application/json", `{"zz":"` + strings.Repeat("a", int(cfg.Server.MaxBodyBytes)) + `"}`, 413, api.CodeTooLarge},
				}
				for _, b := range bodies {
					r := h.do(op.method, concrete, b.ctype, strings.NewReader(b.body), nil)
					h.check(b.name, r, b.status)
					if r.err.Code != b.code {
						t.Errorf("%s: code %q, want %q: %s", b.name, r.err.Code, b.code, r.body)
					}
				}
				// Each property of the body schema, given a value of the wrong kind.
				props, _ := schemas[op.bodySchema]["properties"].(map[string]any)
				for name, ps := range props {
					sch, _ := ps.(map[string]any)
					bad := wrongKind(sch)
					if bad == nil {
						continue
					}
					wrongTypes++
					b, _ := json.Marshal(map[string]any{name: bad})
					r := h.do(op.method, concrete, "application/json", strings.NewReader(string(b)), nil)
					h.check("wrong type for "+name, r, 400)
					d, _ := r.err.Details.(map[string]any)
					if r.err.Code != api.CodeInvalidRequest || d["field"] == nil || !strings.HasPrefix(d["field"].(string), name) {
						t.Errorf("wrong type for %s: %s, want invalid_request naming the field", name, r.body)
					}
				}
			}
			if mcp {
				for _, body := range []string{`{"a":`, `[]`, strings.Repeat("[", 20000)} {
					r := h.do(op.method, concrete, "application/json", strings.NewReader(body), nil)
					if r.status >= 500 {
						t.Errorf("MCP %s with %.20q: %d %s", op.method, body, r.status, r.body)
					}
				}
				return
			}
			// Hostile path segments: a 4xx in the error shape, never a redirect out
			// of the route or a 500.
			if len(op.params) > 0 {
				for _, id := range hostileIDs {
					path := pathParamRe.ReplaceAllString(op.path, id.seg)
					var body io.Reader
					ctype := ""
					if op.bodySchema != "" {
						body, ctype = strings.NewReader(`{"zz_unknown":1}`), "application/json"
					}
					r := h.do(op.method, path, ctype, body, nil)
					h.check(id.name, r, 400, 404)
				}
			}
			// Hostile query values on routes without a body.
			if op.bodySchema == "" && op.method == "GET" {
				for _, q := range []string{
					"?limit=-1&since=%ff&status=%00&follow=maybe&decision=..%2f",
					"?limit=99999999999999999999999&since=9999-99-99T99:99:99Z",
					"?container_id=" + strings.Repeat("%e2%80%ae", 500) + "&tool=..%2f..%2f",
				} {
					r := h.do(op.method, concrete+q, "", nil, nil)
					h.check("query "+q[:min(len(q), 30)], r)
				}
			}
		})
	}

	if wrongTypes < 10 {
		t.Errorf("only %d wrong-type probes: are the request schemas still in the document?", wrongTypes)
	}

	t.Run("credential names", func(t *testing.T) {
		h := *h
		h.t = t
		for _, id := range append(hostileIDs, struct{ name, seg string }{"dot dot", ".."}, struct{ name, seg string }{"dot", "."}) {
			r := h.do("PUT", "/credentials/"+id.seg, "application/json",
				strings.NewReader(`{"value":"sk-hostile0123456789abcdefghijkl","host":"example.com"}`), nil)
			h.check(id.name, r, 400, 404, 503)
		}
		r := h.do("GET", "/credentials", "", nil, nil)
		if strings.Contains(string(r.body), "sk-hostile") || strings.Contains(string(r.body), keepValue) {
			t.Errorf("GET /credentials shows a value: %s", r.body)
		}
	})

	t.Run("tool names", func(t *testing.T) {
		h := *h
		h.t = t
		for _, name := range []string{"../../etc/passwd", "..", "echo/../hash", "echo\x00", "ｅcho", strings.Repeat("a", 65), "a b", ""} {
			b, _ := json.Marshal(api.ExecuteRequest{Tool: name, Params: json.RawMessage(`{}`)})
			r := h.do("POST", "/execute", "application/json", strings.NewReader(string(b)), nil)
			h.check("execute "+name, r, 400, 404)
			m, _ := json.Marshal(map[string]any{"tool": map[string]any{"name": name, "version": "1"}})
			r = h.do("POST", "/tools/register", "application/json", strings.NewReader(string(m)), nil)
			h.check("register "+name, r, 400)
		}
	})

	t.Run("huge header", func(t *testing.T) {
		h := *h
		h.t = t
		hdr := http.Header{"X-Huge": {strings.Repeat("h", 2<<20)}}
		r := h.do("GET", "/health", "", nil, hdr)
		if r.status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("a 2 MiB header: %d", r.status)
		}
		if r := h.do("GET", "/health", "", nil, nil); r.status != 200 {
			t.Errorf("the server after a huge header: %d", r.status)
		}
	})

	t.Run("concurrent deletes", func(t *testing.T) {
		requireDocker(t)
		ctx := context.Background()
		info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "delete me", Command: []string{"sleep", "300"}})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		results := make([]*api.KillResponse, 8)
		errs := make([]error, len(results))
		for i := range results {
			wg.Go(func() { results[i], errs[i] = c.Kill(ctx, info.ContainerID) })
		}
		wg.Wait()
		for i, r := range results {
			if errs[i] != nil || r == nil || r.Status != api.ContainerStatusKilled {
				t.Errorf("delete %d: %+v %v", i, r, errs[i])
			}
		}
		final, err := c.Container(ctx, info.ContainerID)
		if err != nil || final.Status != api.ContainerStatusKilled {
			t.Errorf("after concurrent deletes: %+v %v", final, err)
		}
		var e *api.Error
		if _, err := c.Kill(ctx, "clawbox-no-such-sandbox"); !errors.As(err, &e) || e.Code != api.CodeNotFound {
			t.Errorf("delete of an unknown sandbox: %v", err)
		}
	})

	if r := h.do("GET", "/health", "", nil, nil); r.status != 200 {
		t.Fatalf("the server after the hostile requests: %d", r.status)
	}
	// Nothing was lost: the credential stored first is the only one, unchanged.
	creds, err := c.Credentials(context.Background())
	if err != nil || len(creds) != 1 || creds[0].Name != "KEEP" || creds[0].Host != "example.com" {
		t.Errorf("credentials after the hostile requests: %+v %v, want KEEP alone", creds, err)
	}
	after := treeOf(t, filepath.Dir(home))
	for _, p := range after {
		if !slices.Contains(before, p) && !strings.HasPrefix(p, filepath.Base(home)+"/cache") {
			t.Errorf("a hostile request created %s", p)
		}
	}
	if s := serverLog.String(); strings.Contains(s, "internal error") || strings.Contains(s, "panic") {
		t.Errorf("the server logged an internal error or a panic:\n%s", s)
	}
}
