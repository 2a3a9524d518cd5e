package egress

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/clawbox/clawbox/internal/secrets/leak"
	"github.com/clawbox/clawbox/internal/strview"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http/httpguts"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
)

// Secrets is what the gateway needs of the credential store.
type Secrets interface {
	// CheckOutbound scans what the caller supplied (URL, header names and values, body)
	// before any DNS lookup. grants are the credential names this caller may use. It
	// returns an *api.Error with code api.CodeLeakDetected (message names the credential
	// or pattern, never the value) when the content holds a known secret value in any
	// encoded form, matches a credential pattern, or holds the placeholder of a
	// credential that is not granted or whose binding does not match this destination
	// (method, scheme, host, port, path prefix). A granted placeholder sent to a
	// matching destination is not a leak.
	CheckOutbound(grants []string, method string, u *url.URL, header http.Header, body []byte) error
	// Inject adds to req, about to be sent, every granted credential whose binding
	// matches req's destination (https only unless the binding allows http): header
	// mode sets header = prefix+value, overwriting the caller's; placeholder mode swaps
	// the placeholder for the real value in headers (and the query where the binding
	// says so). It returns the names injected (never values).
	Inject(grants []string, req *http.Request) ([]string, error)
	// Redact returns b with every known secret value (in every encoded form) and every
	// credential-pattern match replaced by "[REDACTED]", and the number of replacements.
	// It never writes to b (the gateway passes read-only views of strings); a result
	// with replacements is a new slice.
	Redact(b []byte) ([]byte, int)
	// CheckBody is CheckOutbound's body scan alone, for one window of a streamed
	// request body.
	CheckBody(grants []string, method string, u *url.URL, body []byte) error
	// StreamCarry is how many bytes of one window a streaming body check keeps
	// into the next, so that a value split across windows is found whole.
	StreamCarry() int
	// RedactStream returns a writer that redacts a stream into w as Redact would
	// redact the whole of it, across write boundaries; Close flushes what it holds
	// back and does not close w.
	RedactStream(w io.Writer) io.WriteCloser
}

// AuditSink receives one record per egress request, allowed or refused. Record must
// not block: an implementation queues the record and counts what it had to drop.
type AuditSink interface {
	Record(audit.Record)
}

