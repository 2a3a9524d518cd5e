package egress

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
)

func portOf(base string) string { return base[strings.LastIndex(base, ":")+1:] }

func TestDoAllowedInjectsAndRedacts(t *testing.T) {
	var cfg Config
	base := upstream(t, &cfg, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		fmt.Fprintf(w, "you sent %s %s with %q", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"))
	})
	env := newTestEnv(t, cfg)
	p := mustPolicy(t, "upstream.test:"+portOf(base))
	resp, err := env.gw.Do(context.Background(), Call{
		ContainerID: "c1", Policy: p, Grants: []string{"tok"}, RequestID: "r1",
		URL: base + "/path?q=hello&x=2",
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || resp.Truncated {
		t.Fatalf("status %d truncated %v", resp.Status, resp.Truncated)
	}
	body := string(resp.Body)
	if strings.Contains(body, testSecret) || !strings.Contains(body, `"Bearer [REDACTED]"`) {
		t.Fatalf("body %q: want the injected credential redacted", body)
	}
	if !strings.Contains(body, "GET /path?q=hello&x=2") {
		t.Fatalf("body %q: want the request line", body)
	}
	if got := resp.Header.Get("X-Echo"); got != "Bearer [REDACTED]" {
		t.Fatalf("X-Echo = %q, want it redacted", got)
	}
	if !slices.Equal(resp.Credentials, []string{"tok"}) {
		t.Fatalf("credentials %q", resp.Credentials)
	}
	ap := cfg.Hosts["upstream.test"][0]
	if got, want := env.ev.list(), []string{"check", "inject", "dial " + ap.String() + ":" + portOf(base)}; !slices.Equal(got, want) {
		t.Fatalf("pipeline order %q, want %q", got, want)
	}
	rec := env.audit.last(t)
	if rec.Decision != audit.DecisionAllowed || rec.Kind != audit.KindRequest || rec.ContainerID != "c1" || rec.RequestID != "r1" ||
		rec.Rule != "upstream.test:"+portOf(base) || rec.Status != 200 || rec.Method != "GET" || rec.Host != "upstream.test" ||
		!slices.Equal(rec.Credentials, []string{"tok"}) || rec.BytesIn == 0 {
		t.Fatalf("audit record %+v", rec)
	}
	if want := base + "/path?q=" + audit.Redacted + "&x=" + audit.Redacted; rec.URL != want {
		t.Fatalf("audit URL %q, want %q", rec.URL, want)
	}
	if b, _ := json.Marshal(env.audit.all()); strings.Contains(string(b), testSecret) {
		t.Fatalf("audit holds the secret: %s", b)
	}
}

func TestDoRefusals(t *testing.T) {
	var cfg Config
	base := upstream(t, &cfg, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("upstream reached by %s %s", r.Method, r.URL)
	})
	cfg.Hosts["metadata.test"] = []netip.Addr{netip.MustParseAddr("169.254.169.254")}
	cfg.Hosts["private.test"] = []netip.Addr{netip.MustParseAddr("10.1.2.3")}
	cfg.Hosts["loop6.test"] = []netip.Addr{netip.MustParseAddr("::1")}
	port := portOf(base)
	p := mustPolicy(t, "upstream.test:"+port, "*.upstream.test:"+port, "metadata.test", "private.test", "loop6.test", "http://[::ffff:169.254.169.254]", "http://[fd00::1]")
	tests := []struct {
		name     string
		call     Call
		code     string
		decision audit.Decision
		events   []string
	}{
		{"not allowed by policy", Call{URL: "http://other.test/"}, api.CodeBlockedByPolicy, audit.DecisionBlocked, nil},
		{"other port", Call{URL: "http://upstream.test:1/"}, api.CodeBlockedByPolicy, audit.DecisionBlocked, nil},
		{"nil policy", Call{URL: base + "/", Policy: (*Policy)(nil)}, api.CodeBlockedByPolicy, audit.DecisionBlocked, nil},
		{"not http", Call{URL: "ftp://upstream.test/"}, api.CodeInvalidRequest, audit.DecisionBlocked, nil},
		{"no URL", Call{}, api.CodeInvalidRequest, audit.DecisionBlocked, nil},
		{"bad method", Call{URL: base + "/", Method: "GE T"}, api.CodeInvalidRequest, audit.DecisionBlocked, nil},
		{"bad header value", Call{URL: base + "/", Headers: map[string]string{"X-A": "a\nb"}}, api.CodeInvalidRequest, audit.DecisionBlocked, nil},
		{"leak in query", Call{URL: base + "/?k=" + testSecret}, api.CodeLeakDetected, audit.DecisionLeak, []string{"check"}},
		{"leak in path", Call{URL: base + "/" + testSecret}, api.CodeLeakDetected, audit.DecisionLeak, []string{"check"}},
		{"leak in header value", Call{URL: base + "/", Headers: map[string]string{"X-A": testSecret}}, api.CodeLeakDetected, audit.DecisionLeak, []string{"check"}},
		{"leak in header name", Call{URL: base + "/", Headers: map[string]string{testSecret: "x"}}, api.CodeLeakDetected, audit.DecisionLeak, []string{"check"}},
		{"leak in body", Call{URL: base + "/", Method: "POST", Body: []byte("a=" + testSecret)}, api.CodeLeakDetected, audit.DecisionLeak, []string{"check"}},
		{"leak in host before lower-casing", Call{URL: "http://" + testSecret + ".upstream.test:" + port + "/"}, api.CodeLeakDetected, audit.DecisionLeak, []string{"check"}},
		{"name resolving to metadata", Call{URL: "http://metadata.test/latest/meta-data/"}, api.CodePrivateAddress, audit.DecisionBlocked, []string{"check", "inject"}},
		{"name resolving to private", Call{URL: "http://private.test/"}, api.CodePrivateAddress, audit.DecisionBlocked, []string{"check", "inject"}},
		{"name resolving to IPv6 loopback", Call{URL: "http://loop6.test/"}, api.CodePrivateAddress, audit.DecisionBlocked, []string{"check", "inject"}},
		{"mapped metadata literal", Call{URL: "http://[::ffff:169.254.169.254]/"}, api.CodePrivateAddress, audit.DecisionBlocked, []string{"check", "inject"}},
		{"unique local literal", Call{URL: "http://[fd00::1]/"}, api.CodePrivateAddress, audit.DecisionBlocked, []string{"check", "inject"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, cfg)
			c := tt.call
			c.ContainerID = "c1"
			if c.Policy == nil && tt.name != "nil policy" {
				c.Policy = p
			}
			_, err := env.gw.Do(context.Background(), c)
			e := wantCode(t, err, tt.code)
			if e.Status() < 400 || e.Status() >= 500 {
				t.Fatalf("status %d for %s", e.Status(), tt.code)
			}
			if got := env.ev.list(); !slices.Equal(got, tt.events) {
				t.Fatalf("pipeline ran %q, want %q (nothing dialled)", got, tt.events)
			}
			rec := env.audit.last(t)
			if rec.Decision != tt.decision || rec.Reason == "" || rec.ContainerID != "c1" {
				t.Fatalf("audit record %+v, want decision %s with a reason", rec, tt.decision)
			}
			if b, _ := json.Marshal(rec); strings.Contains(string(b), testSecret) {
				t.Fatalf("audit record holds the secret: %s", b)
			}
		})
	}
}

