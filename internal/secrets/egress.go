package secrets

import (
	"fmt"
	"github.com/clawbox/clawbox/internal/strview"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/secrets/leak"
)

// CheckOutbound scans what a sandbox supplied (method, URL, header names and
// values, body) before anything is sent. It returns an *api.Error with code
// leak_detected when the content holds a known value in any form leak.Scanner knows
// (plain; hex in any case; base64 standard or URL-safe at any alignment, also
// wrapped into lines; any of these percent-encoded or backslash-escaped up to 10
// rounds), matches a credential pattern, or holds the placeholder of a credential
// that is not granted or whose binding does not match this destination. Header
// names and the method are matched case-insensitively (CheckName), so a value
// survives no canonicalisation. The message names the credential or the pattern
// and where it was found, never the value, and never a caller-supplied header name.
//
// Callers that see the request before Go canonicalises it (the door, WASM
// http_request) should also pass the header names and the method exactly as the
// caller wrote them to CheckHeaderNames and CheckMethod, and the request target as
// written to CheckURL.
func (s *Store) CheckOutbound(grants []string, method string, u *url.URL, header http.Header, body []byte) error {
	c := s.checker(grants, method, u)
	if err := c.name("the method", method); err != nil {
		return err
	}
	if u != nil {
		if err := c.text("the URL", strview.Bytes(u.String())); err != nil {
			return err
		}
	}
	keys := make([]string, 0, len(header))
	for k := range header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := c.name("a header name", k); err != nil {
			return err
		}
		for _, v := range header[k] {
			if err := c.text("a header value", strview.Bytes(v)); err != nil {
				return err
			}
		}
	}
	return c.body(body)
}

// CheckHeaderNames scans header names exactly as the caller sent them, before any
// canonicalisation, case-insensitively (leak.Scanner.CheckName). grants, method and
// u decide, as in CheckOutbound, whether a placeholder may appear. It returns nil or
// a leak_detected *api.Error that never quotes a name.
func (s *Store) CheckHeaderNames(grants []string, method string, u *url.URL, names []string) error {
	c := s.checker(grants, method, u)
	for _, n := range names {
		if err := c.name("a header name", n); err != nil {
			return err
		}
	}
	return nil
}

// CheckMethod scans a request method exactly as the caller sent it,
// case-insensitively. A method can carry no placeholder legitimately. It returns nil
// or a leak_detected *api.Error; callers must not write the method to the audit log
// or anywhere else before it passed.
func (s *Store) CheckMethod(method string) error {
	return s.checker(nil, method, nil).name("the method", method)
}

// CheckURL scans a request target as the caller wrote it (raw: before parsing, so
// nothing a parser normalises is missed), in the forms CheckOutbound knows. grants,
// method and u (the parsed destination, for placeholder bindings; may be nil) are as
// in CheckOutbound.
func (s *Store) CheckURL(grants []string, method string, u *url.URL, raw string) error {
	return s.checker(grants, method, u).text("the URL", []byte(raw))
}

// CheckBody scans a request body: as text in every form, and when it is a JSON
// document, each string with escapes decoded. grants, method and u are as in
// CheckOutbound.
func (s *Store) CheckBody(grants []string, method string, u *url.URL, body []byte) error {
	return s.checker(grants, method, u).body(body)
}

// checker scans outbound content for one request.
type checker struct {
	snap  *snapshot
	allow func(i int) bool
}

func (s *Store) checker(grants []string, method string, u *url.URL) checker {
	snap := s.load()
	if method == "" {
		method = http.MethodGet
	}
	return checker{snap: snap, allow: func(i int) bool {
		e := snap.entries[i]
		return u != nil && e.Placeholder && slices.Contains(grants, e.Name) && e.matches(method, u)
	}}
}

func (c checker) text(where string, b []byte) error {
	if f, ok := c.snap.scan.Check(b, c.allow); ok {
		return leakError(c.snap, f, where)
	}
	return nil
}

