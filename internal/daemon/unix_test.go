package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

// TestUnixListenerClosesOnce: a second Close leaves alone what is at the path now
// (another server's socket). It failed before Close was made once-only.
func TestUnixListenerClosesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left after Close: %v", err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("a second Close removed what is at the path now: %v", err)
	}
}