// Requests refused by policy or the leak scan take no rate-limit token.
func TestDoRateLimit(t *testing.T) {
	cfg := Config{RatePerSecond: 0.001, RateBurst: 2}
	base := upstream(t, &cfg, func(w http.ResponseWriter, r *http.Request) {})
	env := newTestEnv(t, cfg)
	p := mustPolicy(t, "upstream.test:"+portOf(base))
	do := func(container, url string) error {
		_, err := env.gw.Do(context.Background(), Call{ContainerID: container, Policy: p, URL: url})
		return err
	}
	for range 5 {
		wantCode(t, do("c1", "http://blocked.test/"), api.CodeBlockedByPolicy)
		wantCode(t, do("c1", base+"/?x="+testSecret), api.CodeLeakDetected)
	}
	for i := range 2 {
		if err := do("c1", base+"/"); err != nil {
			t.Fatalf("request %d within the burst: %v", i, err)
		}
	}
	e := wantCode(t, do("c1", base+"/"), api.CodeRateLimited)
	if e.Status() != http.StatusTooManyRequests {
		t.Fatalf("status %d", e.Status())
	}
	if rec := env.audit.last(t); rec.Decision != audit.DecisionRateLimited {
		t.Fatalf("audit decision %s", rec.Decision)
	}
	if err := do("c2", base+"/"); err != nil {
		t.Fatalf("another sandbox shares the bucket: %v", err)
	}
	if _, err := env.gw.Do(context.Background(), Call{Tool: "c1", Policy: p, URL: base + "/"}); err != nil {
		t.Fatalf("a tool with the same name as a sandbox shares its bucket: %v", err)
	}
}

