package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// fuzzReq has a field of each kind a request body uses.
type fuzzReq struct {
	Name    string            `json:"name"`
	Count   *int64            `json:"count,omitempty"`
	Ratio   float64           `json:"ratio,omitempty"`
	On      bool              `json:"on,omitempty"`
	Tags    []string          `json:"tags,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Params  json.RawMessage   `json:"params,omitempty"`
	Nested  *fuzzNested       `json:"nested,omitempty"`
	Numbers []int             `json:"numbers,omitempty"`
}

type fuzzNested struct {
	Limit *int64 `json:"limit,omitempty"`
}

// FuzzDecodeJSON feeds the API's strict body decoder arbitrary bodies and content
// types: it never panics, every refusal is a documented client error (never a 500),
// and an accepted body is valid JSON that decodes the same way again.
func FuzzDecodeJSON(f *testing.F) {
	f.Add("application/json", []byte(`{"name":"x","count":2,"tags":["a"],"env":{"K":"V"},"params":{"a":[1]}}`))
	f.Add("application/json; charset=utf-8", []byte(`{"nested":{"limit":"x"}}`))
	f.Add("application/json", []byte(`{"name":"x"} {"name":"y"}`))
	f.Add("application/json", []byte(`{"nmae":"x"}`))
	f.Add("application/json", []byte(`{"count":1e400}`))
	f.Add("application/json", []byte(`{"numbers":[1.5]}`))
	f.Add("application/merge-patch+json", []byte(`null`))
	f.Add("text/plain", []byte(`{}`))
	f.Add("application/json;;", []byte(`{}`))
	f.Add("", []byte(`{}`))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/x", bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		var v fuzzReq
		err := DecodeJSON(req, &v)
		if err != nil {
			status := 0
			if e, ok := api.AsError(err); ok {
				status = e.Status()
			} else if ae, ok := err.(*apiError); ok {
				status = ae.status
			}
			if status < 400 || status >= 500 {
				t.Fatalf("DecodeJSON(%q, %q) = %v: status %d, want a client error", ctype, body, err, status)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var again fuzzReq
		if err := decodeStrict(b, &again); err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", b, err)
		}
		b2, _ := json.Marshal(again)
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the value: %s → %s", b, b2)
		}
	})
}

// TestOpenAPIDocumentsRawJSONAsAnyValue: a json.RawMessage field (tool params,
// input schemas, tool output) is documented as any JSON value, not as the array of
// integers its Go type would suggest, so generated clients can send objects.
func TestOpenAPIDocumentsRawJSONAsAnyValue(t *testing.T) {
	s, _ := newTestServer(t, Config{})
	s.Handle(Route{Method: http.MethodPost, Pattern: "/test/raw", Handler: func(w http.ResponseWriter, r *http.Request) error { return nil },
		Doc: Doc{Summary: "raw", Request: fuzzReq{}, Responses: []Response{{Status: 200, Body: api.ExecuteRequest{}}}}})
	doc, err := s.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(doc)
	var d struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ schema, prop string }{{"fuzzReq", "params"}, {"ExecuteRequest", "params"}} {
		raw, ok := d.Components.Schemas[c.schema].Properties[c.prop]
		if !ok {
			t.Fatalf("%s.%s is not documented", c.schema, c.prop)
		}
		// The schema true, or an object without a type: any JSON value.
		var p map[string]any
		if string(raw) != "true" && (json.Unmarshal(raw, &p) != nil || p["type"] != nil || p["items"] != nil) {
			t.Errorf("%s.%s is documented as %s, want any JSON value", c.schema, c.prop, raw)
		}
	}
	var p map[string]any
	json.Unmarshal(d.Components.Schemas["fuzzReq"].Properties["numbers"], &p)
	if !reflect.DeepEqual(p["type"], "array") && !reflect.DeepEqual(p["type"], []any{"null", "array"}) {
		t.Errorf("a real array is documented as %v", p)
	}
}

// TestNonCanonicalPathsAreNotFound: paths with dot segments or extra slashes, plain
// or percent-encoded, are 404 not_found in the error shape, never a redirect that a
// client could follow with its method and body to another resource.
func TestNonCanonicalPathsAreNotFound(t *testing.T) {
	s, _ := newTestServer(t, Config{PublicHealth: true})
	addTestRoutes(s)
	ts := start(t, s)
	for _, tc := range []struct{ name, method, path string }{
		{"dot dot", "PUT", "/test/items/.."},
		{"dot", "GET", "/test/items/."},
		{"traversal to health", "GET", "/test/items/../../health"},
		{"encoded traversal", "DELETE", "/test/items/..%2f..%2fhealth"},
		{"encoded dots", "GET", "/test/items/%2e%2e"},
		{"double slash", "GET", "//health"},
		{"inner double slash", "GET", "/test//items/x"},
		{"trailing slash", "GET", "/health/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e api.Error
			if resp.StatusCode != 404 || resp.Header.Get("Location") != "" || json.NewDecoder(resp.Body).Decode(&e) != nil || e.Code != api.CodeNotFound {
				t.Errorf("%s %s = %d (Location %q, code %q), want 404 not_found", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Location"), e.Code)
			}
		})
	}
	// Canonical paths still route, percent-encoded characters in a segment included.
	if r := do(t, ts, "GET", "/health", "", "", ""); r.status != 200 {
		t.Errorf("GET /health = %d", r.status)
	}
	if r := do(t, ts, "GET", "/test/items/a%20b", testToken, "", ""); r.status != 404 || !strings.Contains(r.err.Message, `"a b"`) {
		t.Errorf("GET /test/items/a%%20b = %d %s", r.status, r.body)
	}
}
