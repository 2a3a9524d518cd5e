package egress

import (
	"net/url"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", s, err)
	}
	return u
}

func mustPolicy(t testing.TB, rules ...string) *Policy {
	t.Helper()
	p, err := ParsePolicy(rules)
	if err != nil {
		t.Fatalf("ParsePolicy(%q): %v", rules, err)
	}
	return p
}

func TestPolicyDecide(t *testing.T) {
	tests := []struct {
		name   string
		rules  []string
		method string
		url    string
		allow  bool
		rule   string // the rule that decided; "" when none did
	}{
		{"exact host", []string{"api.github.com"}, "GET", "https://api.github.com/user", true, "api.github.com"},
		{"exact host over http", []string{"api.github.com"}, "GET", "http://api.github.com/", true, "api.github.com"},
		{"exact host is not a subdomain", []string{"api.github.com"}, "GET", "https://x.api.github.com/", false, ""},
		{"exact host is not the parent", []string{"api.github.com"}, "GET", "https://github.com/", false, ""},
		{"rule is lower-cased", []string{"API.GitHub.COM"}, "GET", "https://api.github.com/", true, "api.github.com"},
		{"URL host is lower-cased", []string{"api.github.com"}, "GET", "https://API.GITHUB.com/", true, "api.github.com"},
		{"trailing dot in URL", []string{"api.github.com"}, "GET", "https://api.github.com./", true, "api.github.com"},
		{"trailing dot in rule", []string{"api.github.com."}, "GET", "https://api.github.com/", true, "api.github.com"},
		{"wildcard matches apex", []string{"*.github.com"}, "GET", "https://github.com/", true, "*.github.com"},
		{"wildcard matches subdomain", []string{"*.github.com"}, "GET", "https://api.github.com/", true, "*.github.com"},
		{"wildcard matches deep subdomain", []string{"*.github.com"}, "GET", "https://a.b.github.com/", true, "*.github.com"},
		{"wildcard is on a label boundary", []string{"*.github.com"}, "GET", "https://evilgithub.com/", false, ""},
		{"wildcard is not a prefix match", []string{"*.github.com"}, "GET", "https://github.com.evil.com/", false, ""},
		{"other domain", []string{"*.github.com"}, "GET", "https://raw.githubusercontent.com/", false, ""},
		{"default port only", []string{"api.github.com"}, "GET", "https://api.github.com:8443/", false, ""},
		{"explicit default port", []string{"api.github.com"}, "GET", "https://api.github.com:443/", true, "api.github.com"},
		{"http on the https port", []string{"api.github.com"}, "GET", "http://api.github.com:443/", false, ""},
		{"rule with port", []string{"api.github.com:8443"}, "GET", "https://api.github.com:8443/", true, "api.github.com:8443"},
		{"rule with port refuses default", []string{"api.github.com:8443"}, "GET", "https://api.github.com/", false, ""},
		{"star allows anything", []string{"*"}, "DELETE", "http://anything.example:8080/x", true, "*"},
		{"star allows IP literals", []string{"*"}, "GET", "http://127.0.0.1/", true, "*"},
		{"extended form", []string{"GET,HEAD https://api.github.com/repos/"}, "GET", "https://api.github.com/repos/x/y", true, "GET,HEAD https://api.github.com/repos"},
		{"extended HEAD", []string{"GET,HEAD https://api.github.com/repos/"}, "HEAD", "https://api.github.com/repos/x", true, "GET,HEAD https://api.github.com/repos"},
		{"extended lower-case method", []string{"GET,HEAD https://api.github.com/repos/"}, "get", "https://api.github.com/repos/x", true, "GET,HEAD https://api.github.com/repos"},
		{"extended wrong method", []string{"GET,HEAD https://api.github.com/repos/"}, "POST", "https://api.github.com/repos/x", false, ""},
		{"extended default method is GET", []string{"GET https://api.github.com/"}, "", "https://api.github.com/", true, "GET https://api.github.com"},
		{"extended wrong scheme", []string{"https://api.github.com"}, "GET", "http://api.github.com/", false, ""},
		{"extended path prefix itself", []string{"https://api.github.com/repos/"}, "GET", "https://api.github.com/repos", true, "https://api.github.com/repos"},
		{"extended path on segment boundary", []string{"https://api.github.com/repos"}, "GET", "https://api.github.com/reposx", false, ""},
		{"extended other path", []string{"https://api.github.com/repos"}, "GET", "https://api.github.com/user", false, ""},
		{"extended root path", []string{"https://api.github.com/"}, "GET", "https://api.github.com/anything", true, "https://api.github.com"},
		{"extended encoded path matches decoded", []string{"https://api.github.com/repos"}, "GET", "https://api.github.com/%72epos/x", true, "https://api.github.com/repos"},
		{"extended dot-dot escapes prefix", []string{"https://api.github.com/repos"}, "GET", "https://api.github.com/repos/../admin", false, ""},
		{"extended encoded dot-dot", []string{"https://api.github.com/repos"}, "GET", "https://api.github.com/repos/%2e%2e/admin", false, ""},
		{"extended encoded slash", []string{"https://api.github.com/repos"}, "GET", "https://api.github.com/repos%2fx", false, ""},
		{"extended double slash", []string{"https://api.github.com/repos"}, "GET", "https://api.github.com/repos//x", false, ""},
		{"extended backslash", []string{"https://api.github.com/repos"}, "GET", `https://api.github.com/repos/a%5c..%5cadmin`, false, ""},
		{"extended port", []string{"http://localhost:8080"}, "GET", "http://localhost:8080/", true, "http://localhost:8080"},
		{"extended port mismatch", []string{"http://localhost:8080"}, "GET", "http://localhost/", false, ""},
		{"extended wildcard host", []string{"https://*.github.com/api"}, "GET", "https://x.github.com/api/v3", true, "https://*.github.com/api"},
		{"extended any host", []string{"https://*"}, "GET", "https://example.org/", true, "https://*"},
		{"extended any host keeps the port", []string{"https://*"}, "GET", "https://example.org:8443/", false, ""},
		{"deny wins", []string{"*.github.com", "!gist.github.com"}, "GET", "https://gist.github.com/", false, "!gist.github.com"},
		{"deny wins whatever the order", []string{"!gist.github.com", "*.github.com"}, "GET", "https://gist.github.com/", false, "!gist.github.com"},
		{"deny leaves the rest", []string{"*.github.com", "!gist.github.com"}, "GET", "https://api.github.com/", true, "*.github.com"},
		{"deny wildcard", []string{"*", "!*.internal"}, "GET", "https://db.internal/", false, "!*.internal"},
		{"deny path", []string{"api.example.com", "!https://api.example.com/admin"}, "GET", "https://api.example.com/admin/x", false, "!https://api.example.com/admin"},
		{"deny path leaves other paths", []string{"api.example.com", "!https://api.example.com/admin"}, "GET", "https://api.example.com/public", true, "api.example.com"},
		{"deny path on ambiguous path", []string{"api.example.com", "!https://api.example.com/admin"}, "GET", "https://api.example.com/x/../admin", false, "!https://api.example.com/admin"},
		{"deny path on double slash", []string{"api.example.com", "!https://api.example.com/admin"}, "GET", "https://api.example.com//admin", false, "!https://api.example.com/admin"},
		{"deny without port covers every port", []string{"*", "!evil.example"}, "GET", "https://evil.example:8443/", false, "!evil.example"},
		{"extended deny without port covers every port", []string{"*", "!https://evil.example"}, "GET", "https://evil.example:8443/", false, "!https://evil.example"},
		{"deny with port covers that port", []string{"*", "!evil.example:8443"}, "GET", "https://evil.example:8443/", false, "!evil.example:8443"},
		{"deny with port leaves other ports", []string{"*", "!evil.example:8443"}, "GET", "https://evil.example/", true, "*"},
		{"deny with default port leaves other ports", []string{"*", "!https://evil.example:443"}, "GET", "https://evil.example:8443/", true, "*"},
		{"deny method", []string{"api.example.com", "!POST,PUT https://api.example.com"}, "POST", "https://api.example.com/", false, "!POST,PUT https://api.example.com"},
		{"deny method leaves GET", []string{"api.example.com", "!POST,PUT https://api.example.com"}, "GET", "https://api.example.com/", true, "api.example.com"},
		{"IPv4 literal", []string{"127.0.0.1"}, "GET", "http://127.0.0.1/", true, "127.0.0.1"},
		{"IPv4-mapped literal is the same host", []string{"127.0.0.1"}, "GET", "http://[::ffff:127.0.0.1]/", true, "127.0.0.1"},
		{"IPv6 literal with port", []string{"[::1]:8080"}, "GET", "http://[::1]:8080/", true, "[::1]:8080"},
		{"IPv6 literal without brackets", []string{"::1"}, "GET", "http://[::1]/", true, "::1"},
		{"wildcard never matches IP literals", []string{"*.example.com"}, "GET", "http://127.0.0.1/", false, ""},
		{"name rule never matches IP literals", []string{"localhost"}, "GET", "http://127.0.0.1/", false, ""},
		{"IDNA rule", []string{"bücher.example"}, "GET", "https://xn--bcher-kva.example/", true, "xn--bcher-kva.example"},
		{"IDNA URL", []string{"xn--bcher-kva.example"}, "GET", "https://BÜCHER.example/", true, "xn--bcher-kva.example"},
		{"underscore host", []string{"my_service.example"}, "GET", "https://my_service.example/", true, "my_service.example"},
		{"ftp is refused", []string{"*"}, "GET", "ftp://example.com/", false, ""},
		{"file is refused", []string{"*"}, "GET", "file:///etc/passwd", false, ""},
		{"numeric host is refused", []string{"*"}, "GET", "http://2130706433/", false, ""},
		{"hex host is refused", []string{"*"}, "GET", "http://0x7f000001/", false, ""},
		{"empty list allows nothing", []string{}, "GET", "https://api.github.com/", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPolicy(t, tt.rules...)
			d := p.Decide(tt.method, mustURL(t, tt.url))
			if d.Allowed != tt.allow || d.Rule != tt.rule {
				t.Fatalf("Decide(%s %s) = %+v, want allowed=%v rule=%q", tt.method, tt.url, d, tt.allow, tt.rule)
			}
			if d.Reason == "" {
				t.Fatalf("Decide gave no reason: %+v", d)
			}
			if strings.Contains(d.Reason, "://") {
				t.Fatalf("reason %q repeats the URL", d.Reason)
			}
		})
	}
}

