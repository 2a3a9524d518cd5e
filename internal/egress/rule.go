package egress

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/clawbox/clawbox/api"
)

// Rule is one parsed network rule, a string of an allowlist:
//
//	api.github.com                         the exact host, http or https, default port
//	api.github.com:8443                    the exact host on that port, http or https
//	*.github.com                           github.com and every subdomain
//	*                                      every host and port (a warning is reported)
//	GET,HEAD https://api.github.com/repos/ methods, scheme, host, port, path prefix
//	!*.internal.example.com                a deny rule: it wins over every allow rule
//	https://pinned.example.com passthrough a CONNECT to it is spliced, not intercepted
//	https://chat.example.com/ws websocket  a WebSocket upgrade to it is allowed
//
// The extended form is `[METHODS ]scheme://host[:port][/path-prefix]`. Hosts are
// normalised (lower case, IDNA to ASCII, trailing dot removed); a port that is not
// written is the scheme's default (80 for http, 443 for https), so a rule never opens
// another port by accident; a deny rule without a port denies every port.
// The option "passthrough" after an https host[:port] allow rule (no methods, no
// path) makes a CONNECT tunnel to that destination a TLS pass-through: spliced to
// the upstream with no interception, so no credential injection, no body scan and
// no per-request policy (a warning is reported at load). The option "websocket"
// after any allow rule lets a WebSocket upgrade that the rule allows go through:
// the handshake is decided, scanned and injected like any request, the frames
// after it are spliced unscanned (a warning is reported at load). A path prefix matches on whole segments: `/repos` matches
// `/repos` and `/repos/x`, never `/reposx`; a path that servers may read in several
// ways (dot segments, empty segments, encoded slashes, backslashes, ';') matches no
// allow rule with a path prefix and every deny rule for its destination. An empty
// list allows nothing.
type Rule struct {
	deny    bool
	methods []string // upper case; nil means any method
	scheme  string   // "http" or "https"; "" means either
	anyHost bool     // "*"
	suffix  bool     // "*.domain": host is the domain, which also matches itself
	host    string   // normalised name or domain; "" when addr is set or anyHost
	addr    netip.Addr
	port    int      // 0 means the default port of the request's scheme, anyPort any port
	path    []string // path-prefix segments; nil means any path
	// passthrough: CONNECT tunnels to the destination are spliced, not intercepted.
	passthrough bool
	// websocket: a WebSocket upgrade the rule allows may go through.
	websocket bool
}

// optWebSocket is the rule option that allows WebSocket upgrades.
const optWebSocket = "websocket"

// WebSocket reports whether r allows WebSocket upgrades.
func (r Rule) WebSocket() bool { return r.websocket }

// optPassthrough is the rule option of a TLS pass-through rule.
const optPassthrough = "passthrough"

// Passthrough reports whether r is a TLS pass-through rule.
func (r Rule) Passthrough() bool { return r.passthrough }

// anyPort is the port of the bare rule "*": every destination, whatever its port.
const anyPort = -1

// Deny reports whether r is a deny rule (written with a leading "!").
func (r Rule) Deny() bool { return r.deny }

// String returns the canonical form of r; parsing it gives back an equal rule.
func (r Rule) String() string {
	var b strings.Builder
	if r.deny {
		b.WriteByte('!')
	}
	if r.methods != nil {
		b.WriteString(strings.Join(r.methods, ","))
		b.WriteByte(' ')
	}
	extended := r.scheme != ""
	if extended {
		b.WriteString(r.scheme)
		b.WriteString("://")
	}
	host := r.hostString()
	if r.port > 0 && (r.deny || !(extended && r.port == defaultPort(r.scheme))) {
		if r.addr.Is6() {
			host = "[" + host + "]"
		}
		host += ":" + strconv.Itoa(r.port)
	} else if extended && r.addr.Is6() {
		host = "[" + host + "]"
	}
	b.WriteString(host)
	if r.path != nil {
		b.WriteString("/" + strings.Join(r.path, "/"))
	}
	if r.passthrough {
		b.WriteString(" " + optPassthrough)
	}
	if r.websocket {
		b.WriteString(" " + optWebSocket)
	}
	return b.String()
}

