package toolbuild

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/wasm"
)

func TestScaffoldBuildRun(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the Go toolchain on PATH")
	}
	ctx := context.Background()
	work := t.TempDir()
	if err := Scaffold(work, "greeter"); err != nil {
		t.Fatal(err)
	}
	if err := Scaffold(work, "greeter"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second scaffold: err = %v, want already exists", err)
	}
	toolDir := filepath.Join(t.TempDir(), "tools")
	var progress strings.Builder
	built, err := Build(ctx, filepath.Join(work, "greeter"), toolDir, &progress)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, progress.String())
	}
	for _, f := range []string{"greeter.wasm", "greeter.json"} {
		if _, err := os.Stat(filepath.Join(toolDir, f)); err != nil {
			t.Fatal(err)
		}
	}

	e, err := wasm.NewEngine(ctx, wasm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	r, err := wasm.NewRegistry(ctx, wasm.RegistryConfig{Engine: e, Dir: toolDir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	info, ok := r.Get("greeter")
	if !ok || !info.Reactor || info.Source != api.ToolSourceFile {
		t.Fatalf("greeter: %+v (loaded %v)", info, ok)
	}
	// The digest Build reports is the one the registry loaded (clawbox build waits for it).
	if built.Name != "greeter" || built.SHA256 != info.SHA256 || built.Path != filepath.Join(toolDir, "greeter.wasm") || built.Size == 0 {
		t.Errorf("Build result %+v; registry loaded sha256 %s", built, info.SHA256)
	}
	res, err := r.Execute(ctx, api.ExecuteRequest{Tool: "greeter", Params: json.RawMessage(`{"name":"clawbox"}`)}, "")
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != `{"greeting":"Hello, clawbox!"}` {
		t.Fatalf("output %s", res.Output)
	}
	if len(res.Logs) != 1 || res.Logs[0].Message != "greeting clawbox" {
		t.Fatalf("logs %v", res.Logs)
	}
}

func TestBuildCommandModule(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the Go toolchain on PATH")
	}
	// A program that does not use the toolkit has no clawbox_run: it is installed as
	// a command module, named after its directory.
	src := filepath.Join(t.TempDir(), "plain")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod":  "module plain\n\ngo 1.24\n",
		"main.go": "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(`{\"plain\":true}`) }\n",
	}
	for f, c := range files {
		if err := os.WriteFile(filepath.Join(src, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	toolDir := t.TempDir()
	if _, err := Build(context.Background(), src, toolDir, nil); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(toolDir, "plain.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if hasExport(bin, "clawbox_run") || !hasExport(bin, "_start") {
		t.Fatal("plain.wasm is not a command module")
	}
	if _, err := os.Stat(filepath.Join(toolDir, "plain.json")); !os.IsNotExist(err) {
		t.Fatalf("a manifest was installed for a tool without one: %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string) string
		want  string
	}{
		{"missing source", func(dir string) string { return filepath.Join(dir, "nope") }, "source directory not found"},
		{"invalid manifest", func(dir string) string {
			os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"tool":{"name":"x"}}`), 0o644)
			return dir
		}, "tool.description"},
		{"invalid name", func(dir string) string {
			d := filepath.Join(dir, "bad name")
			os.MkdirAll(d, 0o755)
			return d
		}, "must be 1-64 chars"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(context.Background(), tc.setup(t.TempDir()), t.TempDir(), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestScaffoldRefusesBadNames(t *testing.T) {
	for _, name := range []string{"", "a/b", "..", strings.Repeat("x", 65)} {
		if err := Scaffold(t.TempDir(), name); err == nil {
			t.Errorf("Scaffold(%q) succeeded", name)
		}
	}
}
