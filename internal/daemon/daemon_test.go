package daemon

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/home"

	"github.com/clawbox/clawbox/internal/testkit"
)

// testConfig initialises a clawbox dir and loads its config with a free port.
// dockerConfig is testConfig whose sandboxes run the package's test image.
func dockerConfig(t *testing.T) *config.Config {
	cfg := testConfig(t)
	cfg.Containers.AllowedImages = []string{"clawbox-test/"}
	cfg.Containers.DefaultImage = testImage
	return cfg
}

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := filepath.Join(shortTempDir(t), "cb")
	res, err := home.Init(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(res.Config, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Port = testkit.FreePort(t)
	cfg.Logging.Level = "error"
	return cfg
}

// runDaemon starts Run and returns its addresses and a stop function that waits.
func runDaemon(t *testing.T, cfg *config.Config) ([]string, func() error) {
	t.Helper()
	return runDaemonLog(t, cfg, io.Discard)
}

// runDaemonLog is runDaemon with the server's log written to logw.
func runDaemonLog(t *testing.T, cfg *config.Config, logw io.Writer) ([]string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan []string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Options{Stderr: logw, Ready: func(a []string) { ready <- a }})
	}()
	select {
	case addrs := <-ready:
		var once bool
		var res error
		stop := func() error {
			if !once {
				once = true
				cancel()
				res = <-done
			}
			return res
		}
		t.Cleanup(func() { stop() })
		return addrs, stop
	case err := <-done:
		cancel()
		t.Fatalf("Run failed before serving: %v", err)
	case <-time.After(3 * time.Minute):
		cancel()
		t.Fatal("Run did not become ready")
	}
	return nil, nil
}

func TestRunServesAndStopsGracefully(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.UnixSocket = filepath.Join(t.TempDir(), "api.sock")
	addrs, stop := runDaemon(t, cfg)
	if len(addrs) != 2 {
		t.Fatalf("addresses %v", addrs)
	}
	resp, err := http.Get(addrs[0] + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("TCP /health = %d", resp.StatusCode)
	}

	st, err := os.Lstat(cfg.Server.UnixSocket)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Type() != os.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Errorf("unix socket mode %v, want socket 0600", st.Mode())
	}
	uc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", cfg.Server.UnixSocket)
	}}}
	tok, _ := cfg.Token()
	req, _ := http.NewRequest("GET", "http://clawbox/health", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = uc.Do(req)
	if err != nil {
		t.Fatalf("unix socket request: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"version"`) {
		t.Errorf("authenticated /health over the unix socket = %s", b)
	}
	uc.CloseIdleConnections()

	if err := stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if _, err := os.Lstat(cfg.Server.UnixSocket); !os.IsNotExist(err) {
		t.Errorf("unix socket left behind after shutdown: %v", err)
	}
	if _, err := http.Get(addrs[0] + "/health"); err == nil {
		t.Error("TCP listener still answers after shutdown")
	}
}

func TestRunPortInUse(t *testing.T) {
	cfg := testConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg.Server.Port = ln.Addr().(*net.TCPAddr).Port
	err = Run(context.Background(), cfg, Options{Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "server.port") {
		t.Fatalf("port in use: err = %v", err)
	}
}

func TestRunUnixSocketConflicts(t *testing.T) {
	t.Run("live socket", func(t *testing.T) {
		cfg := testConfig(t)
		p := filepath.Join(t.TempDir(), "live.sock")
		ln, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cfg.Server.UnixSocket = p
		err = Run(context.Background(), cfg, Options{Stderr: io.Discard})
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("live socket: err = %v", err)
		}
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("the live socket was removed: %v", err)
		}
	})
	t.Run("regular file", func(t *testing.T) {
		cfg := testConfig(t)
		p := filepath.Join(t.TempDir(), "file.sock")
		os.WriteFile(p, []byte("keep me"), 0o600)
		cfg.Server.UnixSocket = p
		err := Run(context.Background(), cfg, Options{Stderr: io.Discard})
		if err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("regular file: err = %v", err)
		}
		if b, _ := os.ReadFile(p); string(b) != "keep me" {
			t.Error("a regular file at the socket path was overwritten")
		}
	})
	t.Run("stale socket", func(t *testing.T) {
		cfg := testConfig(t)
		p := filepath.Join(t.TempDir(), "stale.sock")
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close() // the file stays, nobody listens
		cfg.Server.UnixSocket = p
		_, stop := runDaemon(t, cfg)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRunUnwritableDataDir(t *testing.T) {
	cfg := testConfig(t)
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, nil, 0o600)
	cfg.Logging.AuditDir = filepath.Join(blocker, "audit")
	err := Run(context.Background(), cfg, Options{Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "logging.audit_dir") {
		t.Fatalf("unwritable audit dir: err = %v", err)
	}
}

func TestRunMissingToken(t *testing.T) {
	cfg := testConfig(t)
	os.Remove(cfg.Server.AuthTokenFile)
	err := Run(context.Background(), cfg, Options{Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "clawbox init") {
		t.Fatalf("missing token: err = %v", err)
	}
}

func TestInstanceIDIsStable(t *testing.T) {
	cfg := testConfig(t)
	readID := func() string {
		db, err := openForTest(cfg.Store.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		v, ok, err := db.Meta(context.Background(), "instance_id")
		if err != nil || !ok || len(v) != 36 {
			t.Fatalf("instance_id = %q %v %v", v, ok, err)
		}
		return v
	}
	_, stop := runDaemon(t, cfg)
	stop()
	first := readID()
	_, stop = runDaemon(t, cfg)
	stop()
	if second := readID(); second != first {
		t.Errorf("instance id changed across restarts: %s then %s", first, second)
	}
}

func TestCredentialsWithoutMasterKey(t *testing.T) {
	cfg := testConfig(t)
	os.Remove(cfg.Credentials.KeyFile)
	addrs, _ := runDaemon(t, cfg)
	tok, _ := cfg.Token()
	req, _ := http.NewRequest("GET", addrs[0]+"/credentials", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), "CLAWBOX_MASTER_KEY") {
		t.Errorf("GET /credentials without a key = %d %s", resp.StatusCode, b)
	}
}

func TestCredentialsWrongMasterKeyStopsStart(t *testing.T) {
	cfg := testConfig(t)
	addrs, stop := runDaemon(t, cfg)
	tok, _ := cfg.Token()
	req, _ := http.NewRequest("PUT", addrs[0]+"/credentials/GITHUB", strings.NewReader(`{"value":"ghp_0123456789abcdefghij0123456789abcdef","host":"api.github.com"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT credential = %d", resp.StatusCode)
	}
	stop()
	// Another key cannot read the store: the server refuses to start rather than run
	// without the credentials the operator stored.
	os.WriteFile(cfg.Credentials.KeyFile, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	err = Run(context.Background(), cfg, Options{Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "credentials.store_path") {
		t.Fatalf("wrong master key: err = %v", err)
	}
	if strings.Contains(err.Error(), "ghp_") {
		t.Fatal("the error shows a credential value")
	}
}

// shortTempDir is a temporary directory with a short path: sandbox socket paths
// under it must fit the 107 bytes of a Unix socket address.
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "cb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
