package egress

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/egress/tlsca"
	"github.com/clawbox/clawbox/internal/secrets"
)

// The values of the real credential store of the proxy-door tests.
const (
	apiSecret   = "sk-live-proxydoor-0123456789abcdefghij"
	phSecret    = "ph-real-value-9876543210zyxwvutsrqpo"
	plainSecret = "plain-http-secret-value-55aa55aa55aa"
)

// proxyEnv is a door with a real credential store, a per-sandbox CA, an https
// upstream (example.com, its test certificate trusted through UpstreamCAFile) and
// an http one (plain.test), both on loopback.
type proxyEnv struct {
	gw          *Gateway
	audit       *auditLog
	door        *Door
	sock        string
	ca          *tlsca.Authority
	store       *secrets.Store
	tlsPort     int
	plainPort   int
	tlsHits     atomic.Int64
	tlsUpstream *httptest.Server
	placeholder string
}

type proxyOpts struct {
	cfg   Config
	rules func(tlsPort, plainPort int) []string
	noCA  bool
}

func newProxyEnv(t *testing.T, h http.HandlerFunc, o proxyOpts) *proxyEnv {
	t.Helper()
	e := &proxyEnv{audit: &auditLog{}}
	counted := func(w http.ResponseWriter, r *http.Request) {
		e.tlsHits.Add(1)
		h(w, r)
	}
	e.tlsUpstream = httptest.NewTLSServer(http.HandlerFunc(counted))
	t.Cleanup(e.tlsUpstream.Close)
	plain := httptest.NewServer(h)
	t.Cleanup(plain.Close)
	tap := netip.MustParseAddrPort(e.tlsUpstream.Listener.Addr().String())
	pap := netip.MustParseAddrPort(plain.Listener.Addr().String())
	e.tlsPort, e.plainPort = int(tap.Port()), int(pap.Port())

	caFile := filepath.Join(t.TempDir(), "upstream-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.tlsUpstream.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := secrets.ParseMasterKey(strings.Repeat("5a", secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	e.store, err = secrets.Open(secrets.Config{Path: filepath.Join(t.TempDir(), "credentials.enc"), Key: key, NoWatch: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	empty := ""
	puts := map[string]api.PutCredentialRequest{
		"api":   {Value: apiSecret, Host: "example.com", Port: e.tlsPort},
		"ph":    {Value: phSecret, Host: "example.com", Port: e.tlsPort, Header: "X-Api-Key", Prefix: &empty, Placeholder: true},
		"plain": {Value: plainSecret, Host: "plain.test", Port: e.plainPort, AllowHTTP: true, Header: "X-Plain", Prefix: &empty},
	}
	for name, req := range puts {
		if _, err := e.store.Put(name, req); err != nil {
			t.Fatal(err)
		}
	}
	e.placeholder = e.store.Placeholders([]string{"ph"})["ph"]
	if e.placeholder == "" {
		t.Fatal("no placeholder")
	}

	cfg := o.cfg
	cfg.Secrets = e.store
	cfg.Audit = e.audit
	cfg.AllowPrivateCIDRs = loopback
	cfg.UpstreamCAFile = caFile
	cfg.Hosts = map[string][]netip.Addr{"example.com": {tap.Addr()}, "plain.test": {pap.Addr()}, "pinned.test": {tap.Addr()}}
	if cfg.RatePerSecond == 0 {
		cfg.RatePerSecond = -1
	}
	if cfg.RefusalsPerSecond == 0 {
		cfg.RefusalsPerSecond = -1
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	e.gw, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.gw.Close() })
	if !o.noCA {
		if e.ca, err = tlsca.New("sandbox-1"); err != nil {
			t.Fatal(err)
		}
	}
	rules := []string{fmt.Sprintf("https://example.com:%d", e.tlsPort), fmt.Sprintf("http://plain.test:%d", e.plainPort)}
	if o.rules != nil {
		rules = o.rules(e.tlsPort, e.plainPort)
	}
	e.sock = filepath.Join(t.TempDir(), "door.sock")
	e.door, err = e.gw.OpenDoor(DoorSpec{
		SandboxID:    "sandbox-1",
		SocketPath:   e.sock,
		Allowlist:    rules,
		Credentials:  []string{"api", "ph", "plain"},
		Authenticate: func(tok string) bool { return tok == doorToken },
		CA:           e.ca,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.door.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// client is what a program in the sandbox uses through the bridge: a proxy URL
// with the sandbox token, dialing the door socket, trusting only the sandbox CA
// (or roots, when given).
func (e *proxyEnv) client(t *testing.T, token string, roots *x509.CertPool) *http.Client {
	t.Helper()
	if roots == nil {
		roots = x509.NewCertPool()
		if e.ca != nil {
			roots.AddCert(e.ca.Certificate())
		}
	}
	proxy := &url.URL{Scheme: "http", Host: "door"}
	if token != "" {
		proxy.User = url.UserPassword("sandbox", token)
	}
	tr := &http.Transport{
		Proxy: http.ProxyURL(proxy),
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", e.sock)
		},
		TLSClientConfig:    &tls.Config{RootCAs: roots},
		DisableCompression: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *proxyEnv) tlsURL(path string) string {
	return fmt.Sprintf("https://example.com:%d%s", e.tlsPort, path)
}

func (e *proxyEnv) plainURL(path string) string {
	return fmt.Sprintf("http://plain.test:%d%s", e.plainPort, path)
}

// records returns the audit records of door.
func (e *proxyEnv) records(door string) []audit.Record {
	var out []audit.Record
	for _, r := range e.audit.all() {
		if r.Door == door {
			out = append(out, r)
		}
	}
	return out
}

func (e *proxyEnv) noSecretInAudit(t *testing.T) {
	t.Helper()
	b, _ := json.Marshal(e.audit.all())
	for _, s := range []string{apiSecret, phSecret, plainSecret} {
		if bytes.Contains(b, []byte(s)) {
			t.Fatal("the audit log holds a credential value")
		}
	}
}

// echo answers with what it saw of the request.
func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s %s auth=%s key=%s plain=%s te=%v body=%s",
		r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), r.Header.Get("X-Plain"), r.TransferEncoding, b)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestForwardProxyInjects(t *testing.T) {
	e := newProxyEnv(t, echo, proxyOpts{})
	c := e.client(t, doorToken, nil)

	resp, err := c.Get(e.plainURL("/get?q=1"))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /get?q=1 ") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	// The credential reached the upstream; the client gets it back redacted.
	if !strings.Contains(body, "plain=[REDACTED]") || strings.Contains(body, plainSecret) {
		t.Fatalf("body %q", body)
	}

	resp, err = c.Post(e.plainURL("/post"), "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); !strings.Contains(body, "POST /post ") || !strings.Contains(body, "body=hello") {
		t.Fatalf("body %q", body)
	}
	recs := e.records(DoorForward)
	if len(recs) != 2 || recs[0].Decision != audit.DecisionAllowed || recs[0].Credentials[0] != "plain" || recs[1].Method != "POST" {
		t.Fatalf("records %+v", recs)
	}
	e.noSecretInAudit(t)
}

func TestForwardProxyAuth(t *testing.T) {
	e := newProxyEnv(t, echo, proxyOpts{})
	for _, tok := range []string{"", "wrong"} {
		resp, err := e.client(t, tok, nil).Get(e.plainURL("/x"))
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") == "" ||
			resp.Header.Get("X-Clawbox-Error") != api.CodeProxyAuthRequired || !strings.Contains(body, api.CodeProxyAuthRequired) {
			t.Fatalf("token %q: status %d %v %q", tok, resp.StatusCode, resp.Header, body)
		}
	}
	// Authorization is the upstream's, never the sandbox token.
	req, _ := http.NewRequest("GET", e.plainURL("/x"), nil)
	req.Header.Set("Authorization", "Bearer "+doorToken)
	resp, err := e.client(t, "", nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("status %d", resp.StatusCode)
	}
	recs := e.records(DoorForward)
	if len(recs) != 3 || recs[0].Decision != audit.DecisionBlocked || recs[0].Host != "plain.test" {
		t.Fatalf("records %+v", recs)
	}
	// The bridge's form, a Bearer proxy token, is accepted and is not a leak (a
	// bearer token matches a credential pattern, but it is the door's, never sent on).
	req, _ = http.NewRequest("GET", e.plainURL("/x"), nil)
	req.Header.Set("Proxy-Authorization", "Bearer "+doorToken)
	resp, err = e.client(t, "", nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 || strings.Contains(body, doorToken) {
		t.Fatalf("bearer proxy token: status %d body %q", resp.StatusCode, body)
	}
	// Origin form to an unknown path stays 404.
	resp, err = doorClient(t, e.sock).Get("http://door/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 404 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestForwardProxyRefusals(t *testing.T) {
	e := newProxyEnv(t, echo, proxyOpts{})
	c := e.client(t, doorToken, nil)
	cases := []struct {
		name, method, url, body string
		header                  http.Header
		status                  int
		code                    string
		dec                     audit.Decision
	}{
		{"host not allowed", "GET", "http://other.test/x", "", nil, 403, api.CodeBlockedByPolicy, audit.DecisionBlocked},
		{"port not allowed", "GET", "http://plain.test:1/x", "", nil, 403, api.CodeBlockedByPolicy, audit.DecisionBlocked},
		{"leak in the body", "POST", e.plainURL("/x"), "k=" + apiSecret, nil, 403, api.CodeLeakDetected, audit.DecisionLeak},
		{"leak in a header", "GET", e.plainURL("/x"), "", http.Header{"X-Leak": {phSecret}}, 403, api.CodeLeakDetected, audit.DecisionLeak},
		{"upgrade", "GET", e.plainURL("/ws"), "", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, 400, api.CodeProtocolUnsupported, audit.DecisionBlocked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tc.status || resp.Header.Get("X-Clawbox-Error") != tc.code || !strings.Contains(body, tc.code) {
				t.Fatalf("status %d code %q body %q", resp.StatusCode, resp.Header.Get("X-Clawbox-Error"), body)
			}
			r := e.audit.last(t)
			if r.Door != DoorForward || r.Decision != tc.dec {
				t.Fatalf("record %+v", r)
			}
		})
	}
	e.noSecretInAudit(t)
}

// connectRaw sends CONNECT target over a fresh door connection and returns the
// connection and the proxy's answer.
func (e *proxyEnv) connectRaw(t *testing.T, target, token string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	auth := ""
	if token != "" {
		auth = "Proxy-Authorization: Bearer " + token + "\r\n"
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, target, auth)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		t.Fatal(err)
	}
	return c, br, resp
}

func TestConnectRefusedBeforeTLS(t *testing.T) {
	e := newProxyEnv(t, echo, proxyOpts{rules: func(tp, pp int) []string {
		return []string{fmt.Sprintf("https://example.com:%d", tp), fmt.Sprintf("!https://pinned.test:%d", tp)}
	}})
	for _, target := range []string{"pinned.test:" + fmt.Sprint(e.tlsPort), "example.com:1", "plain.test:" + fmt.Sprint(e.plainPort)} {
		_, _, resp := e.connectRaw(t, target, doorToken)
		body := readAll(t, resp)
		if resp.StatusCode != 403 || resp.Header.Get("X-Clawbox-Error") != api.CodeBlockedByPolicy || !strings.Contains(body, `"code":"blocked_by_policy"`) {
			t.Fatalf("%s: status %d %v %q", target, resp.StatusCode, resp.Header, body)
		}
		r := e.audit.last(t)
		if r.Door != DoorConnect || r.Decision != audit.DecisionBlocked || r.Method != "CONNECT" || r.URL != "https://"+target {
			t.Fatalf("record %+v", r)
		}
	}
	if e.tlsHits.Load() != 0 {
		t.Fatal("the upstream saw a request")
	}
	// Unauthenticated: 407; malformed target: 400.
	_, _, resp := e.connectRaw(t, "example.com:443", "")
	readAll(t, resp)
	if resp.StatusCode != 407 || resp.Header.Get("Proxy-Authenticate") == "" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, _, resp = e.connectRaw(t, "example.com", doorToken)
	readAll(t, resp)
	if resp.StatusCode != 400 || resp.Header.Get("X-Clawbox-Error") != api.CodeInvalidRequest {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestConnectInterceptInjects(t *testing.T) {
	e := newProxyEnv(t, echo, proxyOpts{})
	c := e.client(t, doorToken, nil)
	// Keep-alive: several requests, one tunnel, one leaf minted.
	for i := range 3 {
		req, _ := http.NewRequest("POST", e.tlsURL(fmt.Sprintf("/v1/%d", i)), strings.NewReader("payload"))
		req.Header.Set("X-Api-Key", e.placeholder)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.PeerCertificates[0].Issuer.CommonName != e.ca.Certificate().Subject.CommonName {
			t.Fatalf("status %d tls %v", resp.StatusCode, resp.TLS)
		}
		want := fmt.Sprintf("POST /v1/%d auth=Bearer [REDACTED] key=[REDACTED] ", i)
		if !strings.HasPrefix(body, want) || !strings.HasSuffix(body, "body=payload") {
			t.Fatalf("body %q, want prefix %q", body, want)
		}
	}
	if e.ca.Minted() != 1 {
		t.Fatalf("minted %d leaves", e.ca.Minted())
	}
	recs := e.records(DoorConnect)
	if len(recs) != 3 {
		t.Fatalf("records %+v", recs)
	}
	for _, r := range recs {
		if r.Decision != audit.DecisionAllowed || r.Method != "POST" || !strings.HasPrefix(r.URL, "https://example.com:") || len(r.Credentials) != 2 {
			t.Fatalf("record %+v", r)
		}
	}
	e.noSecretInAudit(t)
}

func TestConnectKeepAliveOneTunnel(t *testing.T) {
	e := newProxyEnv(t, echo, proxyOpts{})
	conn, br, resp := e.connectRaw(t, fmt.Sprintf("example.com:%d", e.tlsPort), doorToken)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	roots := x509.NewCertPool()
	roots.AddCert(e.ca.Certificate())
	tc := tls.Client(&prefixConn{Conn: conn, r: br}, &tls.Config{RootCAs: roots, ServerName: "example.com", NextProtos: []string{"h2", "http/1.1"}})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Fatalf("ALPN %q", p)
	}
	tbr := bufio.NewReader(tc)
	host := fmt.Sprintf("example.com:%d", e.tlsPort)
	for i := range 3 {
		// Chunked upload on a kept-alive connection (a body that fits the scanned
		// prefix goes upstream with its length).
		fmt.Fprintf(tc, "POST /c/%d HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", i, host)
		resp, err := http.ReadResponse(tbr, nil)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(body, "body=abcde") {
			t.Fatalf("%d: status %d body %q", i, resp.StatusCode, body)
		}
		// The response is chunked too: redaction may change its length.
		if resp.ContentLength != -1 || len(resp.TransferEncoding) == 0 {
			t.Fatalf("response length %d te %v", resp.ContentLength, resp.TransferEncoding)
		}
	}
	// A Host other than the tunnel's is refused.
	fmt.Fprintf(tc, "GET / HTTP/1.1\r\nHost: plain.test:%d\r\n\r\n", e.plainPort)
	resp, err := http.ReadResponse(tbr, nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != http.StatusMisdirectedRequest || resp.Header.Get("X-Clawbox-Error") != api.CodeHostMismatch {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if r := e.audit.last(t); r.Door != DoorConnect || r.Decision != audit.DecisionBlocked {
		t.Fatalf("record %+v", r)
	}
	if got := e.tlsHits.Load(); got != 3 {
		t.Fatalf("upstream hits %d", got)
	}
}

func TestConnectNotTLSOrNotHTTP(t *testing.T) {
	e := newProxyEnv(t, echo, proxyOpts{})
	target := fmt.Sprintf("example.com:%d", e.tlsPort)

	// Plain HTTP inside the tunnel.
	conn, br, resp := e.connectRaw(t, target, doorToken)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", target)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 400 || resp.Header.Get("X-Clawbox-Error") != api.CodeProtocolUnsupported {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r := e.audit.last(t)
	if r.Door != DoorConnect || r.Decision != audit.DecisionBlocked || !strings.Contains(r.Error, api.CodeProtocolUnsupported) {
		t.Fatalf("record %+v", r)
	}

	// TLS that does not carry HTTP.
	conn, br, _ = e.connectRaw(t, target, doorToken)
	roots := x509.NewCertPool()
	roots.AddCert(e.ca.Certificate())
	tc := tls.Client(&prefixConn{Conn: conn, r: br}, &tls.Config{RootCAs: roots, ServerName: "example.com"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(tc, "\x00\x01binary protocol")
	b, _ := io.ReadAll(tc)
	if !bytes.Contains(b, []byte(api.CodeProtocolUnsupported)) {
		t.Fatalf("answer %q", b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.audit.last(t)
		if strings.Contains(r.Reason, "not HTTP") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("record %+v", r)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if e.tlsHits.Load() != 0 {
		t.Fatal("the upstream saw a request")
	}
}

func TestConnectWithoutCA(t *testing.T) {
	e := newProxyEnv(t, echo, proxyOpts{noCA: true})
	_, _, resp := e.connectRaw(t, fmt.Sprintf("example.com:%d", e.tlsPort), doorToken)
	readAll(t, resp)
	if resp.StatusCode != 503 || resp.Header.Get("X-Clawbox-Error") != api.CodeUnavailable {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestConnectPassthrough(t *testing.T) {
	e := newProxyEnv(t, echo, proxyOpts{rules: func(tp, pp int) []string {
		return []string{fmt.Sprintf("https://example.com:%d passthrough", tp)}
	}})
	// The client trusts the upstream's own certificate, not the sandbox CA.
	roots := x509.NewCertPool()
	roots.AddCert(e.tlsUpstream.Certificate())
	c := e.client(t, doorToken, roots)
	resp, err := c.Get(e.tlsURL("/pinned"))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if !resp.TLS.PeerCertificates[0].Equal(e.tlsUpstream.Certificate()) {
		t.Fatal("the client did not see the upstream's certificate")
	}
	// No injection.
	if !strings.HasPrefix(body, "GET /pinned auth= key= ") {
		t.Fatalf("body %q", body)
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	var r audit.Record
	deadline := time.Now().Add(5 * time.Second)
	for {
		// One record when the tunnel opens, one when it closes, with its bytes.
		if recs := e.records(DoorConnect); len(recs) == 2 {
			if !strings.Contains(recs[0].Reason, "opened") || !recs[0].Passthrough || recs[0].Decision != audit.DecisionAllowed {
				t.Fatalf("opening record %+v", recs[0])
			}
			r = recs[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pass-through records: %+v", e.records(DoorConnect))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !r.Passthrough || r.Decision != audit.DecisionAllowed || r.BytesIn == 0 || r.BytesOut == 0 || !strings.Contains(r.Rule, "passthrough") {
		t.Fatalf("record %+v", r)
	}
	if e.ca.Minted() != 0 {
		t.Fatal("a leaf was minted for a pass-through")
	}
}

// chunky streams its response in pieces, flushing each, so that a value lands
// across the writes.
func chunky(pieces ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, p := range pieces {
			io.WriteString(w, p)
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
		}
	}
}

func TestStreamRedactsAcrossChunks(t *testing.T) {
	half := len(apiSecret) / 2
	e := newProxyEnv(t, chunky("start ", apiSecret[:half], apiSecret[half:], " end"), proxyOpts{})
	c := e.client(t, doorToken, nil)
	for _, u := range []string{e.tlsURL("/r"), e.plainURL("/r")} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if body != "start [REDACTED] end" {
			t.Fatalf("%s: body %q", u, body)
		}
	}
}

// countingUpstream records the size and digest of what it received.
type received struct {
	n    atomic.Int64
	hits atomic.Int64
}

func TestStreamUploadLeakAborted(t *testing.T) {
	var got received
	e := newProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		got.hits.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		got.n.Add(n)
	}, proxyOpts{})
	c := e.client(t, doorToken, nil)
	// 3 MiB of filler, then the secret split across two writes of the client, far
	// past the scanned prefix.
	pr, pw := io.Pipe()
	go func() {
		filler := bytes.Repeat([]byte("a"), 1<<20)
		for range 3 {
			pw.Write(filler)
		}
		half := len(apiSecret) / 2
		pw.Write([]byte(apiSecret[:half]))
		pw.Write([]byte(apiSecret[half:]))
		pw.Write(filler)
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", e.plainURL("/upload"), pr)
	resp, err := c.Do(req)
	if err == nil {
		body := readAll(t, resp)
		if resp.StatusCode != 403 || !strings.Contains(body, api.CodeLeakDetected) {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if recs := e.records(DoorForward); len(recs) == 1 && recs[0].Decision == audit.DecisionLeak {
			if recs[0].BytesOut > 3<<20 {
				t.Fatalf("bytes out %d: past the secret", recs[0].BytesOut)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records %+v", e.audit.all())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got.n.Load() > 3<<20 {
		t.Fatalf("the upstream received %d bytes: past the secret", got.n.Load())
	}
	e.noSecretInAudit(t)
}

func TestStreamLargeBodyBoundedMemory(t *testing.T) {
	const size = 64 << 20
	var got received
	sum := sha256.New()
	e := newProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "PUT" {
			n, _ := io.Copy(sum, r.Body)
			got.n.Store(n)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}, proxyOpts{})
	c := e.client(t, doorToken, nil)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	sample := func() {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}

	resp, err := c.Get(e.tlsURL("/big"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	var n int64
	for i := 0; ; i++ {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if i%16 == 0 {
			sample()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	resp.Body.Close()
	if n != size {
		t.Fatalf("downloaded %d bytes", n)
	}

	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for i := 0; i < size>>20; i++ {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
			if i%8 == 0 {
				sample()
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", e.tlsURL("/big"), pr)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if got.n.Load() != size {
		t.Fatalf("uploaded %d bytes", got.n.Load())
	}
	want := sha256.Sum256(bytes.Repeat([]byte("x"), size))
	if hex.EncodeToString(sum.Sum(nil)) != hex.EncodeToString(want[:]) {
		t.Fatal("the upload arrived altered")
	}
	if peak > base && peak-base > 24<<20 {
		t.Fatalf("heap grew by %d MiB streaming %d MiB", (peak-base)>>20, size>>20)
	}
	recs := e.records(DoorConnect)
	if len(recs) != 2 || recs[0].BytesIn != size || recs[1].BytesOut != size {
		t.Fatalf("records %+v", recs)
	}
}

func TestStreamLimits(t *testing.T) {
	release := make(chan struct{})
	e := newProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.Copy(w, r.Body)
	}, proxyOpts{cfg: Config{MaxStreamBytes: 4 << 20, MaxStreamsPerDoor: 1, MaxTunnelsPerDoor: 1}})
	c := e.client(t, doorToken, nil)

	// An upload over MaxStreamBytes with a length is refused before it is sent.
	req, _ := http.NewRequest("POST", e.plainURL("/x"), bytes.NewReader(make([]byte, 5<<20)))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 413 {
		t.Fatalf("status %d", resp.StatusCode)
	}

	// One request at a time through the door.
	done := make(chan error, 1)
	go func() {
		resp, err := c.Get(e.plainURL("/slow"))
		if err == nil {
			readAll(t, resp)
		}
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.door.mu.Lock()
		busy := e.door.streams
		e.door.mu.Unlock()
		if busy == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow request did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, err = e.client(t, doorToken, nil).Get(e.plainURL("/x"))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 429 || resp.Header.Get("X-Clawbox-Error") != api.CodeRateLimited {
		t.Fatalf("status %d", resp.StatusCode)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// One tunnel at a time.
	_, _, resp = e.connectRaw(t, fmt.Sprintf("example.com:%d", e.tlsPort), doorToken)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, _, resp = e.connectRaw(t, fmt.Sprintf("example.com:%d", e.tlsPort), doorToken)
	readAll(t, resp)
	if resp.StatusCode != 429 {
		t.Fatalf("second tunnel: status %d", resp.StatusCode)
	}
}

// TestDoorCloseEndsTunnels: Close ends open tunnels (intercepted, mid-request, and
// passed through) and leaves no goroutine (TestMain runs goleak).
func TestDoorCloseEndsTunnels(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e := newProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}, proxyOpts{cfg: Config{DoorShutdownTimeout: 200 * time.Millisecond}, rules: func(tp, pp int) []string {
		return []string{fmt.Sprintf("https://example.com:%d", tp), fmt.Sprintf("https://pinned.test:%d passthrough", tp)}
	}})
	c := e.client(t, doorToken, nil)
	resp, err := c.Get(e.tlsURL("/hang"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	pass, _, presp := e.connectRaw(t, fmt.Sprintf("pinned.test:%d", e.tlsPort), doorToken)
	if presp.StatusCode != 200 {
		t.Fatalf("status %d", presp.StatusCode)
	}
	closed := make(chan error, 1)
	go func() { closed <- e.door.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not end the tunnels")
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("the hanging response ended cleanly")
	}
	pass.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := pass.Read(make([]byte, 1)); err == nil {
		t.Fatal("the pass-through tunnel is still open")
	}
}

// TestProxyDoorRecordsNameTheDoor: POST /proxy records (allowed and refused at
// authentication) say door "proxy", beside forward and connect.
func TestProxyDoorRecordsNameTheDoor(t *testing.T) {
	e := newProxyEnv(t, echo, proxyOpts{})
	dc := doorClient(t, e.sock)
	for _, tok := range []string{doorToken, "wrong"} {
		req, _ := http.NewRequest("POST", "http://door/proxy", strings.NewReader(`{"url":"`+e.tlsURL("/p")+`"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := dc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
	}
	resp, err := e.client(t, doorToken, nil).Get(e.tlsURL("/c"))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	recs := e.audit.all()
	if len(recs) != 3 {
		t.Fatalf("records %+v", recs)
	}
	want := []struct {
		door string
		dec  audit.Decision
	}{{DoorProxy, audit.DecisionAllowed}, {DoorProxy, audit.DecisionBlocked}, {DoorConnect, audit.DecisionAllowed}}
	for i, w := range want {
		if recs[i].Door != w.door || recs[i].Decision != w.dec {
			t.Fatalf("record %d: %+v, want door %s %s", i, recs[i], w.door, w.dec)
		}
	}
}

// wsEcho answers a WebSocket upgrade with 101, the injected credential echoed in a
// header, and then echoes raw bytes (framing does not matter to the gateway).
func wsEcho(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		echo(w, r)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Seen: %s|%s\r\n\r\n", r.Header.Get("X-Plain"), r.Header.Get("Authorization"))
	brw.Flush()
	io.Copy(conn, brw)
}

func TestWebSocketOption(t *testing.T) {
	e := newProxyEnv(t, wsEcho, proxyOpts{rules: func(tp, pp int) []string {
		return []string{fmt.Sprintf("https://example.com:%d/ws websocket", tp), fmt.Sprintf("http://plain.test:%d websocket", pp), fmt.Sprintf("https://example.com:%d", tp)}
	}})
	upgrade := func(t *testing.T, rw io.ReadWriter, br *bufio.Reader, target, host, auth string) *http.Response {
		t.Helper()
		fmt.Fprintf(rw, "GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", target, host, auth)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	echoes := func(t *testing.T, rw io.ReadWriter, br *bufio.Reader) {
		t.Helper()
		io.WriteString(rw, "ping-1")
		b := make([]byte, 6)
		if _, err := io.ReadFull(br, b); err != nil || string(b) != "ping-1" {
			t.Fatalf("echo %q %v", b, err)
		}
	}

	t.Run("forward", func(t *testing.T) {
		c, err := net.Dial("unix", e.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		host := fmt.Sprintf("plain.test:%d", e.plainPort)
		resp := upgrade(t, c, br, e.plainURL("/chat"), host, "Proxy-Authorization: Bearer "+doorToken+"\r\n")
		if resp.StatusCode != 101 || resp.Header.Get("X-Seen") != "[REDACTED]|" {
			t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
		}
		echoes(t, c, br)
	})

	t.Run("connect", func(t *testing.T) {
		conn, br, resp := e.connectRaw(t, fmt.Sprintf("example.com:%d", e.tlsPort), doorToken)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		roots := x509.NewCertPool()
		roots.AddCert(e.ca.Certificate())
		tc := tls.Client(&prefixConn{Conn: conn, r: br}, &tls.Config{RootCAs: roots, ServerName: "example.com"})
		tbr := bufio.NewReader(tc)
		host := fmt.Sprintf("example.com:%d", e.tlsPort)
		// Outside the rule's path: refused. (It is asked in a tunnel of its own: after
		// a refused upgrade the tunnel usually stays usable, but a run under load once
		// saw it end; the cause is not found yet.)
		{
			oconn, obr, oresp := e.connectRaw(t, fmt.Sprintf("example.com:%d", e.tlsPort), doorToken)
			if oresp.StatusCode != 200 {
				t.Fatalf("status %d", oresp.StatusCode)
			}
			otc := tls.Client(&prefixConn{Conn: oconn, r: obr}, &tls.Config{RootCAs: roots, ServerName: "example.com"})
			oresp = upgrade(t, otc, bufio.NewReader(otc), "/other", host, "")
			readAll(t, oresp)
			if oresp.StatusCode != 400 || oresp.Header.Get("X-Clawbox-Error") != api.CodeProtocolUnsupported {
				t.Fatalf("status %d", oresp.StatusCode)
			}
			otc.Close()
		}
		resp = upgrade(t, tc, tbr, "/ws/room", host, "")
		if resp.StatusCode != 101 || resp.Header.Get("X-Seen") != "|Bearer [REDACTED]" {
			t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
		}
		echoes(t, tc, tbr)
		// Door.Close ends the open WebSocket.
		closed := make(chan error, 1)
		go func() { closed <- e.door.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Close did not end the WebSocket")
		}
		tc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := tbr.ReadByte(); err == nil {
			t.Fatal("the WebSocket is still open")
		}
	})

	var ws, opened []audit.Record
	for _, r := range e.audit.all() {
		switch {
		case r.Status == 101 && strings.Contains(r.Reason, "opened"):
			opened = append(opened, r)
		case r.Status == 101:
			ws = append(ws, r)
		}
	}
	if len(opened) != 2 || opened[0].Door != DoorForward || opened[1].Door != DoorConnect {
		t.Fatalf("no record when each WebSocket opened: %+v", opened)
	}
	if len(ws) != 2 || ws[0].Door != DoorForward || ws[1].Door != DoorConnect || ws[0].BytesOut == 0 || ws[1].BytesIn == 0 ||
		!strings.Contains(ws[1].Reason, "not scanned") || ws[1].Decision != audit.DecisionAllowed {
		t.Fatalf("records %+v", ws)
	}
	e.noSecretInAudit(t)
}

// An upstream that declares identity and then gzip in two Content-Encoding headers
// must not get a compressed (unscannable, unredacted) body past the door: the
// client would decode it and read the injected credential.
func TestForwardRefusesASecondContentEncoding(t *testing.T) {
	e := newProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Content-Encoding", "identity")
		w.Header().Add("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, "reflected: "+r.Header.Get("X-Plain"))
		zw.Close()
	}, proxyOpts{})
	c := e.client(t, doorToken, nil)
	resp, err := c.Get(e.plainURL("/"))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Clawbox-Error") != api.CodeUpstreamError {
		t.Fatalf("status %d (%s) body %q", resp.StatusCode, resp.Header.Get("X-Clawbox-Error"), body)
	}
	if zr, err := gzip.NewReader(strings.NewReader(body)); err == nil {
		if b, _ := io.ReadAll(zr); strings.Contains(string(b), plainSecret) {
			t.Fatal("the injected credential came back compressed")
		}
	}
}

// Every CONNECT costs a rate-limit token, intercepted or not, and a tunnel that
// serves no request still leaves an audit record when it ends.
func TestConnectCostsARateTokenAndIsAudited(t *testing.T) {
	e := newProxyEnv(t, echo, proxyOpts{cfg: Config{RatePerSecond: 0.001, RateBurst: 2}})
	target := fmt.Sprintf("example.com:%d", e.tlsPort)
	for i := range 2 {
		c, _, resp := e.connectRaw(t, target, doorToken)
		if resp.StatusCode != 200 {
			t.Fatalf("tunnel %d: status %d", i, resp.StatusCode)
		}
		c.Close() // no TLS, no request
	}
	_, _, resp := e.connectRaw(t, target, doorToken)
	readAll(t, resp)
	if resp.StatusCode != 429 || resp.Header.Get("X-Clawbox-Error") != api.CodeRateLimited {
		t.Fatalf("third tunnel: status %d, want 429", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		for _, r := range e.records(DoorConnect) {
			if strings.Contains(r.Reason, "without a request") && r.Decision == audit.DecisionAllowed && r.URL == "https://"+target {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tunnels without a request are not audited: %+v", e.records(DoorConnect))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A pass-through tunnel is bounded by StreamTimeout even while it stays busy
// enough never to be idle.
func TestPassthroughEndsAtStreamTimeout(t *testing.T) {
	e := newProxyEnv(t, echo, proxyOpts{
		cfg: Config{StreamTimeout: 500 * time.Millisecond, TunnelIdleTimeout: time.Hour},
		rules: func(tp, pp int) []string {
			return []string{fmt.Sprintf("https://example.com:%d passthrough", tp)}
		}})
	conn, br, resp := e.connectRaw(t, fmt.Sprintf("example.com:%d", e.tlsPort), doorToken)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	roots := x509.NewCertPool()
	roots.AddCert(e.tlsUpstream.Certificate())
	tc := tls.Client(&prefixConn{Conn: conn, r: br}, &tls.Config{RootCAs: roots, ServerName: "example.com"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(tc); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the pass-through tunnel outlived StreamTimeout")
	}
}

// TestForwardResponseOfKnownLength: a response of known length, short (sent whole
// with its headers) or not (streamed), reaches the client redacted and chunked:
// redaction may change its length.
func TestForwardResponseOfKnownLength(t *testing.T) {
	long := strings.Repeat("x", 2*shortBody)
	e := newProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		b := "short " + plainSecret + " end"
		if r.URL.Path == "/long" {
			b = long + plainSecret + " end"
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		io.WriteString(w, b)
	}, proxyOpts{})
	c := e.client(t, doorToken, nil)
	for path, want := range map[string]string{"/short": "short [REDACTED] end", "/long": long + "[REDACTED] end"} {
		resp, err := c.Get(e.plainURL(path))
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("%s: status %d body %.80q", path, resp.StatusCode, body)
		}
		if resp.ContentLength != -1 || len(resp.TransferEncoding) == 0 {
			t.Fatalf("%s: response length %d te %v", path, resp.ContentLength, resp.TransferEncoding)
		}
	}
	e.noSecretInAudit(t)
}

// An upstream answering with a status under 100 (which http.ReadResponse accepts)
// gets a clear upstream_error to the client and an audit record, over each door
// and each upstream path (bodyless requests and uploads), never a panic that
// loses the record.
func TestForwardRefusesAStatusUnder100(t *testing.T) {
	e := newProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n")
		c.Close()
	}, proxyOpts{})
	c := e.client(t, doorToken, nil)
	for _, u := range []string{e.plainURL("/odd"), e.tlsURL("/odd")} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader("upload")
			}
			before := len(e.audit.all())
			req, _ := http.NewRequest(method, u, body)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, u, err)
			}
			b := readAll(t, resp)
			if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Clawbox-Error") != api.CodeUpstreamError {
				t.Fatalf("%s %s: %d (%s) %q", method, u, resp.StatusCode, resp.Header.Get("X-Clawbox-Error"), b)
			}
			recs := e.audit.all()
			if len(recs) != before+1 || recs[len(recs)-1].Decision != audit.DecisionError {
				t.Fatalf("%s %s: audit records %+v", method, u, recs[before:])
			}
		}
	}
}

// TestForwardDropsUnderscoreAliasesOfHopHeaders: Transfer_Encoding, Content_Length
// and the like never reach the upstream (a server that takes '_' for '-' would
// frame the request by them); other names with '_' do.
func TestForwardDropsUnderscoreAliasesOfHopHeaders(t *testing.T) {
	e := newProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		var names []string
		for k := range r.Header {
			names = append(names, k)
		}
		slices.Sort(names)
		fmt.Fprint(w, strings.Join(names, ","))
	}, proxyOpts{})
	c := e.client(t, doorToken, nil)
	req, _ := http.NewRequest("POST", e.plainURL("/x"), strings.NewReader("abc"))
	req.Header["Transfer_Encoding"] = []string{"chunked"}
	req.Header["Content_length"] = []string{"99"}
	req.Header["Proxy_Connection"] = []string{"keep-alive"}
	req.Header["X_Custom_Id"] = []string{"7"}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != 200 || strings.Contains(body, "Transfer_") || strings.Contains(body, "Content_") || strings.Contains(body, "Proxy_") || !strings.Contains(strings.ToLower(body), "x_custom_id") {
		t.Fatalf("status %d, the upstream saw the header names %q", resp.StatusCode, body)
	}
}