// Config configures a Gateway. The zero value is usable: every field states its
// default, and nil dependencies mean the default.
type Config struct {
	// MaxResponseBytes caps the upstream response body kept and returned; the rest
	// is dropped and the response is marked truncated (proxy.max_response_bytes).
	// Default 1 MiB.
	MaxResponseBytes int64
	// MaxRequestBytes caps the body of a request to a door, JSON envelope included.
	// Default 10 MiB.
	MaxRequestBytes int64
	// Timeout bounds one upstream request from dial to the last body byte
	// (proxy.default_timeout_ms). Default 30 s.
	Timeout time.Duration
	// ConnectTimeout bounds one TCP connect. Default 10 s.
	ConnectTimeout time.Duration
	// RatePerSecond is the sustained request rate of one sandbox or one tool; a
	// negative value disables rate limiting. Default 10.
	RatePerSecond float64
	// RateBurst is the bucket size of one sandbox or tool. Default 50.
	RateBurst int
	// RateIdle is how long an unused bucket is kept (never less than the time it
	// takes to refill). Default 10 min.
	RateIdle time.Duration
	// AllowPrivateCIDRs opens special-purpose ranges on purpose
	// (proxy.allow_private_cidrs). Default none.
	AllowPrivateCIDRs []netip.Prefix
	// Hosts maps names to addresses without DNS (proxy.hosts). The addresses still
	// pass the special-purpose check. Default none.
	Hosts map[string][]netip.Addr
	// UpstreamCAFile is a PEM file of extra CAs trusted for upstream TLS, beside the
	// system roots (proxy.upstream_ca_file). Default none.
	UpstreamCAFile string
	// DoorShutdownTimeout bounds how long Door.Close waits for in-flight requests
	// before cutting them off. Default 5 s.
	DoorShutdownTimeout time.Duration
	// MaxConcurrentPerDoor bounds the POST /proxy requests one door serves at once
	// (proxy.max_concurrent_per_door); one more is refused at once with 429
	// rate_limited, before its body is read. With MaxRequestBytes it bounds the
	// memory one sandbox can hold in the server. Default 8.
	MaxConcurrentPerDoor int
	// RefusalsPerSecond and RefusalBurst are the budget of refused requests
	// (policy, leak, invalid input) of one sandbox or tool, apart from the request
	// rate (proxy.refusals_per_second, proxy.refusal_burst). While it is spent,
	// every request of that caller is refused with 429 rate_limited before its body
	// is read. A negative RefusalsPerSecond disables it. Defaults 1 and 20.
	RefusalsPerSecond float64
	RefusalBurst      int

	// MaxStreamBytes caps each body of a forward or CONNECT request, either way
	// (proxy.max_stream_bytes): an upload over it is refused or cut off, a
	// download over it is cut off (the client sees a truncated body). Bodies of
	// these doors are streamed, not held. Default 4 GiB.
	MaxStreamBytes int64
	// StreamTimeout bounds one forward or CONNECT request from dial to the last
	// body byte either way (proxy.stream_timeout_ms). Default 10 min.
	StreamTimeout time.Duration
	// MaxStreamsPerDoor bounds the forward and intercepted requests one door serves
	// at once, apart from POST /proxy's MaxConcurrentPerDoor
	// (proxy.max_streams_per_door); one more is refused with 429. Default 32.
	MaxStreamsPerDoor int
	// MaxTunnelsPerDoor bounds the CONNECT tunnels open at once through one door
	// (proxy.max_tunnels_per_door); one more is refused with 429. Default 64.
	MaxTunnelsPerDoor int
	// TunnelIdleTimeout ends an intercepted tunnel idle between requests, and a
	// pass-through tunnel with no byte either way, for that long. Default 2 min.
	TunnelIdleTimeout time.Duration

	// Secrets scans, injects and redacts credentials. Nil means no credentials: no
	// leak scan and no redaction.
	Secrets Secrets
	// Audit receives one record per request. Nil drops them.
	Audit AuditSink
	// Registerer is where the gateway's metrics are registered. Nil means they are
	// not registered.
	Registerer prometheus.Registerer
	// Logger logs refusals (debug) and upstream failures (warn). Nil means
	// slog.Default().
	Logger *slog.Logger
	// Resolver looks up names not in Hosts. Nil means net.DefaultResolver.
	Resolver Resolver
	// Dial connects to one IP:port that passed the special-purpose check. Nil means
	// a net.Dialer that checks the address again in its Control function.
	Dial DialFunc
	// Now is the clock of rate limits and audit records. Nil means time.Now.
	Now func() time.Time
}

// Defaults.
const (
	DefaultMaxResponseBytes     = 1 << 20
	DefaultMaxRequestBytes      = 10 << 20
	DefaultTimeout              = 30 * time.Second
	DefaultConnectTimeout       = 10 * time.Second
	DefaultRatePerSecond        = 10
	DefaultRateBurst            = 50
	DefaultRateIdle             = 10 * time.Minute
	DefaultDoorShutdownTimeout  = 5 * time.Second
	DefaultMaxConcurrentPerDoor = 8
	DefaultRefusalsPerSecond    = 1
	DefaultRefusalBurst         = 20
	DefaultMaxStreamBytes       = 4 << 30
	DefaultStreamTimeout        = 10 * time.Minute
	DefaultMaxStreamsPerDoor    = 32
	DefaultMaxTunnelsPerDoor    = 64
	DefaultTunnelIdleTimeout    = 2 * time.Minute
)

// MaxMethodLen is the longest request method the gateway accepts.
const MaxMethodLen = 32

// redactMargin is how far past MaxResponseBytes the body is read, so that a secret
// straddling the cut is still recognised and redacted before the body is truncated.
const redactMargin = 64 << 10

// Gateway runs the egress pipeline. It is safe for concurrent use; one Gateway
// serves every door and every WASM tool, so that upstream connections are pooled.
type Gateway struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	guard     *Guard
	transport *http.Transport
	rt        *h1Pool // requests without a body itself, the rest through transport
	dial      func(ctx context.Context, network, address string) (net.Conn, error)
	limits    *limiters
	refusals  *limiters // the refusal budget, apart from the request rate
	metrics   *metrics
	closed    atomic.Bool
}