func (r Rule) hostString() string {
	switch {
	case r.anyHost:
		return "*"
	case r.suffix:
		return "*." + r.host
	case r.addr.IsValid():
		return r.addr.String()
	default:
		return r.host
	}
}

// ParseRule parses one network rule. The error is an *api.Error with code
// invalid_request whose message and details name the rule.
func ParseRule(s string) (Rule, error) {
	r, err := parseRule(s)
	if err != nil {
		return Rule{}, &api.Error{
			Code:    api.CodeInvalidRequest,
			Message: fmt.Sprintf("network rule %q: %s", s, err),
			Details: map[string]any{"rule": s},
		}
	}
	return r, nil
}

func parseRule(s string) (Rule, error) {
	var r Rule
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "!"); ok {
		r.deny = true
		s = strings.TrimSpace(rest)
	}
	if s == "" {
		return r, errorString("empty rule")
	}
	fields := strings.Fields(s)
	if n := len(fields); n >= 2 && strings.EqualFold(fields[n-1], optPassthrough) {
		fields = fields[:n-1]
		r.passthrough = true
		s = strings.Join(fields, " ")
	}
	if n := len(fields); !r.passthrough && n >= 2 && strings.EqualFold(fields[n-1], optWebSocket) {
		if r.deny {
			return r, errorString("a deny rule cannot take the websocket option")
		}
		fields = fields[:n-1]
		r.websocket = true
		s = strings.Join(fields, " ")
	}
	if r.passthrough {
		switch {
		case r.deny:
			return r, errorString("a deny rule cannot be passthrough")
		case len(fields) != 1:
			return r, errorString("a passthrough rule has no methods: write https://host[:port] passthrough")
		}
		out, err := parseExtended(r, fields[0])
		if err != nil {
			return out, err
		}
		switch {
		case out.scheme != "https" || !strings.Contains(fields[0], "://"):
			return out, errorString("a passthrough rule needs the https://host[:port] form")
		case out.path != nil || strings.HasSuffix(fields[0], "/"):
			return out, errorString("a passthrough rule has no path")
		case out.anyHost:
			return out, errorString("a passthrough rule needs a host, not '*'")
		}
		return out, nil
	}
	switch len(fields) {
	case 1:
	case 2:
		ms, err := parseMethods(fields[0])
		if err != nil {
			return r, err
		}
		r.methods = ms
		s = fields[1]
		if !strings.Contains(s, "://") {
			return r, errorString("methods need the scheme://host form")
		}
	default:
		return r, errorString("too many fields: want [METHODS ]scheme://host[:port][/path]")
	}
	if strings.Contains(s, "://") {
		return parseExtended(r, s)
	}
	if strings.ContainsAny(s, "/?#@") {
		return r, errorString("a path needs the scheme://host form")
	}
	host, port := s, ""
	if _, err := netip.ParseAddr(s); err != nil && strings.Contains(s, ":") || strings.HasPrefix(s, "[") {
		h, p, err := splitHostPort(s)
		if err != nil {
			return r, err
		}
		host, port = h, p
	}
	if err := r.setHost(host); err != nil {
		return r, err
	}
	if port != "" {
		n, err := parsePort(port)
		if err != nil {
			return r, err
		}
		r.port = n
	} else if r.anyHost || r.deny {
		r.port = anyPort
	}
	return r, nil
}

func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", errorString("missing ']' in host")
		}
		host, rest := s[1:end], s[end+1:]
		if rest == "" {
			return host, "", nil
		}
		port, ok := strings.CutPrefix(rest, ":")
		if !ok || port == "" {
			return "", "", errorString("bad port")
		}
		return host, port, nil
	}
	host, port, ok := strings.Cut(s, ":")
	if !ok || port == "" || strings.Contains(port, ":") {
		return "", "", errorString("bad port")
	}
	return host, port, nil
}

