package egress

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/clawbox/clawbox/api"
)

// Decision is what a policy says about one request.
type Decision struct {
	Allowed bool   `json:"allowed"`
	Rule    string `json:"rule,omitempty"` // the rule that decided, in canonical form
	Reason  string `json:"reason"`         // safe text; it never repeats the URL
}

// Policy is a compiled allowlist, possibly narrowed by further lists: a request is
// allowed only if every list allows it. The zero value and nil allow nothing.
// A Policy is immutable and safe for concurrent use.
type Policy struct {
	layers []layer
}

type layer struct {
	source   string // "server" or "request", for reasons
	rules    []Rule
	warnings []string
}

// ParsePolicy compiles a list of rules. The error names the first bad rule.
func ParsePolicy(rules []string) (*Policy, error) {
	l, err := compileLayer("", rules)
	if err != nil {
		return nil, err
	}
	return &Policy{layers: []layer{l}}, nil
}

func compileLayer(source string, rules []string) (layer, error) {
	l := layer{source: source, rules: make([]Rule, 0, len(rules))}
	for _, s := range rules {
		r, err := ParseRule(s)
		if err != nil {
			return layer{}, err
		}
		if r.anyHost && !r.deny {
			l.warnings = append(l.warnings, fmt.Sprintf("network rule %q allows every host", r.String()))
		}
		l.rules = append(l.rules, r)
	}
	return l, nil
}

// Effective compiles a sandbox's effective policy: the server's list, narrowed by the
// request's list when one was given. A nil request list means the request did not
// narrow; a non-nil empty one narrows to no network. A request can narrow, never widen.
// Errors name the bad rule and say which list it came from (details "field").
func Effective(server, request []string) (*Policy, error) {
	s, err := compileLayer("server", server)
	if err != nil {
		return nil, withField(err, "server")
	}
	p := &Policy{layers: []layer{s}}
	if request == nil {
		return p, nil
	}
	r, err := compileLayer("request", request)
	if err != nil {
		return nil, withField(err, "network_allowlist")
	}
	p.layers = append(p.layers, r)
	return p, nil
}

func withField(err error, field string) error {
	if e, ok := api.AsError(err); ok {
		if d, ok := e.Details.(map[string]any); ok {
			d["field"] = field
		}
	}
	return err
}

// Narrow returns a policy that allows a request only if both p and q allow it.
func (p *Policy) Narrow(q *Policy) *Policy {
	out := &Policy{}
	if p != nil {
		out.layers = append(out.layers, p.layers...)
	}
	if q != nil {
		for _, l := range q.layers {
			if l.source == "" {
				l.source = "request"
			}
			out.layers = append(out.layers, l)
		}
	}
	return out
}

// Rules returns the canonical form of every rule of every list, in order.
func (p *Policy) Rules() []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, l := range p.layers {
		for _, r := range l.rules {
			out = append(out, r.String())
		}
	}
	return out
}

// Warnings returns what an operator should know about the policy (for example that
// a rule allows every host). The caller logs them when the policy is loaded.
func (p *Policy) Warnings() []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, l := range p.layers {
		out = append(out, l.warnings...)
	}
	return out
}

// target is a request destination in the form rules compare against.
type target struct {
	method    string
	scheme    string
	host      string     // normalised name; "" for an IP literal
	addr      netip.Addr // IP literal host
	port      int
	segs      []string
	ambiguous bool
}

func newTarget(method string, u *url.URL) (target, error) {
	t := target{method: strings.ToUpper(method), scheme: strings.ToLower(u.Scheme)}
	if t.method == "" {
		t.method = "GET"
	}
	if len(t.method) > MaxMethodLen || !isToken(t.method) {
		return t, errInvalidMethod
	}
	if t.scheme != "http" && t.scheme != "https" {
		return t, errorString("only http and https URLs are allowed")
	}
	if u.Opaque != "" {
		return t, errorString("URL must be absolute")
	}
	h := u.Hostname()
	if h == "" {
		return t, errorString("URL has no host")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return t, errorString("IPv6 zones are not allowed")
		}
		t.addr = a
	} else {
		name, err := normalizeName(h)
		if err != nil {
			return t, err
		}
		t.host = name
	}
	t.port = defaultPort(t.scheme)
	if p := u.Port(); p != "" {
		n, err := parsePort(p)
		if err != nil {
			return t, err
		}
		t.port = n
	}
	t.segs, t.ambiguous = pathSegments(u)
	return t, nil
}

