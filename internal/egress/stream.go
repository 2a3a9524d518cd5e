package egress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
)

// Doors, as audit records and POST /policy/check name them.
const (
	DoorProxy   = "proxy"   // POST /proxy
	DoorForward = "forward" // an absolute-form request to the door
	DoorConnect = "connect" // a CONNECT tunnel and the requests inside it
)

// streamPrefix is how much of a streamed request body is read and scanned before
// anything is sent (before any DNS lookup): a body that fits is sent whole with
// its length; a longer one streams through a checkReader.
const streamPrefix = 1 << 20

// shortBody is the longest response body of known length that the door sends
// whole rather than flushed as it comes (see streamDo).
const shortBody = 32 << 10

// streamWindow is how much a checkReader gathers beyond its carry before it scans.
const streamWindow = 256 << 10

// streamCall is one forward or intercepted request.
type streamCall struct {
	ctx context.Context // the client's request: canceled when it goes away (seen goneAfter after its body was read, or when a write to it fails)
	// tunnel, when set, owns what an allowed WebSocket upgrade leaves open (the
	// hijacked client connection and the upstream's): ending it closes them. No
	// tunnel means no upgrade.
	tunnel *tunnel
	door   string
	reqID  string
	method string
	url    string      // absolute, as the client wrote it (or as the tunnel gives it)
	header http.Header // the client's
	body   io.Reader   // nil or http.NoBody: none
	length int64       // -1: unknown
}

// errAborted ends a response that had already begun: the handler panics with
// http.ErrAbortHandler so that the client sees a cut-off body, never a short one
// that looks complete.
var errAborted = errors.New("egress: response aborted")

// stream runs the pipeline of Do for one forward or intercepted request, streaming
// both bodies: parse, policy, leak scan of the method, URL, headers and the body's
// first streamPrefix bytes (before any DNS), rate limit, injection, SSRF-safe dial,
// a checked streaming upload, a redacted streaming response, and one audit record.
func (d *Door) stream(w http.ResponseWriter, sc streamCall) {
	g := d.g
	start := g.now()
	rec := audit.Record{
		Time:        start,
		Kind:        audit.KindRequest,
		ContainerID: d.spec.SandboxID,
		RequestID:   sc.reqID,
		Door:        sc.door,
	}
	// A streamed request may take longer than the door's read timeout.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(start.Add(g.cfg.StreamTimeout))
	_ = rc.SetWriteDeadline(start.Add(g.cfg.StreamTimeout))

	var clean cleanSet
	err := d.streamDo(w, sc, &rec, &clean)
	rec.LatencyMS = g.now().Sub(start).Milliseconds()
	if err == errUpgradeDone {
		err = nil
	}
	recErr := err
	if recErr == errAborted {
		recErr = nil // the record already says why
	}
	g.closeRecord(Call{ContainerID: d.spec.SandboxID, Method: sc.method, URL: sc.url}, &rec, recErr, &clean)
	g.metrics.request(callerContainer, rec.Decision).Inc()
	if g.cfg.Audit != nil {
		g.cfg.Audit.Record(rec)
	}
	switch {
	case err == errAborted:
		panic(http.ErrAbortHandler)
	case err != nil:
		if e, ok := api.AsError(err); ok && e.Code == api.CodeRateLimited {
			w.Header().Set("Retry-After", "1")
		}
		if _, ok := api.AsError(err); !ok {
			g.log.Error("egress door request failed", "request_id", sc.reqID, "err", g.redactString(err.Error()))
		}
		writeProxyError(w, err)
	}
}

// writeProxyError writes err as writeError does, with its code in X-Clawbox-Error
// too, so that a client that shows only the status line of a proxy's answer still
// names the reason.
func writeProxyError(w http.ResponseWriter, err error) {
	code := api.CodeInternal
	if e, ok := api.AsError(err); ok {
		code = e.Code
	}
	w.Header().Set("X-Clawbox-Error", code)
	writeError(w, err, "")
}