// New returns a gateway for cfg, with defaults filled in. It fails when the CA file
// cannot be read or the metrics cannot be registered.
func New(cfg Config) (*Gateway, error) {
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.RatePerSecond == 0 {
		cfg.RatePerSecond = DefaultRatePerSecond
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = DefaultRateBurst
	}
	if cfg.RateIdle <= 0 {
		cfg.RateIdle = DefaultRateIdle
	}
	if cfg.DoorShutdownTimeout <= 0 {
		cfg.DoorShutdownTimeout = DefaultDoorShutdownTimeout
	}
	if cfg.MaxConcurrentPerDoor <= 0 {
		cfg.MaxConcurrentPerDoor = DefaultMaxConcurrentPerDoor
	}
	if cfg.RefusalsPerSecond == 0 {
		cfg.RefusalsPerSecond = DefaultRefusalsPerSecond
	}
	if cfg.RefusalBurst <= 0 {
		cfg.RefusalBurst = DefaultRefusalBurst
	}
	if cfg.MaxStreamBytes <= 0 {
		cfg.MaxStreamBytes = DefaultMaxStreamBytes
	}
	if cfg.StreamTimeout <= 0 {
		cfg.StreamTimeout = DefaultStreamTimeout
	}
	if cfg.MaxStreamsPerDoor <= 0 {
		cfg.MaxStreamsPerDoor = DefaultMaxStreamsPerDoor
	}
	if cfg.MaxTunnelsPerDoor <= 0 {
		cfg.MaxTunnelsPerDoor = DefaultMaxTunnelsPerDoor
	}
	if cfg.TunnelIdleTimeout <= 0 {
		cfg.TunnelIdleTimeout = DefaultTunnelIdleTimeout
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.now == nil {
		g.now = time.Now
	}
	hosts := make(map[string][]netip.Addr, len(cfg.Hosts))
	for name, addrs := range cfg.Hosts {
		n, err := normalizeName(name)
		if err != nil {
			return nil, fmt.Errorf("egress: proxy.hosts %q: %w", name, err)
		}
		hosts[n] = addrs
	}
	roots, err := upstreamRoots(cfg.UpstreamCAFile)
	if err != nil {
		return nil, err
	}
	g.guard = NewGuard(cfg.AllowPrivateCIDRs)
	d := newDialer(g.guard, hosts, cfg.Resolver, cfg.Dial, cfg.ConnectTimeout)
	g.dial = d.DialContext
	g.transport = &http.Transport{
		Proxy:                  nil, // never an environment proxy
		DialContext:            d.DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 256 << 10,
	}
	g.rt = newH1Pool(g.transport, d.DialContext, g.transport.TLSClientConfig)
	g.limits = newLimiters(cfg.RatePerSecond, cfg.RateBurst, cfg.RateIdle)
	g.refusals = newLimiters(cfg.RefusalsPerSecond, cfg.RefusalBurst, cfg.RateIdle)
	if g.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	return g, nil
}

func upstreamRoots(caFile string) (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if caFile == "" {
		return roots, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("egress: proxy.upstream_ca_file: %w", err)
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("egress: proxy.upstream_ca_file %q holds no PEM certificate", caFile)
	}
	return roots, nil
}

// Close closes idle upstream connections; later calls to Do fail with code
// unavailable. It is idempotent. Doors are owned by whoever opened them.
func (g *Gateway) Close() error {
	g.closed.Store(true)
	g.rt.close()
	return nil
}

// Call is one outbound request and who makes it.
type Call struct {
	// ContainerID or Tool names the caller; exactly one is set. It is the rate-limit
	// key and goes into the audit record.
	ContainerID string
	Tool        string
	// Policy is the caller's effective policy; nil allows nothing.
	Policy *Policy
	// Grants are the credential names the caller may use.
	Grants []string
	// RequestID ties the audit record to the caller's request.
	RequestID string
	// Door is the door the request came through ("proxy"), for the audit record;
	// empty for a tool.
	Door string

	Method string // as the caller wrote it; default GET
	URL    string
	// Headers are the caller's headers exactly as it sent them: names are not
	// canonicalised, so that what is scanned is what the caller wrote.
	Headers map[string]string
	// Body is the request body. LoadBody, when set, is called instead once the policy
	// has allowed the request and before the leak scan, so that a refused request
	// costs no body decoding; its *api.Error refuses the request.
	Body     []byte
	LoadBody func() ([]byte, error)
}

// Response is an upstream response, capped and redacted.
type Response struct {
	Status    int
	Header    http.Header
	Body      []byte
	Truncated bool // the upstream body was longer than MaxResponseBytes
	// Credentials are the names of the credentials injected (never values).
	Credentials []string
}

// hopHeaders are not forwarded from the caller: they describe the caller's
// connection, or the gateway sets them itself (Host, Content-Length, and
// Accept-Encoding, so that compressed bodies are decoded and can be redacted).
var hopHeaders = []string{
	"Host", "Content-Length", "Transfer-Encoding", "Connection", "Proxy-Connection",
	"Keep-Alive", "Proxy-Authorization", "Proxy-Authenticate", "Te", "Trailer",
	"Upgrade", "Accept-Encoding",
}

// dropHopHeaders deletes hopHeaders from h, and every name that reads as one of
// them with '_' for '-' (Transfer_Encoding, Content_Length): an upstream or a server
// in front of it that takes '_' for '-', as some do, would frame the request by it,
// and upstream connections are shared by every sandbox.
func dropHopHeaders(h http.Header) {
	for _, name := range hopHeaders {
		h.Del(name)
	}
	for k := range h {
		if strings.IndexByte(k, '_') < 0 {
			continue
		}
		alias := http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
		if slices.Contains(hopHeaders, alias) {
			delete(h, k)
		}
	}
}

// responseHopHeaders describe the upstream connection, not the response.
var responseHopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Transfer-Encoding", "Te", "Trailer", "Upgrade"}

// Do runs the pipeline for one request: parse, policy, leak scan (before any DNS),
// rate limit, credential injection, SSRF-safe dial, send (redirects are returned, not
// followed), response cap and redaction, audit record and metrics. Refusals and
// failures are *api.Error values with codes blocked_by_policy, leak_detected,
// private_address, rate_limited, upstream_error, upstream_timeout or invalid_request.
func (g *Gateway) Do(ctx context.Context, c Call) (*Response, error) {
	start := g.now()
	rec := audit.Record{
		Time:        start,
		Kind:        audit.KindRequest,
		ContainerID: c.ContainerID,
		Tool:        c.Tool,
		RequestID:   c.RequestID,
		Door:        c.Door,
	}
	var clean cleanSet
	resp, err := g.do(ctx, c, &rec, &clean)
	rec.LatencyMS = g.now().Sub(start).Milliseconds()
	g.closeRecord(c, &rec, err, &clean)
	kind := callerContainer
	if c.ContainerID == "" {
		kind = callerTool
	}
	g.metrics.request(kind, rec.Decision).Inc()
	if g.cfg.Audit != nil {
		g.cfg.Audit.Record(rec)
	}
	return resp, err
}

// closeRecord is step 10 for every door: it puts err into rec, charges a refusal to
// the caller's refusal budget, and redacts what rec took from the caller. clean
// (nil: none) holds what the request's scan found clean.
func (g *Gateway) closeRecord(c Call, rec *audit.Record, err error, clean *cleanSet) {
	if err != nil {
		if e, ok := api.AsError(err); ok {
			rec.Error = e.Code + ": " + e.Message
			if rec.Reason == "" {
				rec.Reason = e.Message
			}
		} else {
			rec.Error = api.CodeInternal
		}
	}
	if refused(rec.Decision) {
		g.refusals.allow(callerKey(c), g.now())
	}
	g.redactRecord(c, rec, clean)
	rec.Reason = g.redactStringIn(clean, rec.Reason)
	rec.Error = g.redactStringIn(clean, rec.Error)
}

// refused reports whether d counts against the refusal budget: the caller asked for
// something the policy or the leak scan refuses, or sent something invalid.
func refused(d audit.Decision) bool {
	return d == audit.DecisionBlocked || d == audit.DecisionLeak
}

// callerKey is the rate-limit key of a call: "container/<id>" or "tool/<name>".
func callerKey(c Call) string {
	if c.ContainerID != "" {
		return "container/" + c.ContainerID
	}
	return "tool/" + c.Tool
}

// refusalBudgetSpent reports whether the caller under key has spent its refusal
// budget; it takes nothing from it.
func (g *Gateway) refusalBudgetSpent(key string) bool {
	return !g.refusals.peek(key, g.now())
}

func errRefusalBudget() *api.Error {
	return api.Errorf(api.CodeRateLimited, "too many refused requests from this sandbox; retry later")
}

// auditRefusal records a request refused before the pipeline proper (at a door's
// authentication), and counts it.
func (g *Gateway) auditRefusal(rec audit.Record) {
	rec.Time = g.now()
	g.metrics.request(callerContainer, rec.Decision).Inc()
	if g.cfg.Audit != nil {
		g.cfg.Audit.Record(rec)
	}
}

func (g *Gateway) do(ctx context.Context, c Call, rec *audit.Record, clean *cleanSet) (*Response, error) {
	refuse := func(d audit.Decision, err error) (*Response, error) {
		rec.Decision = d
		if e, ok := api.AsError(err); ok {
			g.log.Debug("egress request refused", "request_id", c.RequestID, "code", e.Code, "decision", d)
		}
		return nil, err
	}
	if g.closed.Load() {
		return refuse(audit.DecisionError, api.Errorf(api.CodeUnavailable, "the egress gateway is shut down"))
	}
	if (c.ContainerID == "") == (c.Tool == "") {
		return refuse(audit.DecisionError, errors.New("egress: a call needs exactly one of ContainerID and Tool"))
	}
	key := callerKey(c)
	if g.refusalBudgetSpent(key) {
		rec.Reason = "refusal budget spent"
		return refuse(audit.DecisionRateLimited, errRefusalBudget())
	}

	// 2. Parse the method, the URL (http and https only) and the caller's headers.
	// The method is recorded only once it is known to be a short token, and it is
	// scanned with the rest below.
	u, t, err := parseRecorded(c.Method, c.URL, rec)
	if err != nil {
		return refuse(audit.DecisionBlocked, err)
	}
	for name, v := range c.Headers {
		if !httpguts.ValidHeaderFieldName(name) {
			return refuse(audit.DecisionBlocked, invalidField("headers", "headers: invalid header name"))
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			return refuse(audit.DecisionBlocked, invalidField("headers", "headers: invalid header value"))
		}
	}

	// 3. Policy.
	d := c.Policy.decide(t)
	rec.Rule = d.Rule
	if !d.Allowed {
		rec.Reason = d.Reason
		return refuse(audit.DecisionBlocked, &api.Error{
			Code:    api.CodeBlockedByPolicy,
			Message: fmt.Sprintf("%s %s://%s is not allowed by the network policy: %s", t.method, t.scheme, u.Host, d.Reason),
			Details: map[string]any{"rule": d.Rule},
		})
	}

	// The body is decoded only now that the policy allows the destination.
	body := c.Body
	if c.LoadBody != nil {
		if body, err = c.LoadBody(); err != nil {
			return refuse(audit.DecisionBlocked, err)
		}
	}

	// 4. Leak scan of what the caller supplied, before any DNS lookup: the method,
	// the URL and the header names as the caller wrote them and in every form they
	// reach the upstream in (header names canonicalised for HTTP/1.1, lower case for
	// HTTP/2), the header values and the body.
	if d, err := g.scanOutbound(c.Grants, t.method, u, t.url, c.URL, c.Method, scanHeaders(c.Headers), body, c.RequestID, rec, clean); err != nil {
		return refuse(d, err)
	}

	// 5. Rate limit; refused requests above took no token.
	if !g.limits.allow(key, g.now()) {
		rec.Reason = "rate limit exceeded"
		return refuse(audit.DecisionRateLimited, api.Errorf(api.CodeRateLimited, "rate limit exceeded for this sandbox; retry later"))
	}

	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, t.method, t.url, bytes.NewReader(body))
	if err != nil {
		return refuse(audit.DecisionBlocked, invalidField("url", "url: cannot build a request for it"))
	}
	req.ContentLength = int64(len(body))
	if len(body) == 0 {
		req.Body, req.GetBody = http.NoBody, nil
	}
	if len(c.Headers) > 0 {
		req.Header = make(http.Header, len(c.Headers))
	} // else the empty header NewRequestWithContext made
	for k, v := range c.Headers {
		req.Header.Add(k, v)
	}
	dropHopHeaders(req.Header)

	// 6. Credential injection.
	if s := g.cfg.Secrets; s != nil {
		names, err := s.Inject(c.Grants, req)
		if err != nil {
			g.log.Warn("egress credential injection failed", "request_id", c.RequestID, "err", g.redactString(err.Error()))
			return refuse(audit.DecisionError, api.Errorf(api.CodeUnavailable, "the credential store is not available"))
		}
		rec.Credentials = names
	}

	// 7, 8. Dial through the guarded dialer and send; the transport never follows
	// redirects.
	sent := g.now()
	rec.BytesOut = int64(len(body))
	g.metrics.bytesOut().Add(float64(len(body)))
	resp, err := g.rt.RoundTrip(req)
	if err != nil {
		e := g.upstreamError(ctx, c.RequestID, err)
		if e.Code == api.CodePrivateAddress {
			return refuse(audit.DecisionBlocked, e)
		}
		return refuse(audit.DecisionError, e)
	}
	defer resp.Body.Close()
	rec.Status = resp.StatusCode

	// 9. Response: cap, then redact headers and body.
	body, err = io.ReadAll(io.LimitReader(resp.Body, g.cfg.MaxResponseBytes+redactMargin))
	kind := callerContainer
	if c.ContainerID == "" {
		kind = callerTool
	}
	g.metrics.upstreamLatency(kind).Observe(g.now().Sub(sent).Seconds())
	rec.BytesIn = int64(len(body))
	g.metrics.bytesIn().Add(float64(len(body)))
	if err != nil {
		return refuse(audit.DecisionError, g.upstreamError(ctx, c.RequestID, err))
	}
	if ce, ok := encodedBody(resp.Header); len(body) > 0 && ok {
		return refuse(audit.DecisionError, api.Errorf(api.CodeUpstreamError, "upstream sent a body with Content-Encoding %q, which cannot be scanned", ce))
	}
	// resp.Header is the transport's own, made for this response and read by no one
	// else: it is handed on (or redacted into a new one) rather than copied.
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Credentials: rec.Credentials}
	if out.Header == nil {
		out.Header = http.Header{}
	}
	for _, h := range responseHopHeaders {
		out.Header.Del(h)
	}
	truncated := int64(len(body)) > g.cfg.MaxResponseBytes
	if s := g.cfg.Secrets; s != nil {
		var total int
		out.Header, total = redactHeader(s, out.Header)
		var n int
		body, n = s.Redact(body)
		total += n
		g.metrics.redactions.Add(float64(total))
	}
	if truncated {
		body = body[:min(int64(len(body)), g.cfg.MaxResponseBytes)]
	}
	out.Body, out.Truncated = body, truncated
	rec.Decision = audit.DecisionAllowed
	return out, nil
}