// hostport returns the normalised host[:port] to send the request to, keeping an
// explicit port.
func (t target) hostport(u *url.URL) string {
	h := t.host
	if t.addr.IsValid() {
		h = t.addr.String()
		if t.addr.Is6() {
			h = "[" + h + "]"
		}
	}
	if u.Port() != "" {
		h += ":" + strconv.Itoa(t.port)
	}
	return h
}

func (r Rule) matches(t target) bool {
	if r.methods != nil && !slices.Contains(r.methods, t.method) {
		return false
	}
	if r.scheme != "" && r.scheme != t.scheme {
		return false
	}
	switch r.port {
	case anyPort:
	case 0:
		if t.port != defaultPort(t.scheme) {
			return false
		}
	default:
		if t.port != r.port {
			return false
		}
	}
	switch {
	case r.anyHost:
	case r.addr.IsValid():
		if !t.addr.IsValid() || r.addr.Unmap() != t.addr.Unmap() {
			return false
		}
	case t.addr.IsValid():
		return false
	case r.suffix:
		if t.host != r.host && !strings.HasSuffix(t.host, "."+r.host) {
			return false
		}
	default:
		if t.host != r.host {
			return false
		}
	}
	if r.path == nil {
		return true
	}
	if t.ambiguous {
		// Servers may read an ambiguous path as anything: a deny rule for the
		// destination applies, an allow rule for a path prefix does not.
		return r.deny
	}
	return len(t.segs) >= len(r.path) && slices.Equal(t.segs[:len(r.path)], r.path)
}

// Decide says whether the policy allows method on u, and which rule decided.
// The method defaults to GET. URLs that are not http or https are refused.
func (p *Policy) Decide(method string, u *url.URL) Decision {
	t, err := newTarget(method, u)
	if err != nil {
		return Decision{Reason: "invalid request: " + err.Error()}
	}
	return p.decide(t)
}

func (p *Policy) decide(t target) Decision {
	if p == nil || len(p.layers) == 0 {
		return Decision{Reason: "no network policy: no network"}
	}
	var allowed Decision
	for i, l := range p.layers {
		d := l.decide(t)
		if !d.Allowed {
			if l.source == "request" || i > 0 {
				d.Reason = "request allowlist: " + d.Reason
			}
			return d
		}
		if i == 0 {
			allowed = d
		}
	}
	return allowed
}

func (l layer) decide(t target) Decision {
	if len(l.rules) == 0 {
		return Decision{Reason: "empty allowlist: no network"}
	}
	for _, r := range l.rules {
		if r.deny && r.matches(t) {
			return Decision{Rule: r.String(), Reason: "denied by rule"}
		}
	}
	for _, r := range l.rules {
		if !r.deny && r.matches(t) {
			return Decision{Allowed: true, Rule: r.String(), Reason: "allowed by rule"}
		}
	}
	return Decision{Reason: "no rule allows this method, scheme, host, port and path"}
}

// Explain parses rawURL the way the gateway does and says what p would decide for
// it, without sending anything (for POST /policy/check). A URL the gateway would
// refuse as malformed gives an *api.Error with code invalid_request.
func Explain(p *Policy, method, rawURL string) (Decision, error) {
	_, t, err := parseTarget(method, rawURL)
	if err != nil {
		return Decision{}, err
	}
	return p.decide(t), nil
}

// parseTarget parses a caller's URL: absolute, http or https, with a valid host and
// port. It returns the URL to send (host normalised, fragment dropped) and its target.
func parseTarget(method, rawURL string) (*url.URL, target, error) {
	if rawURL == "" {
		return nil, target{}, invalidField("url", "url is required")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, target{}, invalidField("url", "url is not a valid URL")
	}
	t, err := newTarget(method, u)
	if err != nil {
		field := "url"
		if err == errInvalidMethod {
			field = "method"
		}
		return nil, target{}, invalidField(field, field+": "+err.Error())
	}
	u.Scheme = t.scheme
	u.Host = t.hostport(u)
	u.Fragment, u.RawFragment = "", ""
	return u, t, nil
}

func invalidField(field, msg string) *api.Error {
	return &api.Error{Code: api.CodeInvalidRequest, Message: msg, Details: map[string]any{"field": field}}
}