// streamDo is the pipeline of stream. An error is returned before anything was
// written to w (the caller writes it), or errAborted once the response had begun.
func (d *Door) streamDo(w http.ResponseWriter, sc streamCall, rec *audit.Record, clean *cleanSet) error {
	g := d.g
	refuse := func(dec audit.Decision, err error) error {
		rec.Decision = dec
		return err
	}
	if g.closed.Load() {
		return refuse(audit.DecisionError, api.Errorf(api.CodeUnavailable, "the egress gateway is shut down"))
	}
	key := d.key
	if g.refusalBudgetSpent(key) {
		rec.Reason = "refusal budget spent"
		return refuse(audit.DecisionRateLimited, errRefusalBudget())
	}

	// 2. Parse.
	u, t, err := parseRecorded(sc.method, sc.url, rec)
	if err != nil {
		return refuse(audit.DecisionBlocked, err)
	}

	// 3. Policy.
	dec := d.policy.decide(t)
	rec.Rule = dec.Rule
	if !dec.Allowed {
		rec.Reason = dec.Reason
		return refuse(audit.DecisionBlocked, &api.Error{
			Code:    api.CodeBlockedByPolicy,
			Message: fmt.Sprintf("%s %s://%s is not allowed by the network policy: %s", t.method, t.scheme, u.Host, dec.Reason),
			Details: map[string]any{"rule": dec.Rule},
		})
	}
	upgrade := isUpgrade(sc.header)
	if upgrade {
		if !strings.EqualFold(strings.TrimSpace(sc.header.Get("Upgrade")), "websocket") || !dec.websocket || sc.tunnel == nil {
			return refuse(audit.DecisionBlocked, api.Errorf(api.CodeProtocolUnsupported,
				"protocol upgrades are refused unless a network rule with the websocket option allows a WebSocket upgrade to this destination"))
		}
		if sc.length != 0 && sc.body != nil && sc.body != http.NoBody {
			return refuse(audit.DecisionBlocked, api.Errorf(api.CodeProtocolUnsupported, "a WebSocket upgrade request has no body"))
		}
	}
	if sc.length > g.cfg.MaxStreamBytes {
		return refuse(audit.DecisionBlocked, api.Errorf(api.CodeTooLarge, "the request body is larger than %d bytes (proxy.max_stream_bytes)", g.cfg.MaxStreamBytes))
	}

	// The body's first bytes, for the scan before any DNS lookup.
	var prefix []byte
	complete := true
	if sc.body != nil && sc.body != http.NoBody && sc.length != 0 {
		n := int64(streamPrefix)
		if sc.length > 0 {
			n = min(n, sc.length)
		}
		// The buffer grows as bytes arrive: a client that announces or trickles a
		// body holds only what it has sent.
		var buf bytes.Buffer
		_, err := io.CopyN(&buf, sc.body, n+1)
		switch {
		case errors.Is(err, io.EOF):
			prefix = buf.Bytes()
		case err != nil:
			return refuse(audit.DecisionError, api.Errorf(api.CodeInvalidRequest, "could not read the request body"))
		default:
			prefix, complete = buf.Bytes(), false
		}
		if sc.length > 0 && int64(len(prefix)) < sc.length && complete {
			return refuse(audit.DecisionError, api.Errorf(api.CodeInvalidRequest, "the request body is shorter than its Content-Length"))
		}
	}

	// 4. Leak scan of what the client supplied, before any DNS lookup.
	if dec, err := g.scanOutbound(d.spec.Credentials, t.method, u, t.url, sc.url, sc.method, scanHTTPHeader(sc.header), prefix, sc.reqID, rec, clean); err != nil {
		return refuse(dec, err)
	}
	s := g.cfg.Secrets

	// 5. Rate limit.
	if !g.limits.allow(key, g.now()) {
		rec.Reason = "rate limit exceeded"
		return refuse(audit.DecisionRateLimited, api.Errorf(api.CodeRateLimited, "rate limit exceeded for this sandbox; retry later"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.StreamTimeout)
	defer cancel()
	if sc.ctx != nil {
		stop := context.AfterFunc(sc.ctx, cancel)
		defer stop()
	}
	var body io.Reader = http.NoBody
	var cr *checkReader
	length := int64(len(prefix))
	if !complete {
		cr = newCheckReader(prefix, sc.body, g.cfg.MaxStreamBytes, streamCarry(s), func(b []byte) error {
			if s == nil {
				return nil
			}
			return s.CheckBody(d.spec.Credentials, t.method, u, b)
		})
		body, length = cr, sc.length
	} else if len(prefix) > 0 {
		body = bytes.NewReader(prefix)
	}
	req, err := http.NewRequestWithContext(ctx, t.method, t.url, body)
	if err != nil {
		return refuse(audit.DecisionBlocked, invalidField("url", "url: cannot build a request for it"))
	}
	req.ContentLength = length
	if length == 0 {
		req.Body, req.GetBody = http.NoBody, nil
	}
	req.Header = forwardHeader(sc.header)
	if upgrade {
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
	}

	// 6. Credential injection.
	if s != nil {
		names, err := s.Inject(d.spec.Credentials, req)
		if err != nil {
			g.log.Warn("egress credential injection failed", "request_id", sc.reqID, "err", g.redactString(err.Error()))
			return refuse(audit.DecisionError, api.Errorf(api.CodeUnavailable, "the credential store is not available"))
		}
		rec.Credentials = names
	}

	// 7, 8. Dial and send; the upload streams through the check.
	sent := g.now()
	resp, err := g.rt.RoundTrip(req)
	rec.BytesOut = int64(len(prefix))
	if cr != nil {
		rec.BytesOut = cr.sent
	}
	g.metrics.bytesOut().Add(float64(rec.BytesOut))
	if cr != nil && cr.failed() != nil {
		// The upload was cut off before a byte of what the check refused was sent.
		if resp != nil {
			resp.Body.Close()
		}
		return refuseUpload(rec, cr.failed())
	}
	if err != nil {
		e := g.upstreamError(ctx, sc.reqID, err)
		if e.Code == api.CodePrivateAddress {
			return refuse(audit.DecisionBlocked, e)
		}
		return refuse(audit.DecisionError, e)
	}
	defer resp.Body.Close()
	rec.Status = resp.StatusCode
	g.metrics.upstreamLatency(callerContainer).Observe(g.now().Sub(sent).Seconds())
	if upgrade && resp.StatusCode == http.StatusSwitchingProtocols {
		return d.spliceUpgrade(w, sc, resp, rec)
	}
	if resp.StatusCode < 200 {
		// A final status below 200 (a 101 not asked for, or a number under 100,
		// which http.ReadResponse accepts) is not an answer to relay.
		return refuse(audit.DecisionError, api.Errorf(api.CodeUpstreamError, "the upstream answered with status %d, which is not a final answer", resp.StatusCode))
	}

	// 9. Response: headers redacted, body streamed through the redactor.
	noBody := t.method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
	if ce, ok := encodedBody(resp.Header); !noBody && ok {
		return refuse(audit.DecisionError, api.Errorf(api.CodeUpstreamError, "upstream sent a body with Content-Encoding %q, which cannot be scanned", ce))
	}
	if !noBody && resp.ContentLength > g.cfg.MaxStreamBytes {
		return refuse(audit.DecisionError, api.Errorf(api.CodeUpstreamError, "the upstream body is larger than %d bytes (proxy.max_stream_bytes)", g.cfg.MaxStreamBytes))
	}
	h := resp.Header // resp is this request's alone: its header is not copied
	for _, name := range responseHopHeaders {
		h.Del(name)
	}
	// A short body of known length goes out whole with the status and headers, in
	// one write when the handler returns: the redactor would hold all of it until
	// its end anyway. Anything else is streamed, flushed as it comes.
	short := !noBody && resp.ContentLength >= 0 && resp.ContentLength <= shortBody
	if s != nil {
		var n int
		h, n = redactHeader(s, h)
		g.metrics.redactions.Add(float64(n))
		if !noBody {
			// Redaction may change the length: the body goes chunked.
			h.Del("Content-Length")
			if short {
				// Chunked without a flush (net/http would otherwise count a short
				// body and send its length).
				h["Transfer-Encoding"] = []string{"chunked"}
			}
		}
	} else if !noBody && resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	dst := w.Header()
	for k, vs := range h {
		dst[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	rec.Decision = audit.DecisionAllowed
	if noBody {
		return nil
	}
	var out io.Writer = w
	if !short {
		// The status and headers go out now, before the first body bytes.
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		out = flushWriter{w: w, rc: rc}
	}
	var redactor io.WriteCloser
	if s != nil {
		redactor = s.RedactStream(out)
		out = redactor
	}
	buf := copyBuffers.Get().(*[]byte)
	n, err := io.CopyBuffer(out, io.LimitReader(resp.Body, g.cfg.MaxStreamBytes+1), *buf)
	copyBuffers.Put(buf)
	rec.BytesIn = n
	g.metrics.bytesIn().Add(float64(n))
	if err == nil && n > g.cfg.MaxStreamBytes {
		err = fmt.Errorf("the upstream body is larger than %d bytes (proxy.max_stream_bytes)", g.cfg.MaxStreamBytes)
	}
	if redactor != nil {
		if cerr := redactor.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if rw, ok := redactor.(interface{ Redactions() int }); ok {
			g.metrics.redactions.Add(float64(rw.Redactions()))
		}
	}
	if err != nil {
		rec.Decision = audit.DecisionError
		rec.Reason = "the response was cut off: " + err.Error()
		rec.Error = api.CodeUpstreamError
		return errAborted
	}
	if cr != nil {
		// The upstream answered before the upload ended; a refusal of its rest is
		// recorded all the same.
		if err := cr.failed(); err != nil {
			_ = refuseUpload(rec, err)
		}
		rec.BytesOut = cr.sent
	}
	return nil
}

// spliceUpgrade completes an allowed WebSocket upgrade: the upstream's 101 (its
// headers redacted) goes to the client, then bytes are spliced both ways,
// unscanned, until either side ends, the tunnel is ended, or nothing crosses for
// TunnelIdleTimeout. The record counts the bytes and says the frames were not
// scanned.
func (d *Door) spliceUpgrade(w http.ResponseWriter, sc streamCall, resp *http.Response, rec *audit.Record) error {
	g := d.g
	up, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		rec.Decision = audit.DecisionError
		return api.Errorf(api.CodeUpstreamError, "the upstream's protocol switch cannot be relayed")
	}
	defer up.Close()
	h := resp.Header.Clone()
	for _, name := range responseHopHeaders {
		h.Del(name)
	}
	if s := g.cfg.Secrets; s != nil {
		h, _ = redactHeader(s, h)
	}
	h.Del("Content-Length")
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		rec.Decision = audit.DecisionError
		return api.Errorf(api.CodeInternal, "the connection cannot be taken over for the upgrade")
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Time{})
	sc.tunnel.setCloser(conn, up)
	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n")
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	rec.Decision = audit.DecisionAllowed
	rec.Reason = "WebSocket upgrade: frames after the handshake are not scanned"
	if _, err := brw.WriteString(b.String()); err != nil || brw.Flush() != nil {
		return errUpgradeDone
	}
	opened := *rec
	opened.Reason = "WebSocket opened: frames after the handshake are not scanned"
	g.auditRefusal(opened) // not a refusal: auditRefusal stamps, counts and records it
	act := g.newActivity()
	var wg sync.WaitGroup
	var in, out int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		out = act.splice(up, brw.Reader, conn)
		_ = up.Close()
		_ = conn.Close()
	}()
	go func() {
		defer wg.Done()
		in = act.splice(conn, up, nil)
		_ = up.Close()
		_ = conn.Close()
	}()
	wg.Wait()
	rec.BytesOut, rec.BytesIn = out, in
	g.metrics.bytesOut().Add(float64(out))
	g.metrics.bytesIn().Add(float64(in))
	return errUpgradeDone
}

// copyBuffers are the buffers streamed response bodies are copied through, reused
// across requests (a new 32 KiB buffer per request was the door's largest
// allocation).
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// errUpgradeDone ends a request whose connection was taken over by an upgrade:
// it is audited as it stands, nothing more is written.
var errUpgradeDone = errors.New("egress: upgraded connection ended")

// refuseUpload records the check's refusal of a streamed upload and returns it.
func refuseUpload(rec *audit.Record, err error) error {
	rec.Decision = audit.DecisionError
	if e, ok := api.AsError(err); ok {
		switch e.Code {
		case api.CodeLeakDetected:
			rec.Decision = audit.DecisionLeak
		case api.CodeTooLarge:
			rec.Decision = audit.DecisionBlocked
		}
		rec.Error = e.Code + ": " + e.Message
		rec.Reason = "the upload was cut off: " + e.Message
		return e
	}
	return api.Errorf(api.CodeInvalidRequest, "could not read the request body")
}

// streamCarry is the carry of the streaming check (what a window keeps into the
// next); with no credential store nothing is checked.
func streamCarry(s Secrets) int {
	if s == nil {
		return 0
	}
	return s.StreamCarry()
}

// flushWriter flushes after every write, so that a streamed body reaches the
// client as it comes (the redactor already writes in large pieces).
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// isUpgrade reports whether the client asks for a protocol upgrade (WebSocket,
// h2c): the gateway cannot scan what follows one.
func isUpgrade(h http.Header) bool {
	if h.Get("Upgrade") != "" {
		return true
	}
	for _, v := range h.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// forwardHeader returns the client's headers to send upstream: hop-by-hop headers
// dropped, those the Connection header names included.
func forwardHeader(in http.Header) http.Header {
	out := in.Clone()
	if out == nil {
		out = http.Header{}
	}
	for _, v := range in.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				out.Del(tok)
			}
		}
	}
	dropHopHeaders(out)
	return out
}

