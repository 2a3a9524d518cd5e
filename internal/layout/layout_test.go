package layout

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Name       string
}

const mod = "github.com/clawbox/clawbox/"

// packages lists the module's packages (not their tests) with go list.
func packages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var list []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		list = append(list, p)
	}
	return list
}

// TestEveryPackageHasADocComment fails for a package without a package comment.
func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range packages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc comment", p.ImportPath)
		}
	}
}

// TestImportDirection encodes SPEC section 1: the domain packages know nothing of
// HTTP, the CLI or the wiring; sandbox never imports its backends; egress never
// imports sandbox; api/, client/ and door/ never import internal/.
func TestImportDirection(t *testing.T) {
	rules := []struct {
		from      string // package path prefix, relative to the module
		forbidden []string
	}{
		{"internal/sandbox", []string{"internal/server", "internal/daemon", "internal/cli"}},
		{"internal/egress", []string{"internal/server", "internal/daemon", "internal/cli", "internal/sandbox"}},
		{"internal/secrets", []string{"internal/server", "internal/daemon", "internal/cli"}},
		{"internal/wasm", []string{"internal/server", "internal/daemon", "internal/cli"}},
		{"internal/audit", []string{"internal/server", "internal/daemon", "internal/cli"}},
		{"internal/unixsock", []string{"internal/server", "internal/daemon", "internal/cli"}},
		{"internal/containers", []string{"internal/server", "internal/daemon", "internal/cli"}},
		{"api", []string{"internal/"}},
		{"client", []string{"internal/"}},
		{"door", []string{"internal/"}},
	}
	for _, p := range packages(t) {
		rel := strings.TrimPrefix(p.ImportPath, mod)
		for _, r := range rules {
			if rel != r.from && !strings.HasPrefix(rel, r.from+"/") {
				continue
			}
			for _, imp := range p.Imports {
				irel, ok := strings.CutPrefix(imp, mod)
				if !ok {
					continue
				}
				for _, f := range r.forbidden {
					if irel == strings.TrimSuffix(f, "/") || strings.HasPrefix(irel, strings.TrimSuffix(f, "/")+"/") {
						t.Errorf("%s imports %s", rel, irel)
					}
				}
			}
		}
		// sandbox itself (not its subpackages) never imports its backends.
		if rel == "internal/sandbox" {
			for _, imp := range p.Imports {
				if strings.HasPrefix(imp, mod+"internal/sandbox/") {
					t.Errorf("internal/sandbox imports its backend %s", imp)
				}
			}
		}
	}
}
