package egress

import (
	"strconv"
	"strings"
	"testing"
)

func TestPassthroughRuleParse(t *testing.T) {
	good := map[string]string{
		"https://pinned.example.com passthrough":      "https://pinned.example.com passthrough",
		"HTTPS://Pinned.Example.com:443 PASSTHROUGH":  "https://pinned.example.com passthrough",
		"https://pinned.example.com:8443 passthrough": "https://pinned.example.com:8443 passthrough",
		"https://*.pinned.example.com passthrough":    "https://*.pinned.example.com passthrough",
		"https://[::1]:9443 passthrough":              "https://[::1]:9443 passthrough",
	}
	for in, want := range good {
		r, err := ParseRule(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if !r.Passthrough() || r.String() != want {
			t.Fatalf("%q: passthrough %v, canonical %q, want %q", in, r.Passthrough(), r.String(), want)
		}
		if r2, err := ParseRule(r.String()); err != nil || r2.String() != want {
			t.Fatalf("%q does not round-trip: %v", want, err)
		}
	}
	for _, bad := range []string{
		"pinned.example.com passthrough",           // not the https://host form
		"http://pinned.example.com passthrough",    // not https
		"https://pinned.example.com/a passthrough", // a path
		"https://pinned.example.com/ passthrough",
		"GET https://pinned.example.com passthrough", // methods
		"!https://pinned.example.com passthrough",    // deny
		"https://* passthrough",
		"https://pinned.example.com passthrough passthrough",
		"https://pinned.example.com passthrough websocket",
		"!https://chat.example.com websocket",
	} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	for in, want := range map[string]string{
		"chat.example.com websocket":                "chat.example.com websocket",
		"GET HTTPS://chat.example.com/ws WebSocket": "GET https://chat.example.com/ws websocket",
	} {
		r, err := ParseRule(in)
		if err != nil || !r.WebSocket() || r.String() != want {
			t.Fatalf("%q: %v %q", in, err, r.String())
		}
	}
	if w := mustPolicy(t, "chat.example.com websocket").Warnings(); len(w) != 1 || !strings.Contains(w[0], "WebSocket") {
		t.Fatalf("warnings %q", w)
	}
	p := mustPolicy(t, "https://pinned.example.com passthrough")
	if w := p.Warnings(); len(w) != 1 || !strings.Contains(w[0], "uninspected") {
		t.Fatalf("warnings %q", w)
	}
}

func TestDecideConnect(t *testing.T) {
	tests := []struct {
		name    string
		rules   []string
		narrow  []string
		host    string
		port    int
		allowed bool
		pass    bool
	}{
		{"host rule", []string{"api.example.com"}, nil, "api.example.com", 443, true, false},
		{"host rule other port", []string{"api.example.com"}, nil, "api.example.com", 8443, false, false},
		{"explicit port", []string{"api.example.com:8443"}, nil, "api.example.com", 8443, true, false},
		{"http only", []string{"http://api.example.com"}, nil, "api.example.com", 443, false, false},
		{"http only on 443", []string{"http://api.example.com:443"}, nil, "api.example.com", 443, false, false},
		{"methods and path still open the tunnel", []string{"GET https://api.example.com/v1"}, nil, "api.example.com", 443, true, false},
		{"suffix", []string{"*.example.com"}, nil, "a.b.example.com", 443, true, false},
		{"star", []string{"*"}, nil, "anything.test", 9, true, false},
		{"deny wins", []string{"*.example.com", "!bad.example.com"}, nil, "bad.example.com", 443, false, false},
		{"deny with a path leaves the tunnel", []string{"*.example.com", "!https://bad.example.com/admin"}, nil, "bad.example.com", 443, true, false},
		{"deny by method leaves the tunnel", []string{"*.example.com", "!POST https://bad.example.com"}, nil, "bad.example.com", 443, true, false},
		{"ip literal", []string{"127.0.0.1:8443"}, nil, "127.0.0.1", 8443, true, false},
		{"passthrough", []string{"https://pin.example.com passthrough"}, nil, "pin.example.com", 443, true, true},
		{"passthrough beside a plain rule", []string{"*.example.com", "https://pin.example.com passthrough"}, nil, "pin.example.com", 443, true, true},
		{"passthrough narrowed by host", []string{"https://pin.example.com passthrough"}, []string{"pin.example.com"}, "pin.example.com", 443, true, true},
		{"passthrough narrowed by path: intercepted", []string{"https://pin.example.com passthrough"}, []string{"GET https://pin.example.com/x"}, "pin.example.com", 443, true, false},
		{"a request's list cannot open a pass-through", []string{"api.example.com"}, []string{"https://api.example.com passthrough"}, "api.example.com", 443, true, false},
		{"a deny by method keeps a pass-through intercepted", []string{"https://pin.example.com passthrough", "!POST https://pin.example.com"}, nil, "pin.example.com", 443, true, false},
		{"a deny by path keeps a pass-through intercepted", []string{"https://pin.example.com passthrough", "!https://pin.example.com/admin"}, nil, "pin.example.com", 443, true, false},
		{"a request's deny by path keeps a pass-through intercepted", []string{"https://pin.example.com passthrough"}, []string{"pin.example.com", "!https://pin.example.com/admin"}, "pin.example.com", 443, true, false},
		{"narrowed away", []string{"https://pin.example.com passthrough"}, []string{"other.example.com"}, "pin.example.com", 443, false, false},
		{"empty", nil, nil, "api.example.com", 443, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Effective(tc.rules, tc.narrow)
			if err != nil {
				t.Fatal(err)
			}
			d := p.DecideConnect(tc.host, tc.port)
			if d.Allowed != tc.allowed || d.Passthrough != tc.pass {
				t.Fatalf("DecideConnect = %+v, want allowed %v passthrough %v", d, tc.allowed, tc.pass)
			}
			if d.Allowed && d.Rule == "" || d.Reason == "" {
				t.Fatalf("decision without rule or reason: %+v", d)
			}
		})
	}
	if d := (*Policy)(nil).DecideConnect("a.test", 443); d.Allowed {
		t.Fatal("nil policy allowed a tunnel")
	}
}