// parseRecorded is step 2 for every door: it parses the method and the URL and
// records them; what does not parse is recorded as far as it is safe (a method
// only once it is a short token, a URL only with its query values redacted).
func parseRecorded(method, rawURL string, rec *audit.Record) (*url.URL, target, error) {
	u, t, err := parseTarget(method, rawURL)
	if err != nil {
		if !isFieldError(err, "method") {
			rec.Method = validMethodOrEmpty(method)
		}
		if orig, _ := url.Parse(rawURL); orig != nil && orig.Host != "" {
			rec.URL, rec.Host = audit.RedactURL(orig), orig.Hostname()
		}
		return nil, target{}, err
	}
	rec.Method = t.method
	rec.URL, rec.Host = audit.RedactURL(u), u.Hostname()
	return u, t, nil
}

// scanOutbound is step 4 for every door: the leak scan of what the caller supplied
// (header names and values, body), then of the URL and the method as the caller
// wrote them (normalising lower-cases the host and upper-cases the method). A
// refusal comes with its decision; a method holding a credential is not recorded.
// Strings Redact finds clean go into clean (nil: none), for the record.
func (g *Gateway) scanOutbound(grants []string, method string, u *url.URL, sent, rawURL, rawMethod string, h http.Header, body []byte, reqID string, rec *audit.Record, clean *cleanSet) (audit.Decision, error) {
	s := g.cfg.Secrets
	if s == nil {
		return "", nil
	}
	if err := s.CheckOutbound(grants, method, u, h, body); err != nil {
		if e, ok := api.AsError(err); ok && e.Code == api.CodeLeakDetected {
			return audit.DecisionLeak, e
		}
		g.log.Warn("egress leak scan failed", "request_id", reqID, "err", g.redactString(err.Error()))
		return audit.DecisionError, api.Errorf(api.CodeUnavailable, "the credential store is not available")
	}
	if rawURL != sent {
		if g.redactions(clean, rawURL) > 0 {
			return audit.DecisionLeak, api.Errorf(api.CodeLeakDetected, "the URL holds a credential")
		}
	}
	var forms [4]string
	for _, m := range appendCaseForms(forms[:0], rawMethod) {
		if g.redactions(clean, m) > 0 {
			rec.Method = ""
			return audit.DecisionLeak, api.Errorf(api.CodeLeakDetected, "the method holds a credential")
		}
	}
	return "", nil
}