func TestPolicyNilAllowsNothing(t *testing.T) {
	var p *Policy
	if d := p.Decide("GET", mustURL(t, "https://example.com/")); d.Allowed {
		t.Fatalf("nil policy allowed a request: %+v", d)
	}
	if d := (&Policy{}).Decide("GET", mustURL(t, "https://example.com/")); d.Allowed {
		t.Fatalf("zero policy allowed a request: %+v", d)
	}
}

func TestParseRuleErrors(t *testing.T) {
	tests := []struct {
		name string
		rule string
	}{
		{"empty", ""},
		{"only bang", "!"},
		{"blank", "   "},
		{"path without scheme", "api.github.com/repos"},
		{"methods without scheme", "GET api.github.com"},
		{"bad method", "G@T https://api.github.com"},
		{"empty method", "GET,,HEAD https://api.github.com"},
		{"too many fields", "GET https://a.com extra"},
		{"ftp scheme", "ftp://files.example.com"},
		{"user info", "https://user:pw@api.github.com"},
		{"query", "https://api.github.com/?x=1"},
		{"fragment", "https://api.github.com/#top"},
		{"port zero", "https://api.github.com:0"},
		{"port too big", "api.github.com:99999"},
		{"empty port", "api.github.com:"},
		{"star in the middle", "api.*.com"},
		{"double star", "**.github.com"},
		{"star dot nothing", "*."},
		{"dot-dot path", "https://api.github.com/a/../b"},
		{"empty label", "api..github.com"},
		{"numeric last label", "127.1"},
		{"decimal IP form", "2130706433"},
		{"hex IP form", "0x7f.0x1"},
		{"wildcard over IP", "*.0.0.1"},
		{"unclosed bracket", "[::1"},
		{"zone", "fe80::1%eth0"},
		{"bad character", "api$.github.com"},
		{"label too long", strings.Repeat("a", 64) + ".com"},
		{"no host", "https://"},
		{"host with space in extended", "GET https:// api.github.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRule(tt.rule)
			if err == nil {
				t.Fatalf("ParseRule(%q) succeeded", tt.rule)
			}
			e, ok := api.AsError(err)
			if !ok || e.Code != api.CodeInvalidRequest {
				t.Fatalf("ParseRule(%q) error = %v, want an invalid_request *api.Error", tt.rule, err)
			}
			if !strings.Contains(e.Message, "network rule ") {
				t.Fatalf("error %q does not name the rule", e.Message)
			}
			if d, _ := e.Details.(map[string]any); d["rule"] != tt.rule {
				t.Fatalf("details = %v, want the rule %q", e.Details, tt.rule)
			}
		})
	}
}