func (c checker) name(where, n string) error {
	if f, ok := c.snap.scan.CheckName(strview.Bytes(n), c.allow); ok {
		return leakError(c.snap, f, where)
	}
	return nil
}

func (c checker) body(b []byte) error {
	if err := c.text("the body", b); err != nil {
		return err
	}
	if f, ok := c.snap.scan.CheckJSONStrings(b, c.allow); ok {
		return leakError(c.snap, f, "the body")
	}
	return nil
}

func leakError(snap *snapshot, f leak.Finding, where string) error {
	enc := ""
	if f.Round > 0 {
		enc = ", decoded from %- or \\-escapes"
	}
	if f.Wrapped {
		enc += ", wrapped into lines"
	}
	if f.Folded {
		enc += ", in another letter case"
	}
	if f.Secret < 0 {
		e := api.Errorf(api.CodeLeakDetected, "%s matches the credential pattern %s%s", where, f.Pattern, enc)
		e.Details = map[string]string{"pattern": f.Pattern}
		return e
	}
	name := snap.entries[f.Secret].Name
	var e *api.Error
	if f.Form == leak.FormPlaceholder {
		e = api.Errorf(api.CodeLeakDetected, "%s holds the placeholder of credential %q, which is not granted or not bound to this destination", where, name)
	} else {
		e = api.Errorf(api.CodeLeakDetected, "%s holds the value of credential %q (%s%s)", where, name, f.Form, enc)
	}
	e.Details = map[string]string{"credential": name}
	return e
}