// encodedBody reports whether h declares a content coding other than identity, in
// any of its Content-Encoding values (an upstream may send several headers, and a
// client decodes them all), and returns the first such coding.
func encodedBody(h http.Header) (string, bool) {
	for _, v := range h.Values("Content-Encoding") {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return c, true
			}
		}
	}
	return "", false
}

// upstreamError turns a transport error into the error the caller sees; the detail
// is logged.
func (g *Gateway) upstreamError(ctx context.Context, requestID string, err error) *api.Error {
	var ae *AddressError
	if errors.As(err, &ae) {
		return api.Errorf(api.CodePrivateAddress, "%s", ae.Error())
	}
	g.log.Warn("egress upstream request failed", "request_id", requestID, "err", g.redactString(err.Error()))
	var re *resolveError
	var ne net.Error
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.As(err, &re):
		return api.Errorf(api.CodeUpstreamError, "could not resolve the upstream host")
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded || errors.As(err, &ne) && ne.Timeout():
		return api.Errorf(api.CodeUpstreamTimeout, "upstream did not answer in time")
	case errors.Is(err, context.Canceled):
		return api.Errorf(api.CodeUpstreamError, "the request was canceled")
	case errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci), errors.As(err, &cv):
		return api.Errorf(api.CodeUpstreamError, "the upstream TLS certificate is not trusted")
	default:
		return api.Errorf(api.CodeUpstreamError, "could not reach the upstream")
	}
}