// scanHTTPHeader returns the client's headers h for the leak scan, keyed by every
// case form of each name (the server has canonicalised the names the client
// wrote), without Proxy-Authorization: it carries the sandbox's own token to the
// door (the bridge adds it as a Bearer token) and is never sent on. Each value is
// listed once, under the form of its name that sorts first: the scan checks every
// name and then its values, names in sorted order, and a value's verdict does not
// depend on the name it is listed under, so the scan finds what it found with the
// value under every form, first finding included.
func scanHTTPHeader(h http.Header) http.Header {
	dropAuth := h.Get("Proxy-Authorization") != ""
	n := len(h)
	if dropAuth {
		n--
	}
	if n <= 0 {
		return nil
	}
	out := make(http.Header, n*3)
	var buf [5]string
	for k, vs := range h {
		if dropAuth && k == "Proxy-Authorization" {
			continue
		}
		forms := appendCaseForms(buf[:0], k)
		if lk := strings.ToLower(textproto.CanonicalMIMEHeaderKey(k)); !slices.Contains(forms, lk) {
			forms = append(forms, lk)
		}
		first := slices.Min(forms)
		for _, f := range forms {
			if f == first {
				out[f] = append(out[f], vs...)
			} else if _, ok := out[f]; !ok {
				out[f] = nil
			}
		}
	}
	return out
}