func TestDoRedirectReturnedNotFollowed(t *testing.T) {
	var hits atomic.Int32
	var cfg Config
	base := upstream(t, &cfg, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "http://upstream.test/elsewhere", http.StatusFound)
	})
	env := newTestEnv(t, cfg)
	resp, err := env.gw.Do(context.Background(), Call{ContainerID: "c", Policy: mustPolicy(t, "*"), URL: base + "/start"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusFound || resp.Header.Get("Location") != "http://upstream.test/elsewhere" || hits.Load() != 1 {
		t.Fatalf("status %d location %q hits %d", resp.Status, resp.Header.Get("Location"), hits.Load())
	}
}

func TestDoResponseCap(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		max       int64
		want      string
		truncated bool
	}{
		{"under the cap", "0123456789", 10, "0123456789", false},
		{"over the cap", strings.Repeat("a", 100), 10, "aaaaaaaaaa", true},
		{"secret across the cut is redacted first", "aaaa" + testSecret + "bbbb", 6, "aaaa[R", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{MaxResponseBytes: tt.max}
			base := upstream(t, &cfg, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tt.body) })
			env := newTestEnv(t, cfg)
			resp, err := env.gw.Do(context.Background(), Call{ContainerID: "c", Policy: mustPolicy(t, "*"), URL: base + "/"})
			if err != nil {
				t.Fatal(err)
			}
			if string(resp.Body) != tt.want || resp.Truncated != tt.truncated {
				t.Fatalf("body %q truncated %v, want %q %v", resp.Body, resp.Truncated, tt.want, tt.truncated)
			}
		})
	}
}

func TestDoUpstreamTimeout(t *testing.T) {
	stop := make(chan struct{})
	cfg := Config{Timeout: 50 * time.Millisecond}
	base := upstream(t, &cfg, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	t.Cleanup(func() { close(stop) })
	env := newTestEnv(t, cfg)
	_, err := env.gw.Do(context.Background(), Call{ContainerID: "c", Policy: mustPolicy(t, "*"), URL: base + "/"})
	wantCode(t, err, api.CodeUpstreamTimeout)
	if rec := env.audit.last(t); rec.Decision != audit.DecisionError {
		t.Fatalf("audit decision %s", rec.Decision)
	}
}

func TestDoUpstreamRefused(t *testing.T) {
	var cfg Config
	base := upstream(t, &cfg, func(w http.ResponseWriter, r *http.Request) {})
	env := newTestEnv(t, cfg)
	// Port 1 on loopback: nothing listens there.
	_, err := env.gw.Do(context.Background(), Call{ContainerID: "c", Policy: mustPolicy(t, "*"), URL: strings.Replace(base, ":"+portOf(base), ":1", 1) + "/"})
	wantCode(t, err, api.CodeUpstreamError)
}

// A compressed response is decoded by the gateway, so redaction sees the text; the
// caller cannot ask for an encoding that hides it.
func TestDoCompressedResponseIsRedacted(t *testing.T) {
	var cfg Config
	base := upstream(t, &cfg, func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			io.WriteString(w, "plain: "+r.Header.Get("Authorization"))
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, "gzip: "+r.Header.Get("Authorization"))
		zw.Close()
	})
	env := newTestEnv(t, cfg)
	resp, err := env.gw.Do(context.Background(), Call{
		ContainerID: "c", Policy: mustPolicy(t, "*"), Grants: []string{"tok"}, URL: base + "/",
		Headers: map[string]string{"Accept-Encoding": "gzip"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "gzip: Bearer [REDACTED]" || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("body %q encoding %q", resp.Body, resp.Header.Get("Content-Encoding"))
	}
}

func TestDoRefusesUnscannableEncoding(t *testing.T) {
	var cfg Config
	base := upstream(t, &cfg, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "br")
		w.Write([]byte{0x1b, 0x02, 0x00})
	})
	env := newTestEnv(t, cfg)
	_, err := env.gw.Do(context.Background(), Call{ContainerID: "c", Policy: mustPolicy(t, "*"), URL: base + "/"})
	wantCode(t, err, api.CodeUpstreamError)
}