// Inject adds to req, about to be sent, every granted credential whose binding matches
// req's method and URL (https only unless the binding allows http). Header mode sets
// header: prefix+value, replacing the caller's; placeholder mode swaps the placeholder
// for the value in header values, and in the query when the binding says so. It
// returns the names injected, sorted. Two granted header-mode credentials that would
// set the same header on one request are refused (policy_denied) rather than one
// silently winning.
func (s *Store) Inject(grants []string, req *http.Request) ([]string, error) {
	snap := s.load()
	if req == nil || req.URL == nil {
		return nil, fmt.Errorf("inject: no request URL")
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	grants = slices.Clone(grants)
	slices.Sort(grants)
	grants = slices.Compact(grants)
	var names []string
	headerOwner := map[string]string{}
	for _, g := range grants {
		i, ok := snap.byName[g]
		if !ok {
			continue
		}
		e := snap.entries[i]
		if !e.matches(method, req.URL) {
			continue
		}
		if e.Placeholder {
			if swapPlaceholder(req, e, snap.placeholders[i]) {
				names = append(names, e.Name)
			}
			continue
		}
		if other, dup := headerOwner[e.Header]; dup {
			return nil, api.Errorf(api.CodePolicyDenied, "credentials %q and %q both set header %s for this destination", other, e.Name, e.Header)
		}
		headerOwner[e.Header] = e.Name
		// Drop the caller's header under any spelling of its name (a key set
		// directly in the map is not canonicalised, and would be sent too).
		for k := range req.Header {
			if strings.EqualFold(k, e.Header) {
				delete(req.Header, k)
			}
		}
		req.Header.Set(e.Header, e.Prefix+e.Value)
		names = append(names, e.Name)
	}
	return names, nil
}

func swapPlaceholder(req *http.Request, e *entry, ph string) bool {
	if ph == "" {
		return false
	}
	swapped := false
	for _, vs := range req.Header {
		for j, v := range vs {
			if strings.Contains(v, ph) {
				vs[j] = strings.ReplaceAll(v, ph, e.Value)
				swapped = true
			}
		}
	}
	if e.PlaceholderQuery && strings.Contains(req.URL.RawQuery, ph) {
		req.URL.RawQuery = strings.ReplaceAll(req.URL.RawQuery, ph, url.QueryEscape(e.Value))
		swapped = true
	}
	return swapped
}

// RedactJSON redacts a JSON document value by value (see leak.Scanner.RedactJSON):
// the result is valid JSON whenever raw is. Invalid JSON is redacted as text and
// returned with ErrNotJSON.
func (s *Store) RedactJSON(raw []byte) ([]byte, int, error) {
	return s.load().scan.RedactJSON(raw)
}

// Redact returns b with every known value (in every form CheckOutbound knows,
// JSON string escapes included) and every credential-pattern value replaced by
// "[REDACTED]", and the number of replacements. Only the bytes that encode the value
// are replaced; the text around it (a key name, its separator) is kept. b is
// returned unchanged, not copied, when nothing matched.
func (s *Store) Redact(b []byte) ([]byte, int) {
	return s.load().scan.Redact(b)
}

// RedactName is Redact for text whose letter case may have changed, such as a
// header name (an upstream lower-casing a value it puts into a name): plain values
// match in any ASCII case.
func (s *Store) RedactName(b []byte) ([]byte, int) {
	return s.load().scan.RedactName(b)
}

// RedactHeader returns a copy of h, as an upstream sent it, that is safe to hand a
// sandbox: names redacted with RedactName (the brackets dropped, so that the name
// stays a valid header token, canonicalised: "X-Redacted"), values with Redact. Values of names
// that become equal are kept, in order. h is not modified.
func (s *Store) RedactHeader(h http.Header) (http.Header, int) {
	scan := s.load().scan
	out := make(http.Header, len(h))
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	total := 0
	for _, k := range keys {
		name := k
		if r, n := scan.RedactName([]byte(k)); n > 0 {
			name = http.CanonicalHeaderKey(strings.NewReplacer("[", "", "]", "").Replace(string(r)))
			total += n
		}
		for _, v := range h[k] {
			if r, n := scan.Redact([]byte(v)); n > 0 {
				v = string(r)
				total += n
			}
			out[name] = append(out[name], v)
		}
	}
	return out, total
}

// RedactBody redacts a response body for a sandbox: a JSON body (contentType
// application/json or */*+json) with RedactJSON, so it stays valid JSON, anything
// else (and JSON that does not parse) with Redact.
func (s *Store) RedactBody(contentType string, body []byte) ([]byte, int) {
	if isJSONType(contentType) {
		out, n, _ := s.load().scan.RedactJSON(body)
		return out, n
	}
	return s.Redact(body)
}

func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// NewRedactWriter returns a streaming redactor into w (leak.Writer): what is written
// comes out as Redact would give the whole stream, a secret split across writes
// included. Close it to flush the held tail. It uses the credential set current at
// the call.
func (s *Store) NewRedactWriter(w io.Writer) *leak.Writer {
	return s.load().scan.NewWriter(w)
}

// Placeholders returns, for each granted credential in placeholder mode, the
// environment variable to give a sandbox: its name mapped to its placeholder. The
// placeholder is stable for the life of the value and the master key.
func (s *Store) Placeholders(grants []string) map[string]string {
	snap := s.load()
	out := map[string]string{}
	for _, g := range grants {
		if i, ok := snap.byName[g]; ok && snap.entries[i].Placeholder {
			out[g] = snap.placeholders[i]
		}
	}
	return out
}

// RedactStream is NewRedactWriter as an io.WriteCloser (for the egress gateway's
// streaming doors); Close flushes the held tail and does not close w.
func (s *Store) RedactStream(w io.Writer) io.WriteCloser {
	return s.NewRedactWriter(w)
}

// StreamCarry is how many bytes a streaming outbound check keeps from one window
// of a body into the next (leak.Scanner.Carry for the current credential set): a
// checker that scans each window with CheckBody and releases all but its last
// StreamCarry bytes has scanned whole every value that reaches a released byte.
func (s *Store) StreamCarry() int {
	return s.load().scan.Carry()
}
