package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// volatile are the keys whose values change from run to run (ids, times, paths, the
// random test image tag); the golden files hold "<normalised>" in their place.
var volatile = regexp.MustCompile(`(^|_)(id|at|path|dir|sha256|digest|hash|deadline|image)$`)

// normalise re-encodes a JSON document with volatile values replaced, sorted keys and
// two-space indentation.
func normalise(t *testing.T, raw string) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, raw)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if volatile.MatchString(k) && e != nil {
					x[k] = "<normalised>"
					continue
				}
				x[k] = walk(e)
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return v
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(walk(v)); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cli -run TestJSONOutputGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s; if intended, rerun with -update and review the diff\ngot:\n%s", path, got)
	}
}

// TestJSONOutputGolden pins the shape of the --json output scripts rely on: tools list
// and ps (with one sandbox running), against a real server and Docker.
func TestJSONOutputGolden(t *testing.T) {
	env, port, image := dockerServe(t, func(dir string) {
		for _, n := range []string{"http_request", "json_fmt", "web_fetch"} {
			os.Remove(filepath.Join(dir, "tools", n+".wasm"))
			os.Remove(filepath.Join(dir, "tools", n+".json"))
		}
	})
	deadline := time.Now().Add(10 * time.Minute)
	for {
		r := clawbox(t, context.Background(), env, "status", "--port", port, "--json")
		if strings.Contains(r.stdout, `"tools_loaded": 2`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tools did not load: %+v", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := clawbox(t, context.Background(), env, "tools", "list", "--port", port, "--json")
	if r.code != 0 {
		t.Fatalf("tools list --json: %+v", r)
	}
	golden(t, "tools_list.golden.json", normalise(t, r.stdout))
	r = clawbox(t, context.Background(), env, "spawn", "--port", port, "--image", image, "--json", "--task", "golden", "--", "sleep", "300")
	var info struct {
		ContainerID string `json:"container_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info.ContainerID == "" {
		t.Fatalf("spawn --json: %+v %v", r, err)
	}
	t.Cleanup(func() { clawbox(t, context.Background(), env, "kill", "--port", port, info.ContainerID) })
	r = clawbox(t, context.Background(), env, "ps", "--port", port, "--json")
	if r.code != 0 {
		t.Fatalf("ps --json: %+v", r)
	}
	golden(t, "ps.golden.json", normalise(t, r.stdout))
}