// One shared transport: a second request reuses the pooled connection.
func TestDoPoolsConnections(t *testing.T) {
	var cfg Config
	base := upstream(t, &cfg, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	env := newTestEnv(t, cfg)
	for range 3 {
		if _, err := env.gw.Do(context.Background(), Call{ContainerID: "c", Policy: mustPolicy(t, "*"), URL: base + "/"}); err != nil {
			t.Fatal(err)
		}
	}
	dials := 0
	for _, e := range env.ev.list() {
		if strings.HasPrefix(e, "dial ") {
			dials++
		}
	}
	if dials != 1 {
		t.Fatalf("%d dials for 3 requests, want 1: %q", dials, env.ev.list())
	}
}

func TestDoUpstreamTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls ok")
	}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	// The test certificate names example.com; Hosts sends it to loopback, no DNS.
	hosts := map[string][]netip.Addr{"example.com": {ap.Addr()}}
	url := fmt.Sprintf("https://example.com:%d/", ap.Port())
	p := mustPolicy(t, fmt.Sprintf("GET https://example.com:%d", ap.Port()))

	t.Run("trusted with the CA file", func(t *testing.T) {
		env := newTestEnv(t, Config{Hosts: hosts, UpstreamCAFile: caFile})
		resp, err := env.gw.Do(context.Background(), Call{ContainerID: "c", Policy: p, URL: url})
		if err != nil {
			t.Fatal(err)
		}
		if string(resp.Body) != "tls ok" {
			t.Fatalf("body %q", resp.Body)
		}
	})
	t.Run("untrusted without it", func(t *testing.T) {
		env := newTestEnv(t, Config{Hosts: hosts})
		_, err := env.gw.Do(context.Background(), Call{ContainerID: "c", Policy: p, URL: url})
		wantCode(t, err, api.CodeUpstreamError)
	})
	t.Run("bad CA file", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.pem")
		os.WriteFile(bad, []byte("not a certificate"), 0o600)
		if _, err := New(Config{UpstreamCAFile: bad}); err == nil {
			t.Fatal("New accepted a CA file without a certificate")
		}
	})
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s %v", name, labels)
	return 0
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := Config{Registerer: reg}
	base := upstream(t, &cfg, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "12345") })
	env := newTestEnv(t, cfg)
	p := mustPolicy(t, "*")
	env.gw.Do(context.Background(), Call{ContainerID: "c", Policy: p, URL: base + "/"})
	env.gw.Do(context.Background(), Call{ContainerID: "c", Policy: p, URL: "ftp://x/"})
	env.gw.Do(context.Background(), Call{Tool: "t", Policy: p, URL: base + "/", Body: []byte("abc"), Method: "POST"})
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"clawbox_gateway_requests_total", map[string]string{"caller": "container", "decision": "allowed"}, 1},
		{"clawbox_gateway_requests_total", map[string]string{"caller": "container", "decision": "blocked"}, 1},
		{"clawbox_gateway_requests_total", map[string]string{"caller": "tool", "decision": "allowed"}, 1},
		{"clawbox_gateway_requests_total", map[string]string{"caller": "tool", "decision": "leak"}, 0},
		{"clawbox_gateway_bytes_total", map[string]string{"direction": "in"}, 10},
		{"clawbox_gateway_bytes_total", map[string]string{"direction": "out"}, 3},
	}
	for _, c := range checks {
		if got := counterValue(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if _, err := New(Config{Registerer: reg}); err == nil {
		t.Fatal("a second gateway registered the same metrics")
	}
}

func TestDoCallerAndLifecycle(t *testing.T) {
	env := newTestEnv(t, Config{})
	p := mustPolicy(t, "*")
	if _, err := env.gw.Do(context.Background(), Call{Policy: p, URL: "http://x.test/"}); err == nil {
		t.Fatal("a call without a caller was accepted")
	} else if _, ok := api.AsError(err); ok {
		t.Fatalf("a call without a caller is a programming error, not a client error: %v", err)
	}
	if rec := env.audit.last(t); rec.Decision != audit.DecisionError {
		t.Fatalf("audit decision %s", rec.Decision)
	}
	env.gw.Close()
	env.gw.Close()
	_, err := env.gw.Do(context.Background(), Call{ContainerID: "c", Policy: p, URL: "http://x.test/"})
	wantCode(t, err, api.CodeUnavailable)
}

// The default dialer (a net.Dialer whose Control runs the guard) and no credential
// store: a loopback upstream is reachable only when 127.0.0.0/8 is allowed.
func TestDoDefaultDialer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Auth", r.Header.Get("Authorization"))
		io.WriteString(w, "direct")
	}))
	t.Cleanup(srv.Close)
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	hosts := map[string][]netip.Addr{"upstream.test": {ap.Addr()}}
	url := fmt.Sprintf("http://upstream.test:%d/", ap.Port())
	p := mustPolicy(t, "*")
	tests := []struct {
		name  string
		allow []netip.Prefix
		code  string
	}{
		{"loopback refused by default", nil, api.CodePrivateAddress},
		{"loopback allowed on purpose", loopback, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw, err := New(Config{Hosts: hosts, AllowPrivateCIDRs: tt.allow})
			if err != nil {
				t.Fatal(err)
			}
			defer gw.Close()
			resp, err := gw.Do(context.Background(), Call{ContainerID: "c", Policy: p, Grants: []string{"tok"}, URL: url,
				Headers: map[string]string{"Authorization": "Bearer mine"}})
			if tt.code != "" {
				wantCode(t, err, tt.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(resp.Body) != "direct" || resp.Header.Get("X-Auth") != "Bearer mine" || len(resp.Credentials) != 0 {
				t.Fatalf("body %q auth %q credentials %q", resp.Body, resp.Header.Get("X-Auth"), resp.Credentials)
			}
		})
	}
}

