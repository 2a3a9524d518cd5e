package sandbox

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/internal/testkit"
)

func TestMakeCA(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "clawbox-x")
	if err := makeSocketDir(dir, "tok"); err != nil {
		t.Fatal(err)
	}
	roots := filepath.Join(base, "roots.pem")
	const rootsPEM = "-----BEGIN CERTIFICATE-----\nc3lzdGVtIHJvb3Q=\n-----END CERTIFICATE-----\n"
	if err := os.WriteFile(roots, []byte(rootsPEM), 0o644); err != nil {
		t.Fatal(err)
	}
	ca, err := makeCA("clawbox-x", dir, roots)
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]fs.FileMode{
		filepath.Join(dir, "ca.pem"):            0o444,
		filepath.Join(dir, "ca-bundle.pem"):     0o444,
		filepath.Join(base, "clawbox-x.ca-key"): 0o600,
	} {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, st.Mode().Perm(), mode)
		}
	}
	cert, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if !bytes.Equal(cert, ca.CertPEM()) {
		t.Error("ca.pem is not the CA's certificate")
	}
	bundle, _ := os.ReadFile(filepath.Join(dir, "ca-bundle.pem"))
	if !bytes.HasPrefix(bundle, ca.CertPEM()) || !bytes.HasSuffix(bundle, []byte(rootsPEM)) {
		t.Errorf("bundle is not the CA then the system roots:\n%s", bundle)
	}
	if blk, _ := pem.Decode(bundle); blk == nil {
		t.Error("bundle does not start with a PEM block")
	} else if c, err := x509.ParseCertificate(blk.Bytes); err != nil || !c.IsCA {
		t.Errorf("bundle's first certificate: %v", err)
	}
	testkit.NoPrivateKeyUnder(t, dir)

	// Adoption reads back the same CA.
	again, err := loadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.CertPEM(), ca.CertPEM()) {
		t.Error("loadCA returned another CA")
	}
	if _, err := makeCA("clawbox-x", dir, roots); err == nil {
		t.Error("a second makeCA overwrote the first CA")
	}
}

func TestMakeCAWithoutSystemRoots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "clawbox-x")
	if err := makeSocketDir(dir, "tok"); err != nil {
		t.Fatal(err)
	}
	ca, err := makeCA("clawbox-x", dir, "")
	if err != nil {
		t.Fatal(err)
	}
	bundle, _ := os.ReadFile(filepath.Join(dir, "ca-bundle.pem"))
	if !bytes.Equal(bytes.TrimSpace(bundle), bytes.TrimSpace(ca.CertPEM())) {
		t.Errorf("bundle without system roots is not the CA alone:\n%s", bundle)
	}
	missing := filepath.Join(t.TempDir(), "clawbox-y")
	if err := makeSocketDir(missing, "tok"); err != nil {
		t.Fatal(err)
	}
	if _, err := makeCA("clawbox-y", missing, filepath.Join(t.TempDir(), "nope.pem")); err == nil || !strings.Contains(err.Error(), "system roots") {
		t.Errorf("makeCA with a missing roots file: %v", err)
	}
}

func TestLoadCAFailures(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "clawbox-x")
	if err := makeSocketDir(dir, "tok"); err != nil {
		t.Fatal(err)
	}
	if _, err := makeCA("clawbox-x", dir, ""); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "clawbox-o")
	if err := makeSocketDir(other, "tok"); err != nil {
		t.Fatal(err)
	}
	if _, err := makeCA("clawbox-o", other, ""); err != nil {
		t.Fatal(err)
	}
	// Another CA's key does not load with this certificate.
	key, _ := os.ReadFile(caKeyPath(other))
	if err := os.WriteFile(caKeyPath(dir), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCA(dir); err == nil {
		t.Error("loadCA accepted a key of another CA")
	}
	os.Remove(caKeyPath(dir))
	if _, err := loadCA(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("loadCA without a key: %v", err)
	}
}

func TestSystemRoots(t *testing.T) {
	if got := systemRoots("/some/file.pem"); got != "/some/file.pem" {
		t.Errorf("systemRoots(set) = %q", got)
	}
	got := systemRoots("")
	if got != "" && !slices.Contains(systemRootsFiles, got) {
		t.Errorf("systemRoots() = %q, not a well-known file", got)
	}
	for _, f := range systemRootsFiles {
		if _, err := os.Stat(f); err == nil {
			if got != f {
				t.Errorf("systemRoots() = %q, want the first existing %q", got, f)
			}
			break
		}
	}
}

func TestHostResourcesReleaseRemovesTheCAKey(t *testing.T) {
	newRes := func(t *testing.T) (*hostResources, string) {
		dir := filepath.Join(t.TempDir(), "clawbox-x")
		if err := makeSocketDir(dir, "tok"); err != nil {
			t.Fatal(err)
		}
		if _, err := makeCA("clawbox-x", dir, ""); err != nil {
			t.Fatal(err)
		}
		return newHostResources("clawbox-x", dir, slog.New(slog.DiscardHandler)), dir
	}
	t.Run("release", func(t *testing.T) {
		r, dir := newRes(t)
		r.release()
		r.release()
		if _, err := os.Stat(caKeyPath(dir)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("CA key after release: %v", err)
		}
	})
	t.Run("detach keeps it for adoption, release after removes it", func(t *testing.T) {
		r, dir := newRes(t)
		r.detach()
		if _, err := loadCA(dir); err != nil {
			t.Errorf("CA after detach: %v", err)
		}
		r.release()
		if _, err := os.Stat(caKeyPath(dir)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("CA key after release: %v", err)
		}
	})
}

func TestSupervisorArgsBridgeOnlyWithADoor(t *testing.T) {
	with := SupervisorArgs(7, true)
	without := SupervisorArgs(7, false)
	if slices.Contains(without, "-proxy-socket") {
		t.Errorf("without a door: %q has a bridge", without)
	}
	i := slices.Index(with, "-proxy-socket")
	if i < 0 || with[i+1] != ContainerSocketPath || !slices.Contains(with, ContainerTokenPath) || !slices.Contains(with, ContainerProxyListen) {
		t.Errorf("with a door: %q", with)
	}
	if with[len(with)-1] != "--" || without[len(without)-1] != "--" {
		t.Error("the main command does not follow --")
	}
}