func parseExtended(r Rule, s string) (Rule, error) {
	u, err := url.Parse(s)
	if err != nil {
		return r, errorString("not a URL")
	}
	r.scheme = strings.ToLower(u.Scheme)
	if r.scheme != "http" && r.scheme != "https" {
		return r, errorString("scheme must be http or https")
	}
	if u.Opaque != "" || u.User != nil {
		return r, errorString("user information is not allowed")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return r, errorString("a query or fragment is not allowed")
	}
	if err := r.setHost(u.Hostname()); err != nil {
		return r, err
	}
	r.port = defaultPort(r.scheme)
	if r.deny {
		r.port = anyPort
	}
	if p := u.Port(); p != "" {
		n, err := parsePort(p)
		if err != nil {
			return r, err
		}
		r.port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return r, errorString("bad port")
	}
	segs, ambiguous := pathSegments(u)
	if ambiguous {
		return r, errorString("path must not contain empty, '.' or '..' segments, ';', backslashes or encoded slashes")
	}
	if len(segs) > 0 {
		r.path = segs
	}
	return r, nil
}

func (r *Rule) setHost(h string) error {
	switch {
	case h == "":
		return errorString("empty host")
	case h == "*":
		r.anyHost = true
		return nil
	case strings.HasPrefix(h, "*."):
		name, err := normalizeName(h[2:])
		if err != nil {
			return err
		}
		r.suffix, r.host = true, name
		return nil
	case strings.Contains(h, "*"):
		return errorString("'*' is only allowed alone or as a leading '*.'")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return errorString("IPv6 zones are not allowed")
		}
		r.addr = a
		return nil
	}
	name, err := normalizeName(h)
	if err != nil {
		return err
	}
	r.host = name
	return nil
}

func parseMethods(s string) ([]string, error) {
	var out []string
	for m := range strings.SplitSeq(s, ",") {
		m = strings.ToUpper(m)
		if !isToken(m) {
			return nil, errorString("bad method list")
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

func parsePort(p string) (int, error) {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || p[0] == '+' {
		return 0, errorString("port must be 1-65535")
	}
	return n, nil
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// isToken reports whether s is a non-empty HTTP token (RFC 9110 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// hostProfile maps a host name for lookup (case folding, width, UTS 46) and converts
// it to ASCII. Underscores are allowed: they occur in real names; labels are checked
// by normalizeName.
var hostProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.StrictDomainName(false))

// normalizeName returns the canonical ASCII form of a DNS name: IDNA, lower case, no
// trailing dot, labels of [a-z0-9_-], and a last label that is not all digits (so that
// forms like "0x7f.1" or "2130706433" are never mistaken for names).
func normalizeName(h string) (string, error) {
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", errorString("empty host")
	}
	if !utf8.ValidString(h) {
		return "", errorString("invalid host name")
	}
	a, err := hostProfile.ToASCII(h)
	if err != nil {
		return "", errorString("invalid host name")
	}
	a = strings.ToLower(a)
	// The result must be a fixed point, or the name checked would not be the name sent.
	if again, err := hostProfile.ToASCII(a); err != nil || again != a {
		return "", errorString("invalid host name")
	}
	if len(a) > 253 {
		return "", errorString("host name too long")
	}
	var last string
	for l := range strings.SplitSeq(a, ".") {
		last = l
		if l == "" || len(l) > 63 {
			return "", errorString("invalid host name")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", errorString("invalid host name")
			}
		}
	}
	if strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") && strings.Trim(last[2:], "0123456789abcdef") == "" {
		return "", errorString("host looks like a non-canonical IP address")
	}
	return a, nil
}

// pathSegments splits u's decoded path into segments, ignoring one leading and one
// trailing slash. ambiguous is true when servers may disagree on what the path is:
// empty, "." or ".." segments, ';', backslashes, or encoded slashes.
func pathSegments(u *url.URL) (segs []string, ambiguous bool) {
	raw := strings.ToLower(u.RawPath)
	if strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		ambiguous = true
	}
	p := u.Path
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return nil, ambiguous || strings.HasPrefix(u.Path, "//")
	}
	segs = strings.Split(p, "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, ";\\") {
			ambiguous = true
		}
	}
	return segs, ambiguous
}

type errorString string

// errInvalidMethod is the one target error about the method rather than the URL.
const errInvalidMethod = errorString("invalid method")

func (e errorString) Error() string { return string(e) }
