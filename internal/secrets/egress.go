package secrets

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/secrets/leak"
)

// CheckOutbound scans what a sandbox supplied (URL, header names and values, body)
// before anything is sent. It returns an *api.Error with code leak_detected when the
// content holds a known value in any form (plain, percent-encoded up to 10 rounds,
// base64 standard or URL-safe at any alignment, hex), matches a credential pattern, or
// holds the placeholder of a credential that is not granted or whose binding does not
// match this destination. The message names the credential or the pattern and where
// it was found, never the value, and never a caller-supplied header name.
func (s *Store) CheckOutbound(grants []string, method string, u *url.URL, header http.Header, body []byte) error {
	snap := s.load()
	if method == "" {
		method = http.MethodGet
	}
	allow := func(owner int) bool {
		e := snap.entries[owner]
		return e.Placeholder && slices.Contains(grants, e.Name) && e.matches(method, u)
	}
	check := func(where string, b []byte) error {
		f, ok := snap.scan.Check(b, allow)
		if !ok && where == "the body" {
			f, ok = snap.scan.CheckJSONStrings(b, allow)
		}
		if !ok {
			return nil
		}
		return leakError(snap, f, where)
	}
	if u != nil {
		if err := check("the URL", []byte(u.String())); err != nil {
			return err
		}
	}
	keys := make([]string, 0, len(header))
	for k := range header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := check("a header name", []byte(k)); err != nil {
			return err
		}
		for _, v := range header[k] {
			if err := check("a header value", []byte(v)); err != nil {
				return err
			}
		}
	}
	return check("the body", body)
}

func leakError(snap *snapshot, f leak.Finding, where string) error {
	enc := ""
	if f.Round > 0 {
		enc = ", percent-encoded"
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

// Redact returns b with every known value (in every form CheckOutbound knows) and
// every credential-pattern match replaced by "[REDACTED]", and the number of
// replacements. b is returned unchanged, not copied, when nothing matched.
func (s *Store) Redact(b []byte) ([]byte, int) {
	return s.load().scan.Redact(b)
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
