package egress

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzPolicy checks properties of the rule parser and matcher that must hold for any
// input: no panic, canonical forms that reparse to themselves, deny rules that win,
// narrowing that never widens, and the same answer for a URL before and after the
// gateway normalises it.
func FuzzPolicy(f *testing.F) {
	f.Add("api.github.com", "*.github.com", "GET", "https://api.github.com/repos/x")
	f.Add("GET,HEAD https://api.github.com/repos/", "!https://api.github.com/repos/secret", "HEAD", "https://API.github.com./repos/%2e%2e/secret")
	f.Add("*", "!*.internal", "POST", "http://db.internal:8080/")
	f.Add("[::1]:8080", "127.0.0.1", "GET", "http://[::ffff:127.0.0.1]:8080/")
	f.Add("bücher.example", "https://*:8443/a", "PUT", "https://xn--bcher-kva.example:8443/a/b")
	f.Add("https://pin.example.com passthrough", "GET https://chat.example.com/ws websocket", "GET", "https://chat.example.com/ws/1")
	f.Fuzz(func(t *testing.T, rule1, rule2, method, rawURL string) {
		p, err := ParsePolicy([]string{rule1, rule2})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, s := range []string{rule1, rule2} {
			r, err := ParseRule(s)
			if err != nil {
				t.Fatalf("ParseRule(%q) failed after ParsePolicy succeeded: %v", s, err)
			}
			c := r.String()
			r2, err := ParseRule(c)
			if err != nil {
				t.Fatalf("canonical %q of %q does not parse: %v", c, s, err)
			}
			if r2.String() != c {
				t.Fatalf("canonical form of %q unstable: %q -> %q", s, c, r2.String())
			}
		}
		u, err := url.Parse(rawURL)
		if err != nil {
			return
		}
		d := p.Decide(method, u)
		if d.Allowed && (d.Rule == "" || !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https")) {
			t.Fatalf("allowed without a rule or for scheme %q: %+v", u.Scheme, d)
		}

		// A deny copy of an allow rule wins over it.
		r1, _ := ParseRule(rule1)
		if !r1.Deny() {
			deny := mustPolicy(t, rule1, denyCopy(r1))
			if dd := deny.Decide(method, u); dd.Allowed {
				t.Fatalf("rule %q allowed %q despite its deny copy: %+v", rule1, rawURL, dd)
			}
		}

		// Narrowing never widens.
		p1, p2 := mustPolicy(t, rule1), mustPolicy(t, rule2)
		if n := p1.Narrow(p2).Decide(method, u); n.Allowed {
			if !p1.Decide(method, u).Allowed || !p2.Decide(method, u).Allowed {
				t.Fatalf("narrowed policy allowed %q that one list refuses", rawURL)
			}
		}

		// The URL the gateway sends gets the same answer as the URL the caller gave.
		nu, _, err := parseTarget(method, rawURL)
		if err != nil {
			if d.Allowed {
				t.Fatalf("Decide allowed %q, which the gateway refuses to parse: %v", rawURL, err)
			}
			return
		}
		if d2 := p.Decide(method, nu); d2 != d {
			t.Fatalf("normalised %q decided %+v, original %q decided %+v", nu, d2, rawURL, d)
		}
		if e, err := Explain(p, method, rawURL); err != nil || e != d {
			t.Fatalf("Explain = %+v, %v; Decide = %+v", e, err, d)
		}
	})
}

// FuzzConnect checks the CONNECT target parser and the connect-level decision for
// any input: no panic; a parsed target is canonical (it parses to itself); a tunnel
// allowed by a policy is allowed by every list of it; a pass-through is only ever
// decided by a pass-through rule; a deny copy of the rule wins.
func FuzzConnect(f *testing.F) {
	f.Add("example.com:443", "https://example.com passthrough", "*.example.com")
	f.Add("[::1]:8443", "[::1]:8443", "!https://[::1]:8443/x")
	f.Add("Bücher.example.:443", "*", "!bücher.example")
	f.Add("127.0.0.1:1", "GET https://127.0.0.1:1/a", "127.0.0.1:1")
	f.Fuzz(func(t *testing.T, authority, rule1, rule2 string) {
		host, port, err := parseConnectTarget(authority)
		if err != nil {
			return
		}
		h2, p2, err := parseConnectTarget(strings.TrimPrefix(authority2(host, port), "https://"))
		if err != nil || h2 != host || p2 != port {
			t.Fatalf("canonical %q:%d of %q reparses as %q:%d, %v", host, port, authority, h2, p2, err)
		}
		p, err := ParsePolicy([]string{rule1, rule2})
		if err != nil {
			return
		}
		d := p.DecideConnect(host, port)
		if !d.Allowed && d.Passthrough {
			t.Fatalf("refused pass-through: %+v", d)
		}
		if d.Passthrough {
			r1, _ := ParseRule(rule1)
			r2, _ := ParseRule(rule2)
			if !r1.Passthrough() && !r2.Passthrough() {
				t.Fatalf("pass-through without a pass-through rule: %+v", d)
			}
		}
		if d.Allowed {
			p1, p2 := mustPolicy(t, rule1), mustPolicy(t, rule2)
			if n := p1.Narrow(p2).DecideConnect(host, port); n.Allowed && (!p1.DecideConnect(host, port).Allowed || !p2.DecideConnect(host, port).Allowed) {
				t.Fatal("narrowing widened a tunnel")
			}
			r, _ := ParseRule(d.Rule)
			if !r.passthrough && r.methods == nil && r.path == nil {
				deny := mustPolicy(t, rule1, rule2, denyCopy(r))
				if dd := deny.DecideConnect(host, port); dd.Allowed {
					t.Fatalf("deny copy of %q did not win: %+v", d.Rule, dd)
				}
			}
		}
	})
}

// authority2 is authority with the port always written.
func authority2(host string, port int) string {
	a := authority(host, port)
	if port == 443 {
		a += ":443"
	}
	return a
}

// denyCopy is the deny rule of r's destination (options, which deny rules do not
// take, dropped).
func denyCopy(r Rule) string {
	r.passthrough, r.websocket = false, false
	return "!" + r.String()
}
