package egress

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/secrets"
)

// BenchmarkForwardDoor: one GET http://example.com:<port>/api/x per iteration
// through a door's forward proxy on its Unix socket to a loopback upstream, set up
// as bench/forward.go sets it up (a real credential store holding one credential
// for the upstream, the token as Proxy-Authorization: Bearer, the rate limit out
// of the way). "direct" is the same client and upstream without the door: the
// door's own cost is the difference.
func BenchmarkForwardDoor(b *testing.B) {
	body := []byte(`{"ok":true,"items":[1,2,3],"note":"a small JSON answer from the loopback upstream"}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer up.Close()
	ap := netip.MustParseAddrPort(up.Listener.Addr().String())

	key, err := secrets.ParseMasterKey(strings.Repeat("5a", secrets.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	st, err := secrets.Open(secrets.Config{Path: filepath.Join(b.TempDir(), "creds.enc"), Key: key, NoWatch: true, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Put("BENCH", api.PutCredentialRequest{Value: "sk-bench0123456789abcdefghijklmnopqrst", Host: "example.com", Port: int(ap.Port()), PathPrefix: "/api"}); err != nil {
		b.Fatal(err)
	}
	g, err := New(Config{
		RatePerSecond:     1e9,
		RateBurst:         1 << 30,
		AllowPrivateCIDRs: loopback,
		Hosts:             map[string][]netip.Addr{"example.com": {ap.Addr()}},
		Secrets:           st,
		Audit:             discardAudit{},
		Logger:            quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	sock := filepath.Join(b.TempDir(), "door.sock")
	door, err := g.OpenDoor(DoorSpec{
		SandboxID:    "bench-forward",
		SocketPath:   sock,
		Allowlist:    []string{"http://example.com:" + strconv.Itoa(int(ap.Port())) + "/"},
		Authenticate: func(tok string) bool { return tok == doorToken },
	})
	if err != nil {
		b.Fatal(err)
	}
	defer door.Close()

	target := "http://example.com:" + strconv.Itoa(int(ap.Port())) + "/api/x"
	run := func(b *testing.B, tr *http.Transport, hdr http.Header) {
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		b.ReportAllocs()
		cpu0 := cpuTime(b)
		for b.Loop() {
			req, err := http.NewRequest(http.MethodGet, target, nil)
			if err != nil {
				b.Fatal(err)
			}
			for k, v := range hdr {
				req.Header[k] = v
			}
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
				b.Fatalf("status %d, body %q, err %v (X-Clawbox-Error %q)", resp.StatusCode, got, err, resp.Header.Get("X-Clawbox-Error"))
			}
		}
		b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	}
	b.Run("direct", func(b *testing.B) {
		run(b, &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", up.Listener.Addr().String())
			},
			DisableCompression: true,
		}, nil)
	})
	b.Run("door", func(b *testing.B) {
		run(b, &http.Transport{
			Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: "door"}),
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			},
			DisableCompression: true,
		}, http.Header{"Proxy-Authorization": {"Bearer " + doorToken}})
	})
}

// cpuTime is the CPU time (user and system) this process has used: on a shared
// machine it says more about the door's cost than the wall clock does.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// discardAudit is an audit sink that keeps nothing.
type discardAudit struct{}

func (discardAudit) Record(audit.Record) {}