func (g *Gateway) redactString(s string) string { return g.redactStringIn(nil, s) }

// redactStringIn is redactString for a string that clean (nil: none) may already
// know to be clean.
func (g *Gateway) redactStringIn(clean *cleanSet, s string) string {
	if s == "" || g.cfg.Secrets == nil || clean.has(s) {
		return s
	}
	r, n := g.cfg.Secrets.Redact([]byte(s))
	if n == 0 {
		clean.add(s)
		return s
	}
	return string(r)
}

// redactions is how many replacements Redact makes in s, which clean (nil: none)
// may already know to be clean; a clean s goes into clean.
func (g *Gateway) redactions(clean *cleanSet, s string) int {
	if clean.has(s) {
		return 0
	}
	_, n := g.cfg.Secrets.Redact(strview.Bytes(s))
	if n == 0 {
		clean.add(s)
	}
	return n
}

// cleanSet holds strings in which the credential store's Redact found nothing
// during one request: the audit record repeats what the leak scan looked at (the
// method in its case forms, the URL), and one request scans a string once. A
// credential stored while the request runs is applied from the next request on,
// wherever in the request it is stored.
type cleanSet struct {
	s [8]string
	n int
}

func (c *cleanSet) has(s string) bool {
	if c == nil {
		return false
	}
	return slices.Contains(c.s[:c.n], s)
}