// recordingResolver records every lookup and answers with a public address.
type recordingResolver struct{ ev *events }

func (r recordingResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.ev.add("lookup " + host)
	return []netip.Addr{netip.MustParseAddr("192.0.2.1")}, nil // refused by the guard: never dialled
}

// Policy and the leak scan run before any DNS lookup: a refused request never
// reaches the resolver, so nothing leaks through a DNS query.
func TestDoNoDNSBeforeLeakScan(t *testing.T) {
	ev := &events{}
	env := newTestEnv(t, Config{Resolver: recordingResolver{ev: ev}, Secrets: fakeSecrets{ev: ev}})
	p := mustPolicy(t, "*.dns.test")
	tests := []struct {
		name   string
		url    string
		code   string
		events []string
	}{
		{"blocked by policy", "http://" + "elsewhere.test/", api.CodeBlockedByPolicy, nil},
		{"leak in a subdomain label", "http://" + testSecret + ".x.dns.test/", api.CodeLeakDetected, []string{"check"}},
		{"leak in the query", "http://a.dns.test/?" + testSecret, api.CodeLeakDetected, []string{"check"}},
		{"clean request is looked up", "http://a.dns.test/", api.CodePrivateAddress, []string{"check", "inject", "lookup a.dns.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev.mu.Lock()
			ev.log = nil
			ev.mu.Unlock()
			_, err := env.gw.Do(context.Background(), Call{ContainerID: "c", Policy: p, URL: tt.url})
			wantCode(t, err, tt.code)
			if got := ev.list(); !slices.Equal(got, tt.events) {
				t.Fatalf("events %q, want %q", got, tt.events)
			}
		})
	}
}

func TestDoRefusesASecondContentEncoding(t *testing.T) {
	var cfg Config
	base := upstream(t, &cfg, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Content-Encoding", "identity")
		w.Header().Add("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, "gzip: "+r.Header.Get("Authorization"))
		zw.Close()
	})
	env := newTestEnv(t, cfg)
	_, err := env.gw.Do(context.Background(), Call{ContainerID: "c", Policy: mustPolicy(t, "*"), Grants: []string{"tok"}, URL: base + "/"})
	wantCode(t, err, api.CodeUpstreamError)
}

// TestCaseForms: the forms a name is scanned and redacted under, for a name in the
// precomputed table and for one that is not, are the same: as written, upper,
// lower and canonical, without repeats.
func TestCaseForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"Content-Type", []string{"Content-Type", "CONTENT-TYPE", "content-type"}},
		{"content-type", []string{"content-type", "CONTENT-TYPE", "Content-Type"}},
		{"x-sEcret-k", []string{"x-sEcret-k", "X-SECRET-K", "x-secret-k", "X-Secret-K"}},
		{"GET", []string{"GET", "get", "Get"}},
		{"", []string{""}},
	} {
		if got := caseForms(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("caseForms(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for name, forms := range commonCaseForms {
		if want := computeCaseForms(name); forms != want {
			t.Errorf("commonCaseForms[%q] = %q, computed %q", name, forms, want)
		}
	}
}
