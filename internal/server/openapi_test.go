package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRouter fetches /openapi.json from the running handler and checks
// it against the router in both directions: every documented operation is routed by
// the mux to the same pattern and method, and every route is documented.
func TestOpenAPIMatchesRouter(t *testing.T) {
	s, _ := newTestServer(t, Config{})
	addTestRoutes(s)
	ts := start(t, s)

	r := do(t, ts, "GET", "/openapi.json", "", "", "")
	if r.status != 200 {
		t.Fatalf("GET /openapi.json = %d", r.status)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
		Comps   struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			m := strings.ToUpper(method)
			documented[m+" "+path] = true
			// Fill path parameters with sample values and ask the real mux.
			concrete := pathParamRe.ReplaceAllString(path, "sample")
			req := httptest.NewRequest(m, concrete, nil)
			h, pattern := s.mux.Handler(req)
			pr, ok := h.(*patternRoutes)
			if !ok || OpenAPIPath(pattern) != path {
				t.Errorf("documented %s %s is not routed (mux pattern %q)", m, path, pattern)
				continue
			}
			if _, ok := pr.methods[m]; !ok {
				t.Errorf("documented %s %s: the route has no such method", m, path)
			}
			var op struct {
				Responses map[string]json.RawMessage `json:"responses"`
				Summary   string                     `json:"summary"`
			}
			json.Unmarshal(raw, &op)
			if op.Summary == "" || op.Responses["default"] == nil {
				t.Errorf("%s %s lacks a summary or the error response", m, path)
			}
		}
	}
	var missing []string
	for _, rt := range s.Routes() {
		if !documented[rt.Method+" "+OpenAPIPath(rt.Pattern)] {
			missing = append(missing, rt.Method+" "+rt.Pattern)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("routes missing from the OpenAPI document: %v", missing)
	}
	// Schemas come from the wire types.
	var errSchema struct {
		Properties map[string]any `json:"properties"`
	}
	json.Unmarshal(doc.Comps.Schemas["Error"], &errSchema)
	for _, f := range []string{"error", "code", "details"} {
		if _, ok := errSchema.Properties[f]; !ok {
			t.Errorf("Error schema lacks %q: %s", f, doc.Comps.Schemas["Error"])
		}
	}
	// An undocumented path is not routed.
	h, pattern := s.mux.Handler(httptest.NewRequest(http.MethodGet, "/definitely/not/here", nil))
	if _, ok := h.(*patternRoutes); ok {
		t.Errorf("unknown path routed to %q", pattern)
	}
}