func (c *cleanSet) add(s string) {
	if c != nil && c.n < len(c.s) {
		c.s[c.n] = s
		c.n++
	}
}

// validMethodOrEmpty returns m upper-cased when it is a token of at most MaxMethodLen
// bytes, else "" (an invalid method is never recorded).
func validMethodOrEmpty(m string) string {
	if m == "" {
		return http.MethodGet
	}
	if len(m) > MaxMethodLen || !isToken(m) {
		return ""
	}
	return strings.ToUpper(m)
}

// caseForms returns s as written and in the case forms a case-insensitive reader may
// turn it into (upper, lower, canonical header form), without repeats.
func caseForms(s string) []string {
	return appendCaseForms(make([]string, 0, 4), s)
}

// appendCaseForms appends the forms caseForms returns to dst (a caller's array
// keeps them off the heap).
func appendCaseForms(dst []string, s string) []string {
	start := len(dst)
	dst = append(dst, s)
	forms, ok := commonCaseForms[s]
	if !ok {
		forms = computeCaseForms(s)
	}
	for _, f := range forms {
		if !slices.Contains(dst[start:], f) {
			dst = append(dst, f)
		}
	}
	return dst
}

func computeCaseForms(s string) [3]string {
	return [...]string{strings.ToUpper(s), strings.ToLower(s), http.CanonicalHeaderKey(s)}
}

// commonCaseForms holds the case forms of the header names and methods that nearly
// every request and response carries, computed once: making them costs two or three
// allocations a name, on every request. Names not in it are computed as they come (a
// table that grew with what requests bring would grow without bound).
var commonCaseForms = func() map[string][3]string {
	names := leak.CommonNames()
	m := make(map[string][3]string, len(names))
	for _, n := range names {
		m[n] = computeCaseForms(n)
	}
	return m
}()

// scanHeaders returns the caller's headers for the leak scan, keyed by every case
// form of each name (as written, canonical, lower, upper), so that the scan sees the
// name the caller wrote and every form in which it can reach the upstream.
func scanHeaders(h map[string]string) http.Header {
	if len(h) == 0 {
		return nil
	}
	out := make(http.Header, len(h)*2)
	for k, v := range h {
		for _, f := range caseForms(k) {
			out[f] = append(out[f], v)
		}
	}
	return out
}