func TestParseConnectTarget(t *testing.T) {
	good := map[string]string{
		"Example.COM:443":    "example.com:443",
		"example.com.:8443":  "example.com:8443",
		"127.0.0.1:443":      "127.0.0.1:443",
		"[::1]:443":          "::1:443",
		"bücher.example:443": "xn--bcher-kva.example:443",
	}
	for in, want := range good {
		h, p, err := parseConnectTarget(in)
		if err != nil || h+":"+strconv.Itoa(p) != want {
			t.Fatalf("%q = %q %d %v, want %q", in, h, p, err, want)
		}
	}
	for _, bad := range []string{"", "example.com", "example.com:", ":443", "example.com:0", "example.com:65536", "example.com:+1",
		"a@example.com:443", "example.com:443/x", "http://example.com:443", "[::1%eth0]:443", "::1:443", "2130706433:443", "exa mple.com:443"} {
		if h, p, err := parseConnectTarget(bad); err == nil {
			t.Errorf("%q parsed as %q %d", bad, h, p)
		}
	}
}

func TestExplainDoor(t *testing.T) {
	p := mustPolicy(t, "GET https://api.example.com/v1", "https://pin.example.com passthrough", "!https://api.example.com/v1/admin")
	tests := []struct {
		door, method, url string
		allowed           bool
		wantDoor, tunnel  string
	}{
		{"", "GET", "https://api.example.com/v1/x", true, DoorProxy, ""},
		{"forward", "GET", "https://api.example.com/v1/x", true, DoorForward, ""},
		{"connect", "GET", "https://api.example.com/v1/x", true, DoorConnect, "intercept"},
		{"connect", "POST", "https://api.example.com/v1/x", false, DoorConnect, "intercept"},
		{"connect", "GET", "https://api.example.com/v1/admin", false, DoorConnect, "intercept"},
		{"connect", "GET", "https://pin.example.com/anything", true, DoorConnect, "passthrough"},
		{"connect", "GET", "http://api.example.com/v1/x", false, DoorConnect, ""},
		{"connect", "GET", "https://other.example.com/", false, DoorConnect, ""},
	}
	for _, tc := range tests {
		d, err := ExplainDoor(p, tc.door, tc.method, tc.url)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.door, tc.url, err)
		}
		if d.Allowed != tc.allowed || d.Door != tc.wantDoor || d.Tunnel != tc.tunnel || d.Reason == "" {
			t.Errorf("%s %s %s = %+v", tc.door, tc.method, tc.url, d)
		}
	}
	if _, err := ExplainDoor(p, "sideways", "GET", "https://api.example.com/"); !isFieldError(err, "door") {
		t.Fatalf("unknown door: %v", err)
	}
}

// TestDenyCopyOfOptionRules: the fuzz targets' deny copy of a rule with an option
// parses and wins (a deny rule takes no option).
func TestDenyCopyOfOptionRules(t *testing.T) {
	for _, s := range []string{"https://pin.example.com passthrough", "chat.example.com websocket"} {
		r, err := ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		p := mustPolicy(t, s, denyCopy(r))
		if d := p.DecideConnect(r.host, 443); d.Allowed {
			t.Fatalf("%s: deny copy did not win: %+v", s, d)
		}
	}
}