// checkReader streams a request body through the leak check without holding it:
// it scans windows of carry+streamWindow bytes and releases all but the last carry
// bytes of each, which are scanned again with what follows. A value whose scanned
// form is at most carry bytes long is thus seen whole before any byte of it is
// released. On a hit, an oversized body or a read error it fails for good.
type checkReader struct {
	src   io.Reader
	check func([]byte) error
	carry int
	limit int64

	buf   []byte // read, not yet released; buf[off:off+ready] is scanned and releasable
	off   int
	ready int
	read  int64 // bytes read from src
	sent  int64 // bytes released
	eof   bool
	err   error
}

func newCheckReader(prefix []byte, src io.Reader, limit int64, carry int, check func([]byte) error) *checkReader {
	buf := make([]byte, len(prefix), max(len(prefix), carry+streamWindow))
	copy(buf, prefix)
	return &checkReader{src: src, check: check, carry: carry, limit: limit, buf: buf, read: int64(len(prefix))}
}

// failed returns why the reader stopped early: nil, or an *api.Error
// (leak_detected, request_too_large) or the source's error.
func (c *checkReader) failed() error {
	if c.err == io.EOF {
		return nil
	}
	return c.err
}

func (c *checkReader) Read(p []byte) (int, error) {
	for c.ready == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.eof && c.off == len(c.buf) {
			return 0, io.EOF
		}
		c.fill()
	}
	n := copy(p, c.buf[c.off:c.off+c.ready])
	c.off += n
	c.ready -= n
	c.sent += int64(n)
	return n, nil
}

// fill moves the unreleased tail to the front, reads until the buffer is full or
// the body ends, scans the whole buffer and marks what may be released.
func (c *checkReader) fill() {
	c.buf = c.buf[:copy(c.buf, c.buf[c.off:])]
	c.off = 0
	for !c.eof && len(c.buf) < cap(c.buf) {
		n, err := c.src.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		c.read += int64(n)
		if err == io.EOF {
			c.eof = true
		} else if err != nil {
			c.err = err
			return
		}
	}
	if c.read > c.limit {
		c.err = api.Errorf(api.CodeTooLarge, "the request body is larger than %d bytes (proxy.max_stream_bytes)", c.limit)
		return
	}
	if err := c.check(c.buf); err != nil {
		if _, ok := api.AsError(err); !ok {
			err = api.Errorf(api.CodeUnavailable, "the credential store is not available")
		}
		c.err = err
		return
	}
	if c.eof {
		c.ready = len(c.buf)
	} else {
		c.ready = len(c.buf) - c.carry
	}
}
