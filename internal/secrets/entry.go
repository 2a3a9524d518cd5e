package secrets

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/idna"

	"github.com/clawbox/clawbox/api"
)

// Defaults of an entry.
const (
	DefaultHeader = "Authorization"
	DefaultPrefix = "Bearer "
)

// nameRE is what a credential name may be: the placeholder reaches a sandbox as the
// environment variable of that name.
var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// entry is one stored credential. Its fields are normalised (validate) before it is
// stored, so matching code can compare directly.
type entry struct {
	Name             string    `json:"name"`
	Value            string    `json:"value"`
	Host             string    `json:"host"` // lower case, ASCII (IDNA), no trailing dot; "*.domain" for a wildcard
	Header           string    `json:"header"`
	Prefix           string    `json:"prefix"`
	PathPrefix       string    `json:"path_prefix,omitempty"` // "" or "/..." without a trailing slash
	Methods          []string  `json:"methods,omitempty"`     // upper case, sorted; empty = any
	Port             int       `json:"port,omitempty"`        // 0 = the scheme's default
	AllowHTTP        bool      `json:"allow_http,omitempty"`
	Placeholder      bool      `json:"placeholder,omitempty"`
	PlaceholderQuery bool      `json:"placeholder_query,omitempty"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// String never shows the value.
func (e *entry) String() string { return "credential " + strconv.Quote(e.Name) }

// public returns the entry as the API shows it: without the value.
func (e *entry) public() api.Credential {
	return api.Credential{
		Name:             e.Name,
		Host:             e.Host,
		Header:           e.Header,
		Prefix:           e.Prefix,
		PathPrefix:       e.PathPrefix,
		Methods:          slices.Clone(e.Methods),
		Port:             e.Port,
		AllowHTTP:        e.AllowHTTP,
		Placeholder:      e.Placeholder,
		PlaceholderQuery: e.PlaceholderQuery,
		UpdatedAt:        e.UpdatedAt,
	}
}

// fieldError is a validation failure of one field; its message never holds the value.
type fieldError struct {
	field, msg string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// newEntry builds a normalised, validated entry from an API request.
func newEntry(name string, req api.PutCredentialRequest, now time.Time) (*entry, error) {
	e := &entry{
		Name:             name,
		Value:            req.Value,
		Host:             req.Host,
		Header:           req.Header,
		Prefix:           DefaultPrefix,
		PathPrefix:       req.PathPrefix,
		Methods:          slices.Clone(req.Methods),
		Port:             req.Port,
		AllowHTTP:        req.AllowHTTP,
		Placeholder:      req.Placeholder,
		PlaceholderQuery: req.PlaceholderQuery,
		UpdatedAt:        now.UTC(),
	}
	if req.Prefix != nil {
		e.Prefix = *req.Prefix
	}
	if e.Header == "" {
		e.Header = DefaultHeader
	}
	if err := e.normalize(); err != nil {
		return nil, err
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// normalize puts host, path prefix, header and methods in canonical form.
func (e *entry) normalize() error {
	h, err := normalizeBindingHost(e.Host)
	if err != nil {
		return &fieldError{"host", err.Error()}
	}
	e.Host = h
	e.Header = http.CanonicalHeaderKey(e.Header)
	if e.PathPrefix != "" {
		if !strings.HasPrefix(e.PathPrefix, "/") {
			return &fieldError{"path_prefix", "must start with /"}
		}
		if c := path.Clean(e.PathPrefix); c != strings.TrimSuffix(e.PathPrefix, "/") && c != e.PathPrefix {
			return &fieldError{"path_prefix", "must be a clean path (no . or .. segments, no //)"}
		}
		e.PathPrefix = strings.TrimSuffix(e.PathPrefix, "/")
	}
	for i, m := range e.Methods {
		e.Methods[i] = strings.ToUpper(strings.TrimSpace(m))
	}
	slices.Sort(e.Methods)
	e.Methods = slices.Compact(e.Methods)
	return nil
}

// validate checks a normalised entry (also run on entries read from the file).
func (e *entry) validate() error {
	if !nameRE.MatchString(e.Name) {
		return &fieldError{"name", "must match [A-Za-z_][A-Za-z0-9_]{0,63}"}
	}
	if e.Value == "" {
		return &fieldError{"value", "is required"}
	}
	if strings.ContainsAny(e.Value, "\r\n\x00") {
		return &fieldError{"value", "may not contain CR, LF or NUL"}
	}
	if h, err := normalizeBindingHost(e.Host); err != nil || h != e.Host {
		return &fieldError{"host", "is not normalised"}
	}
	if !httpguts.ValidHeaderFieldName(e.Header) {
		return &fieldError{"header", "is not a valid HTTP header name"}
	}
	switch strings.ToLower(e.Header) {
	case "host", "content-length", "transfer-encoding", "connection", "te", "trailer", "upgrade":
		return &fieldError{"header", "may not be a hop-by-hop or framing header"}
	}
	if !httpguts.ValidHeaderFieldValue(e.Prefix) {
		return &fieldError{"prefix", "is not a valid HTTP header value"}
	}
	if !httpguts.ValidHeaderFieldValue(e.Prefix + e.Value) {
		return &fieldError{"value", "is not a valid HTTP header value (control characters)"}
	}
	if e.PathPrefix != "" && (!strings.HasPrefix(e.PathPrefix, "/") || strings.ContainsAny(e.PathPrefix, "?#")) {
		return &fieldError{"path_prefix", "must be a path starting with /"}
	}
	for _, m := range e.Methods {
		if m == "" || !httpguts.ValidHeaderFieldName(m) {
			return &fieldError{"methods", "holds an invalid method"}
		}
	}
	if e.Port < 0 || e.Port > 65535 {
		return &fieldError{"port", "must be between 1 and 65535"}
	}
	if e.Placeholder && len(e.Value) < MinPlaceholderLen {
		return &fieldError{"placeholder", fmt.Sprintf("needs a value of at least %d characters (a shorter placeholder could not be told apart from ordinary text)", MinPlaceholderLen)}
	}
	if e.PlaceholderQuery && !e.Placeholder {
		return &fieldError{"placeholder_query", "needs placeholder mode"}
	}
	return nil
}

// normalizeBindingHost returns the canonical form of a binding host: an exact name,
// "*.domain", or an IP literal.
func normalizeBindingHost(h string) (string, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", errors.New("is required")
	}
	if strings.ContainsAny(h, "/:@?#[] ") && net.ParseIP(strings.Trim(h, "[]")) == nil {
		return "", errors.New("must be a host name or *.domain, without scheme, port or path")
	}
	if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
		return ip.String(), nil
	}
	wild := strings.HasPrefix(h, "*.")
	if wild {
		h = h[2:]
	}
	n, err := canonicalHost(h)
	if err != nil || n == "" || strings.Contains(n, "*") {
		return "", errors.New("is not a valid host name")
	}
	if wild {
		if !strings.Contains(n, ".") {
			return "", errors.New("a wildcard needs a domain with at least two labels (*.example.com)")
		}
		return "*." + n, nil
	}
	return n, nil
}

// canonicalHost lower-cases a DNS name, drops one trailing dot and converts it to its
// ASCII (IDNA) form.
func canonicalHost(h string) (string, error) {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" {
		return "", errors.New("empty host")
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.String(), nil
	}
	return idna.Lookup.ToASCII(h)
}

// matches reports whether a request with this method to u is inside the entry's
// binding: host (exact or wildcard), port (default the scheme's), path prefix on a
// segment boundary, method, and https unless the binding allows http.
func (e *entry) matches(method string, u *url.URL) bool {
	if u == nil {
		return false
	}
	var defPort int
	switch strings.ToLower(u.Scheme) {
	case "https":
		defPort = 443
	case "http":
		if !e.AllowHTTP {
			return false
		}
		defPort = 80
	default:
		return false
	}
	host, err := canonicalHost(u.Hostname())
	if err != nil || !hostMatches(e.Host, host) {
		return false
	}
	port := defPort
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return false
		}
		port = n
	}
	want := e.Port
	if want == 0 {
		want = defPort
	}
	if port != want {
		return false
	}
	if len(e.Methods) > 0 && !slices.Contains(e.Methods, strings.ToUpper(method)) {
		return false
	}
	if e.PathPrefix != "" && !pathWithin(e.PathPrefix, u) {
		return false
	}
	return true
}

// hostMatches matches a canonical request host against a canonical binding host.
// "*.example.com" matches example.com and every name below it.
func hostMatches(binding, host string) bool {
	if d, ok := strings.CutPrefix(binding, "*."); ok {
		return host == d || strings.HasSuffix(host, "."+d)
	}
	return host == binding
}

// pathWithin reports whether u's path is prefix or below it, on a segment boundary.
// A path that is not clean (dot segments, //) or that hides a slash as %2F never
// matches: the upstream might resolve it to somewhere outside the prefix.
func pathWithin(prefix string, u *url.URL) bool {
	p := u.Path
	if p == "" {
		p = "/"
	}
	if c := path.Clean(p); c != p && c+"/" != p {
		return false
	}
	if raw := u.RawPath; raw != "" && strings.Contains(strings.ToLower(raw), "%2f") {
		return false
	}
	if prefix == "" || prefix == "/" {
		return true
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}
