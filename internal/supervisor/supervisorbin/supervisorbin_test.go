package supervisorbin

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBinariesAreStaticLinux(t *testing.T) {
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, arch := range Arches {
		bin, err := Binary(arch)
		if err != nil {
			t.Fatal(err)
		}
		f, err := elf.NewFile(bytes.NewReader(bin))
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if f.Machine != want[arch] {
			t.Errorf("%s: machine %v", arch, f.Machine)
		}
		if f.Section(".interp") != nil {
			t.Errorf("%s: dynamically linked", arch)
		}
	}
	if _, err := Binary("mips"); err == nil {
		t.Error("Binary(mips) succeeded")
	}
}

func TestInstall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "supervisor")
	path, err := Install(dir, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o555 || !st.Mode().IsRegular() {
		t.Fatalf("installed %s: %v %v", path, err, st.Mode())
	}
	bin, _ := Binary(runtime.GOARCH)
	if got, _ := os.ReadFile(path); !bytes.Equal(got, bin) {
		t.Fatal("installed file is not the embedded binary")
	}
	again, err := Install(dir, runtime.GOARCH)
	if err != nil || again != path {
		t.Fatalf("second install: %q %v, want %q", again, err, path)
	}
	if st2, _ := os.Stat(path); !os.SameFile(st, st2) {
		t.Error("second install rewrote an identical binary")
	}
	// A binary that was cut short or changed is replaced.
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bin[:100], 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(dir, runtime.GOARCH); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, bin) {
		t.Fatal("a tampered binary was kept")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

// TestEmbeddedBinariesAreCurrent rebuilds the supervisor from source and compares
// it with the embedded binaries: run `go generate ./internal/supervisor/supervisorbin`
// when it fails.
func TestEmbeddedBinariesAreCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("rebuilds the supervisor for two architectures; skipped with -short")
	}
	if v := GoVersion(); v != runtime.Version() {
		t.Skipf("embedded binaries were built with %s, this toolchain is %s: builds are only reproducible with the same Go version", v, runtime.Version())
	}
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range Arches {
		out := filepath.Join(t.TempDir(), arch)
		if err := Build(context.Background(), root, arch, out, nil); err != nil {
			t.Fatal(err)
		}
		built, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		embedded, err := Binary(arch)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(built, embedded) {
			t.Errorf("%s: embedded supervisor is stale (%d bytes, rebuilt %d): run go generate ./internal/supervisor/supervisorbin", arch, len(embedded), len(built))
		}
	}
}
