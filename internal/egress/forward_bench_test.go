package egress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
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
	"github.com/clawbox/clawbox/internal/store"
)

// benchDoor is the setup BenchmarkForwardDoor and BenchmarkProxyDoor share, as
// bench/forward.go sets it up: a loopback upstream answering a small JSON body, a
// real credential store holding one credential for it, the rate limit out of the
// way, and a door on its Unix socket allowing the upstream.
type benchDoor struct {
	body   []byte
	addr   string // the upstream's host:port
	origin string // http://example.com:<port>
	sock   string
}

func newBenchDoor(b *testing.B, grant bool, sink AuditSink) *benchDoor {
	b.Helper()
	body := []byte(`{"ok":true,"items":[1,2,3],"note":"a small JSON answer from the loopback upstream"}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	b.Cleanup(up.Close)
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
	b.Cleanup(func() { st.Close() })
	if _, err := st.Put("BENCH", api.PutCredentialRequest{Value: "sk-bench0123456789abcdefghijklmnopqrst", Host: "example.com", Port: int(ap.Port()), PathPrefix: "/api"}); err != nil {
		b.Fatal(err)
	}
	g, err := New(Config{
		RatePerSecond:     1e9,
		RateBurst:         1 << 30,
		AllowPrivateCIDRs: loopback,
		Hosts:             map[string][]netip.Addr{"example.com": {ap.Addr()}},
		Secrets:           st,
		Audit:             sink,
		Logger:            quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	bd := &benchDoor{body: body, addr: up.Listener.Addr().String(), origin: "http://example.com:" + strconv.Itoa(int(ap.Port())), sock: filepath.Join(b.TempDir(), "door.sock")}
	spec := DoorSpec{
		SandboxID:    "bench-door",
		SocketPath:   bd.sock,
		Allowlist:    []string{bd.origin + "/"},
		Authenticate: func(tok string) bool { return tok == doorToken },
	}
	if grant {
		spec.Credentials = []string{"BENCH"}
	}
	door, err := g.OpenDoor(spec)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { door.Close() })
	return bd
}

// unixTransport dials sock whatever the request's address.
func unixTransport(sock string) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
		DisableCompression: true,
	}
}

// loopDoor sends one request made by newReq per iteration through hc and checks the
// answer with check, reporting allocations and the process's CPU per request.
func loopDoor(b *testing.B, tr *http.Transport, newReq func() *http.Request, check func(*http.Response, []byte) error) {
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		resp, err := hc.Do(newReq())
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			err = check(resp, got)
		}
		if err != nil {
			b.Fatalf("status %d, body %.300q: %v (X-Clawbox-Error %q)", resp.StatusCode, got, err, resp.Header.Get("X-Clawbox-Error"))
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkForwardDoor: one GET http://example.com:<port>/api/x per iteration
// through a door's forward proxy on its Unix socket to a loopback upstream. "direct"
// is the same client and upstream without the door: the door's own cost is the
// difference; "floor" is a minimal reverse proxy on a Unix socket in front of the
// same upstream, the cost of any second hop.
func BenchmarkForwardDoor(b *testing.B) {
	bd := newBenchDoor(b, false, discardAudit{})
	target := bd.origin + "/api/x"
	get := func(hdr http.Header) func() *http.Request {
		return func() *http.Request {
			req, err := http.NewRequest(http.MethodGet, target, nil)
			if err != nil {
				b.Fatal(err)
			}
			for k, v := range hdr {
				req.Header[k] = v
			}
			return req
		}
	}
	same := func(resp *http.Response, got []byte) error {
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, bd.body) {
			return errors.New("not the upstream's answer")
		}
		return nil
	}
	b.Run("direct", func(b *testing.B) {
		tr := unixTransport("")
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", bd.addr)
		}
		loopDoor(b, tr, get(nil), same)
	})
	b.Run("floor", func(b *testing.B) {
		// The least a second hop costs: httputil.ReverseProxy on a Unix socket,
		// setting one header, forwarding over one pooled transport (bench/floor.go's
		// floor, here in front of the plain upstream).
		sock := filepath.Join(b.TempDir(), "floor.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			b.Fatal(err)
		}
		up := &url.URL{Scheme: "http", Host: bd.addr}
		upTr := &http.Transport{MaxIdleConnsPerHost: 8}
		srv := &http.Server{Handler: &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(up)
				r.Out.Header.Set("Via", "1.1 floor")
			},
			Transport: upTr,
		}}
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Close(); upTr.CloseIdleConnections() })
		loopDoor(b, unixTransport(sock), get(nil), same)
	})
	b.Run("door", func(b *testing.B) {
		tr := unixTransport(bd.sock)
		tr.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: "door"})
		loopDoor(b, tr, get(http.Header{"Proxy-Authorization": {"Bearer " + doorToken}}), same)
	})
}

// BenchmarkProxyDoor: one POST /proxy per iteration, the envelope of a GET of
// http://example.com:<port>/api/x, through a door on its Unix socket (as the bench
// agent sends it), without and with the stored credential granted (and so
// injected), and without a credential into the real audit writer with its SQLite
// index (audited), as the server records every request. The answer is the door's
// JSON envelope, checked to hold the upstream's status and body.
func BenchmarkProxyDoor(b *testing.B) {
	for _, v := range []struct {
		name    string
		grant   bool
		audited bool
	}{{"plain", false, false}, {"injected", true, false}, {"audited", false, true}} {
		b.Run(v.name, func(b *testing.B) {
			var sink AuditSink = discardAudit{}
			if v.audited {
				sink = benchAuditWriter(b)
			}
			bd := newBenchDoor(b, v.grant, sink)
			payload := []byte(`{"url":"` + bd.origin + `/api/x","method":"GET"}`)
			post := func() *http.Request {
				req, err := http.NewRequest(http.MethodPost, "http://door/proxy", bytes.NewReader(payload))
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+doorToken)
				req.Header.Set("Content-Type", "application/json")
				return req
			}
			loopDoor(b, unixTransport(bd.sock), post, func(resp *http.Response, got []byte) error {
				var pr ProxyResponse
				if resp.StatusCode != http.StatusOK {
					return errors.New("door refused")
				}
				if err := json.Unmarshal(got, &pr); err != nil {
					return err
				}
				if pr.Status != http.StatusOK || pr.Body != string(bd.body) {
					return fmt.Errorf("upstream status %d, body %q", pr.Status, pr.Body)
				}
				return nil
			})
		})
	}
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

// benchAuditWriter is the audit writer as the server has it: the file and a SQLite
// index in the test's directory, default settings.
func benchAuditWriter(b *testing.B) *audit.Writer {
	b.Helper()
	dir := b.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	w, err := audit.New(audit.Config{Dir: filepath.Join(dir, "audit")}, audit.Deps{Index: db, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		w.Close(ctx)
	})
	return w
}

// discardAudit is an audit sink that keeps nothing.
type discardAudit struct{}

func (discardAudit) Record(audit.Record) {}