func TestParsePolicyNamesBadRule(t *testing.T) {
	_, err := ParsePolicy([]string{"api.github.com", "ftp://bad.example", "x.com"})
	if err == nil || !strings.Contains(err.Error(), `"ftp://bad.example"`) {
		t.Fatalf("ParsePolicy error = %v, want it to name the bad rule", err)
	}
}

func TestRuleStringRoundTrip(t *testing.T) {
	for _, s := range []string{
		"api.github.com", "API.github.com.", "*.github.com", "*", "!*", "api.github.com:8443",
		"GET,HEAD https://api.github.com/repos/", "get,get http://x.com:80/a/b", "https://[::1]:8443/x",
		"https://[2001:db8::1]", "[::1]:80", "::1", "10.0.0.1:8080", "! https://*.example.com/admin",
		"bücher.example", "https://*", "POST https://*:8443", "!https://x.com:443", "!https://x.com", "!x.com:80",
	} {
		r, err := ParseRule(s)
		if err != nil {
			t.Fatalf("ParseRule(%q): %v", s, err)
		}
		c := r.String()
		r2, err := ParseRule(c)
		if err != nil {
			t.Fatalf("ParseRule(canonical %q of %q): %v", c, s, err)
		}
		if r2.String() != c {
			t.Fatalf("canonical form of %q is not stable: %q then %q", s, c, r2.String())
		}
	}
}

