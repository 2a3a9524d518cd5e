package egress

import (
	"fmt"
	"net/http"
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
	// websocket: every list allowed the request with a rule of option websocket.
	websocket bool
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
	names    []string // rules[i].String(), made once
	warnings []string
}

// ruleName is the canonical form of rule i, as decisions name it.
func (l layer) ruleName(i int) string {
	if i < len(l.names) {
		return l.names[i]
	}
	return l.rules[i].String()
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
		if r.websocket {
			l.warnings = append(l.warnings, fmt.Sprintf("network rule %q allows WebSocket upgrades: frames after the handshake are not scanned or redacted", r.String()))
		}
		if r.passthrough {
			l.warnings = append(l.warnings, fmt.Sprintf("network rule %q passes TLS through uninspected: no credential injection, no leak scan, no redaction, no per-request policy", r.String()))
		}
		l.rules = append(l.rules, r)
		l.names = append(l.names, r.String())
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
	url       string // the normalised URL, as sent (set by parseTarget)
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
	p := u.Port()
	if p == "" {
		return h
	}
	// Most URLs are already in this form: keep u.Host rather than build it again.
	if len(u.Host) == len(h)+1+len(p) && u.Host[:len(h)] == h && u.Host[len(h)] == ':' && p[0] != '0' {
		return u.Host
	}
	return h + ":" + strconv.Itoa(t.port)
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
	ws := true
	for i, l := range p.layers {
		d := l.decide(t)
		ws = ws && d.websocket
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
	allowed.websocket = ws
	return allowed
}

func (l layer) decide(t target) Decision {
	if len(l.rules) == 0 {
		return Decision{Reason: "empty allowlist: no network"}
	}
	for i, r := range l.rules {
		if r.deny && r.matches(t) {
			return Decision{Rule: l.ruleName(i), Reason: "denied by rule"}
		}
	}
	for i, r := range l.rules {
		if !r.deny && r.matches(t) {
			return Decision{Allowed: true, Rule: l.ruleName(i), Reason: "allowed by rule", websocket: r.websocket}
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
	t.url = u.String()
	return u, t, nil
}

func invalidField(field, msg string) *api.Error {
	return &api.Error{Code: api.CodeInvalidRequest, Message: msg, Details: map[string]any{"field": field}}
}

// ConnectDecision is what a policy says about a CONNECT tunnel to host:port, before
// any TLS: whether any https request through it could be allowed, and whether the
// tunnel is a TLS pass-through.
type ConnectDecision struct {
	Decision
	// Passthrough: the tunnel is spliced to the upstream, not intercepted. It holds
	// only when a pass-through rule of the server's list allows the destination
	// (a request's list may narrow the policy, never open a pass-through), every
	// list allows it with a rule that restricts neither methods nor paths, and no
	// list denies some of its methods or paths (a pass-through cannot enforce them).
	Passthrough bool `json:"passthrough,omitempty"`
}

// DecideConnect says whether a CONNECT to host:port may be opened: it is refused
// when a deny rule without methods or path matches https to host:port, or when some
// list has no rule that could allow https to host:port (whatever method and path).
// Every request inside an intercepted tunnel is still decided on its own.
func (p *Policy) DecideConnect(host string, port int) ConnectDecision {
	t, err := connectTarget(host, port)
	if err != nil {
		return ConnectDecision{Decision: Decision{Reason: "invalid request: " + err.Error()}}
	}
	return p.decideConnect(t)
}

// connectTarget is the target of CONNECT host:port: https, any method, no path.
func connectTarget(host string, port int) (target, error) {
	t := target{method: http.MethodConnect, scheme: "https", port: port}
	if port < 1 || port > 65535 {
		return t, errorString("port must be 1-65535")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return t, errorString("IPv6 zones are not allowed")
		}
		t.addr = a
		return t, nil
	}
	name, err := normalizeName(host)
	if err != nil {
		return t, err
	}
	t.host = name
	return t, nil
}

func (p *Policy) decideConnect(t target) ConnectDecision {
	if p == nil || len(p.layers) == 0 {
		return ConnectDecision{Decision: Decision{Reason: "no network policy: no network"}}
	}
	out := ConnectDecision{Passthrough: true}
	for i, l := range p.layers {
		d, pass, unrestricted, denyInside := l.decideConnect(t)
		if !d.Allowed {
			if l.source == "request" || i > 0 {
				d.Reason = "request allowlist: " + d.Reason
			}
			return ConnectDecision{Decision: d}
		}
		if i == 0 {
			out.Decision = d
			// Only the server's list can open a pass-through: a request's list may
			// narrow the policy, and a pass-through widens it (no scan, no
			// injection, no per-request policy).
			out.Passthrough = pass
		}
		// A pass-through cannot enforce methods or paths: a list that allows the
		// destination only with them, or denies some of its methods or paths,
		// keeps the tunnel intercepted.
		out.Passthrough = out.Passthrough && unrestricted && !denyInside
	}
	return out
}

// decideConnect decides a CONNECT target for one list. pass reports a pass-through
// rule allowing it; unrestricted an allow rule without methods or path; denyInside
// a deny rule with methods or a path for this host and port (enforceable only on
// the requests inside an intercepted tunnel).
func (l layer) decideConnect(t target) (d Decision, pass, unrestricted, denyInside bool) {
	if len(l.rules) == 0 {
		return Decision{Reason: "empty allowlist: no network"}, false, false, false
	}
	for _, r := range l.rules {
		if !r.deny || !r.matchesHostPort(t) {
			continue
		}
		if r.methods == nil && r.path == nil {
			return Decision{Rule: r.String(), Reason: "denied by rule"}, false, false, false
		}
		denyInside = true
	}
	for _, r := range l.rules {
		if r.deny || !r.matchesHostPort(t) {
			continue
		}
		if !d.Allowed || r.passthrough && !pass {
			d = Decision{Allowed: true, Rule: r.String(), Reason: "allowed by rule"}
		}
		pass = pass || r.passthrough
		unrestricted = unrestricted || r.methods == nil && r.path == nil
	}
	if !d.Allowed {
		return Decision{Reason: "no rule allows https to this host and port"}, false, false, false
	}
	return d, pass, unrestricted, denyInside
}

// matchesHostPort reports whether r matches t's scheme, host and port, whatever
// t's method and path.
func (r Rule) matchesHostPort(t target) bool {
	r.methods, r.path = nil, nil
	t.segs, t.ambiguous = nil, false
	return r.matches(t)
}

// DoorDecision is what a policy says about a request through one door.
type DoorDecision struct {
	Decision
	Door string `json:"door"`
	// Tunnel is set for door "connect" when the tunnel opens: "intercept" or
	// "passthrough" (api.TunnelIntercept, api.TunnelPassthrough).
	Tunnel string `json:"tunnel,omitempty"`
}

// ExplainDoor is Explain for a request through door ("" means "proxy"). For
// "connect" the tunnel to the URL's host and port is decided first, as the door
// does before any TLS: refused, the answer is the tunnel's; passed through, the
// request itself is not decided (nothing inside is seen); intercepted, the answer
// is the request's. An unknown door is an invalid_request error on field "door".
func ExplainDoor(p *Policy, door, method, rawURL string) (DoorDecision, error) {
	switch door {
	case "", DoorProxy:
		d, err := Explain(p, method, rawURL)
		return DoorDecision{Decision: d, Door: DoorProxy}, err
	case DoorForward:
		d, err := Explain(p, method, rawURL)
		return DoorDecision{Decision: d, Door: DoorForward}, err
	case DoorConnect:
	default:
		return DoorDecision{}, invalidField("door", `door must be "proxy", "forward" or "connect"`)
	}
	_, t, err := parseTarget(method, rawURL)
	if err != nil {
		return DoorDecision{}, err
	}
	out := DoorDecision{Door: DoorConnect}
	if t.scheme != "https" {
		out.Reason = "CONNECT tunnels carry https only"
		return out, nil
	}
	ct := target{method: http.MethodConnect, scheme: "https", host: t.host, addr: t.addr, port: t.port}
	cd := p.decideConnect(ct)
	if !cd.Allowed {
		out.Decision = cd.Decision
		return out, nil
	}
	if cd.Passthrough {
		out.Decision, out.Tunnel = cd.Decision, api.TunnelPassthrough
		out.Reason = "the tunnel is passed through uninspected: " + cd.Reason
		return out, nil
	}
	out.Decision, out.Tunnel = p.decide(t), api.TunnelIntercept
	return out, nil
}
