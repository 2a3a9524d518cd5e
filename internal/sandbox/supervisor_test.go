package sandbox

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/supervisor/supervisorbin"
)

// TestSupervisorLink runs the embedded supervisor on the host against a link:
// without a connection, and after the supervisor died, calls answer 503 within
// the link's wait (never hang); with one, they get the client.
func TestSupervisorLink(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the supervisor is a linux program")
	}
	base, err := os.MkdirTemp("", "cbxl") // short: socket path limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	bin, err := supervisorbin.Install(filepath.Join(base, "bin"), runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "clawbox-x")
	if err := makeSocketDir(dir, ""); err != nil {
		t.Fatal(err)
	}
	tok, _ := newToken()
	if err := writeSupervisorToken(dir, tok); err != nil {
		t.Fatal(err)
	}
	if got, err := readSupervisorToken(dir); err != nil || got != tok {
		t.Fatalf("read token back: %q %v", got, err)
	}
	k, err := listenSupervisor("clawbox-x", dir, tok, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	k.wait = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want503 := func(what string) {
		t.Helper()
		_, err := k.client(ctx)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeUnavailable {
			t.Fatalf("%s: %v, want 503 unavailable", what, err)
		}
	}
	want503("before any supervisor connected")

	cmd := exec.Command(bin, "-socket", filepath.Join(dir, supervisorSocketName), "-token-file", filepath.Join(dir, supervisorTokenName), "--", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	k.wait = 20 * time.Second
	c, err := k.client(ctx)
	if err != nil || !c.Alive() {
		t.Fatalf("with a supervisor: %v", err)
	}
	// A second supervisor with the right token does not displace the live one.
	imp := exec.Command(bin, "-socket", filepath.Join(dir, supervisorSocketName), "-token-file", filepath.Join(dir, supervisorTokenName))
	if err := imp.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // give it time to try; nothing is asserted about how long
	if c2, err := k.client(ctx); err != nil || c2 != c {
		t.Errorf("the live supervisor was displaced: %v", err)
	}
	imp.Process.Kill()
	imp.Wait()

	cmd.Process.Kill()
	<-exited
	k.wait = 300 * time.Millisecond
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := k.client(ctx)
		if err != nil {
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != api.CodeUnavailable {
				t.Fatalf("after the supervisor died: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a dead supervisor still looks connected")
		}
		time.Sleep(50 * time.Millisecond)
	}
	k.Close()
	k.Close()
	want503("after close")
}
