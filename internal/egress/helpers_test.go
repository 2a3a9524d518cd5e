package egress

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
)

// testSecret is the one credential of fakeSecrets.
const testSecret = "s3cr3t-T0KEN-value"

// events records the order in which the pipeline calls its dependencies.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// fakeSecrets stands in for the credential store: one credential "tok" whose value is
// testSecret, bound to the host "upstream.test" in header mode.
type fakeSecrets struct{ ev *events }

func (f fakeSecrets) CheckOutbound(grants []string, method string, u *url.URL, header http.Header, body []byte) error {
	f.ev.add("check")
	found := strings.Contains(u.String(), testSecret) || bytes.Contains(body, []byte(testSecret))
	for k, vs := range header {
		found = found || strings.Contains(k, testSecret)
		for _, v := range vs {
			found = found || strings.Contains(v, testSecret)
		}
	}
	if found {
		return api.Errorf(api.CodeLeakDetected, "the request holds the value of credential tok")
	}
	return nil
}

func (f fakeSecrets) Inject(grants []string, req *http.Request) ([]string, error) {
	f.ev.add("inject")
	if slices.Contains(grants, "tok") && req.URL.Hostname() == "upstream.test" {
		req.Header.Set("Authorization", "Bearer "+testSecret)
		return []string{"tok"}, nil
	}
	return nil, nil
}

func (f fakeSecrets) Redact(b []byte) ([]byte, int) {
	n := bytes.Count(b, []byte(testSecret))
	return bytes.ReplaceAll(b, []byte(testSecret), []byte("[REDACTED]")), n
}

// auditLog collects audit records.
type auditLog struct {
	mu      sync.Mutex
	records []audit.Record
}

func (a *auditLog) Record(r audit.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, r)
}

func (a *auditLog) all() []audit.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.records)
}

func (a *auditLog) last(t *testing.T) audit.Record {
	t.Helper()
	rs := a.all()
	if len(rs) == 0 {
		t.Fatal("no audit record")
	}
	return rs[len(rs)-1]
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// testEnv is a gateway whose dials are recorded and really made (loopback only), with
// a fake credential store and an audit log.
type testEnv struct {
	gw    *Gateway
	ev    *events
	audit *auditLog
}

func newTestEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	env := &testEnv{ev: &events{}, audit: &auditLog{}}
	if cfg.Secrets == nil {
		cfg.Secrets = fakeSecrets{ev: env.ev}
	}
	cfg.Audit = env.audit
	if cfg.AllowPrivateCIDRs == nil {
		cfg.AllowPrivateCIDRs = loopback
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
			env.ev.add("dial " + address)
			return d.DialContext(ctx, network, address)
		}
	}
	gw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	env.gw = gw
	return env
}

// upstream starts a loopback test server and maps "upstream.test" to it.
func upstream(t *testing.T, cfg *Config, h http.HandlerFunc) (base string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	if cfg.Hosts == nil {
		cfg.Hosts = map[string][]netip.Addr{}
	}
	cfg.Hosts["upstream.test"] = []netip.Addr{ap.Addr()}
	return "http://upstream.test:" + strings.TrimPrefix(srv.URL[strings.LastIndex(srv.URL, ":"):], ":")
}

func wantCode(t *testing.T, err error, code string) *api.Error {
	t.Helper()
	e, ok := api.AsError(err)
	if !ok || e.Code != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	return e
}

func (f fakeSecrets) CheckBody(grants []string, method string, u *url.URL, body []byte) error {
	if bytes.Contains(body, []byte(testSecret)) {
		return api.Errorf(api.CodeLeakDetected, "the body holds the value of credential tok")
	}
	return nil
}

func (f fakeSecrets) StreamCarry() int { return len(testSecret) }

func (f fakeSecrets) RedactStream(w io.Writer) io.WriteCloser {
	return &holdbackRedactor{w: w, secret: []byte(testSecret)}
}

// holdbackRedactor is a streaming redactor of one value: it holds back
// len(secret)-1 bytes of what it was given, so a value split across writes is
// replaced whole.
type holdbackRedactor struct {
	w      io.Writer
	secret []byte
	buf    []byte
	n      int
}

func (h *holdbackRedactor) Write(p []byte) (int, error) {
	h.buf = append(h.buf, p...)
	out := bytes.ReplaceAll(h.buf, h.secret, []byte("[REDACTED]"))
	h.n += bytes.Count(h.buf, h.secret)
	keep := min(len(out), len(h.secret)-1)
	// The kept tail holds no whole value (it is shorter than one).
	if _, err := h.w.Write(out[:len(out)-keep]); err != nil {
		return 0, err
	}
	h.buf = append(h.buf[:0], out[len(out)-keep:]...)
	return len(p), nil
}

func (h *holdbackRedactor) Close() error {
	_, err := h.w.Write(h.buf)
	h.buf = nil
	return err
}

func (h *holdbackRedactor) Redactions() int { return h.n }