// redactHeader returns h with every known secret and credential pattern replaced in
// header values and header names (an upstream may put a value into a name; the door
// lower-cases names, so the name is also redacted in lower case), and the number of
// replacements. Names that become equal after redaction have their values joined.
// The result may share h's value slices (clipped): h is not to be used after.
func redactHeader(s Secrets, h http.Header) (http.Header, int) {
	if headerClean(s, h) {
		return h, 0
	}
	out := make(http.Header, len(h))
	total := 0
	// Redact reads v in place; nothing it returns is kept but a copy.
	redact := func(v string) ([]byte, int) { return s.Redact(strview.Bytes(v)) }
	var forms [4]string
	for name, vs := range h {
		key := name
		found := false
		for _, f := range appendCaseForms(forms[:0], name) {
			if _, n := redact(f); n > 0 {
				found = true
				total += n
				break
			}
		}
		if found {
			r, _ := redact(strings.ToLower(name))
			key = string(r)
			if _, n := redact(key); n > 0 || strings.EqualFold(key, name) {
				// The name still holds it in some case form: drop the name as a whole.
				key = "X-Redacted"
			}
		}
		if len(vs) == 0 {
			continue // no value: the name is not kept, as appending none would not
		}
		_, joined := out[key]
		var changed []string // vs with its redacted values, once one is
		for i, v := range vs {
			r, n := redact(v)
			total += n
			if n > 0 {
				if changed == nil {
					changed = slices.Clone(vs)
				}
				changed[i] = string(r)
			}
		}
		switch {
		case changed != nil:
			out[key] = append(out[key], changed...)
		case joined:
			out[key] = append(out[key], vs...)
		default:
			out[key] = slices.Clip(vs)
		}
	}
	return out, total
}

// headerClean reports whether redactHeader would return h as it is: every name has
// a value, and Redact finds nothing in any case form of a name nor in any value. A
// clean header (nearly every one) is then handed on without a copy.
func headerClean(s Secrets, h http.Header) bool {
	var forms [4]string
	for name, vs := range h {
		if len(vs) == 0 {
			return false
		}
		for _, f := range appendCaseForms(forms[:0], name) {
			if _, n := s.Redact(strview.Bytes(f)); n > 0 {
				return false
			}
		}
		for _, v := range vs {
			if _, n := s.Redact(strview.Bytes(v)); n > 0 {
				return false
			}
		}
	}
	return true
}

// isFieldError reports whether err is an invalid_request error about field.
func isFieldError(err error, field string) bool {
	e, ok := api.AsError(err)
	if !ok {
		return false
	}
	d, ok := e.Details.(map[string]any)
	return ok && d["field"] == field
}

// redactRecord redacts what rec took from the caller. The method and the URL are
// recorded normalised (upper case, host lower case); a secret the caller wrote in
// another case is found in what the caller wrote, and then the field is recorded
// from that, redacted.
func (g *Gateway) redactRecord(c Call, rec *audit.Record, clean *cleanSet) {
	s := g.cfg.Secrets
	if s == nil {
		return
	}
	// tainted are normalised forms of what held a secret; error texts repeat them.
	var tainted []string
	var forms [4]string
	for _, m := range appendCaseForms(forms[:0], c.Method) {
		if g.redactions(clean, m) > 0 {
			tainted = append(tainted, rec.Method, strings.ToUpper(c.Method))
			rec.Method = "[REDACTED]"
			break
		}
	}
	if g.redactions(clean, c.URL) > 0 {
		tainted = append(tainted, rec.URL, rec.Host)
		if orig, err := url.Parse(c.URL); err == nil {
			rec.URL, rec.Host = audit.RedactURL(orig), orig.Hostname()
		} else {
			rec.URL, rec.Host = "", ""
		}
	}
	for _, t := range tainted {
		if t == "" || t == "[REDACTED]" {
			continue
		}
		rec.Error = strings.ReplaceAll(rec.Error, t, "[REDACTED]")
		rec.Reason = strings.ReplaceAll(rec.Reason, t, "[REDACTED]")
	}
	rec.Method = g.redactStringIn(clean, rec.Method)
	rec.URL = g.redactStringIn(clean, rec.URL)
	rec.Host = g.redactStringIn(clean, rec.Host)
}
