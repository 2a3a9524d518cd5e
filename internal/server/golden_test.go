package server

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestOpenAPIGolden compares the OpenAPI document of a server with every route group
// registered to testdata/openapi.golden.json, so that a change to the public API shows
// in review as a change to that file. Run with -update to rewrite it.
func TestOpenAPIGolden(t *testing.T) {
	s, _ := newTestServer(t, Config{})
	s.RegisterAudit(nil)
	s.RegisterContainers(nil)
	s.RegisterAgents(nil)
	s.RegisterCredentials(nil, "golden")
	s.RegisterImages(nil)
	s.RegisterPolicy(nil)
	s.RegisterTools(nil)
	doc, err := s.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "openapi.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestOpenAPIGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the OpenAPI document differs from %s; if the change is intended, run go test ./internal/server -run TestOpenAPIGolden -update and review the diff", path)
	}
}