func TestPolicyWarnings(t *testing.T) {
	if w := mustPolicy(t, "api.github.com", "!*").Warnings(); len(w) != 0 {
		t.Fatalf("warnings = %q, want none", w)
	}
	w := mustPolicy(t, "api.github.com", "*").Warnings()
	if len(w) != 1 || !strings.Contains(w[0], `"*"`) {
		t.Fatalf("warnings = %q, want one about \"*\"", w)
	}
}

func TestEffectiveNarrows(t *testing.T) {
	tests := []struct {
		name    string
		server  []string
		request []string
		url     string
		allow   bool
		reason  string // substring
	}{
		{"no request list", []string{"*.github.com"}, nil, "https://gist.github.com/", true, "allowed"},
		{"request narrows", []string{"*.github.com"}, []string{"api.github.com"}, "https://api.github.com/", true, "allowed"},
		{"request narrows out", []string{"*.github.com"}, []string{"api.github.com"}, "https://gist.github.com/", false, "request allowlist"},
		{"request cannot widen", []string{"api.github.com"}, []string{"*"}, "https://gist.github.com/", false, "no rule"},
		{"request star keeps server list", []string{"api.github.com"}, []string{"*"}, "https://api.github.com/", true, "allowed"},
		{"empty request list is no network", []string{"*"}, []string{}, "https://api.github.com/", false, "empty allowlist"},
		{"request deny", []string{"*.github.com"}, []string{"*", "!gist.github.com"}, "https://gist.github.com/", false, "request allowlist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Effective(tt.server, tt.request)
			if err != nil {
				t.Fatal(err)
			}
			d := p.Decide("GET", mustURL(t, tt.url))
			if d.Allowed != tt.allow || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("Decide = %+v, want allowed=%v reason ~%q", d, tt.allow, tt.reason)
			}
			// Narrow gives the same answers as Effective.
			q := mustPolicy(t, tt.server...)
			if tt.request != nil {
				q = q.Narrow(mustPolicy(t, tt.request...))
			}
			if d2 := q.Decide("GET", mustURL(t, tt.url)); d2.Allowed != d.Allowed || d2.Rule != d.Rule {
				t.Fatalf("Narrow decided %+v, Effective %+v", d2, d)
			}
		})
	}
}

func TestEffectiveErrorsNameTheList(t *testing.T) {
	tests := []struct {
		name            string
		server, request []string
		field           string
	}{
		{"bad server rule", []string{"ftp://x.com"}, nil, "server"},
		{"bad request rule", []string{"*"}, []string{"a.com/path"}, "network_allowlist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Effective(tt.server, tt.request)
			e, ok := api.AsError(err)
			if !ok || e.Code != api.CodeInvalidRequest {
				t.Fatalf("Effective error = %v, want invalid_request", err)
			}
			if d, _ := e.Details.(map[string]any); d["field"] != tt.field {
				t.Fatalf("details = %v, want field %q", e.Details, tt.field)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	p := mustPolicy(t, "GET https://api.github.com/repos", "!https://api.github.com/repos/secret")
	tests := []struct {
		name, method, url string
		allow             bool
		rule              string
		errCode           string
	}{
		{"allowed", "GET", "https://api.github.com/repos/a", true, "GET https://api.github.com/repos", ""},
		{"denied by rule", "GET", "https://api.github.com/repos/secret/x", false, "!https://api.github.com/repos/secret", ""},
		{"no rule", "POST", "https://api.github.com/repos/a", false, "", ""},
		{"empty url", "GET", "", false, "", api.CodeInvalidRequest},
		{"not http", "GET", "gopher://api.github.com/", false, "", api.CodeInvalidRequest},
		{"relative", "GET", "/repos/a", false, "", api.CodeInvalidRequest},
		{"bad method", "GE T", "https://api.github.com/", false, "", api.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Explain(p, tt.method, tt.url)
			if tt.errCode != "" {
				if e, ok := api.AsError(err); !ok || e.Code != tt.errCode {
					t.Fatalf("Explain error = %v, want code %s", err, tt.errCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tt.allow || d.Rule != tt.rule {
				t.Fatalf("Explain = %+v, want allowed=%v rule=%q", d, tt.allow, tt.rule)
			}
		})
	}
}
