package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// Test values. They look like real tokens so the format-preserving placeholders and
// the credential patterns are exercised, but they are not real.
const (
	testGitHubValue  = "ghp_T3stT0kenAbCdEfGhIjKlMnOpQrStUvWx123"
	testOpenAIValue  = "sk-proj-Z9y8X7w6V5u4T3s2R1q0PoNmLkJiHgFeDcBa"
	testSlackValue   = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	testPlainValue   = "s3cr3t-V4lue_0123456789abcdef"
	testQueryValue   = "q-key/with+special=chars&more12345"
	testGitHubValue2 = "ghp_An0therT0kenAbCdEfGhIjKlMnOpQrStUv99"
)

func newReq(_ testing.TB, method, target string) *http.Request {
	return httptest.NewRequest(method, target, nil)
}

// egressStore is a store with one credential of each kind of binding.
func egressStore(t testing.TB) *Store {
	t.Helper()
	s := openTestStore(t, "")
	mustPut(t, s, "GITHUB", api.PutCredentialRequest{
		Value: testGitHubValue, Host: "api.github.com", Prefix: ptr("token "),
		PathPrefix: "/repos", Methods: []string{"GET", "POST"},
	})
	mustPut(t, s, "WILD", api.PutCredentialRequest{
		Value: testPlainValue, Host: "*.example.com", Header: "X-Api-Key", Prefix: ptr(""), Port: 8443,
	})
	mustPut(t, s, "LOCAL", api.PutCredentialRequest{
		Value: "local-plain-http-value", Host: "127.0.0.1", Header: "X-Local", AllowHTTP: true, Port: 8080,
	})
	mustPut(t, s, "OPENAI", api.PutCredentialRequest{
		Value: testOpenAIValue, Host: "api.openai.com", Placeholder: true,
	})
	mustPut(t, s, "SLACK", api.PutCredentialRequest{
		Value: testSlackValue, Host: "slack.com", PathPrefix: "/api", Placeholder: true,
	})
	mustPut(t, s, "GH_PH", api.PutCredentialRequest{
		Value: testGitHubValue2, Host: "uploads.github.com", Prefix: ptr("token "), Placeholder: true,
	})
	mustPut(t, s, "QUERY", api.PutCredentialRequest{
		Value: testQueryValue, Host: "maps.example.org", Placeholder: true, PlaceholderQuery: true,
	})
	return s
}

var allGrants = []string{"GITHUB", "WILD", "LOCAL", "OPENAI", "SLACK", "GH_PH", "QUERY"}

func TestInjectMatrix(t *testing.T) {
	s := egressStore(t)
	tests := []struct {
		name          string
		grants        []string
		method, url   string
		wantNames     []string
		header, value string // expected header after Inject ("" value: must be absent)
	}{
		{"granted exact https", allGrants, "GET", "https://api.github.com/repos/o/r", []string{"GITHUB"}, "Authorization", "token " + testGitHubValue},
		{"not granted", []string{"WILD"}, "GET", "https://api.github.com/repos/o/r", nil, "Authorization", ""},
		{"no grants", nil, "GET", "https://api.github.com/repos/o/r", nil, "Authorization", ""},
		{"grant of unknown name", []string{"NOPE"}, "GET", "https://api.github.com/repos/o/r", nil, "Authorization", ""},
		{"host case and trailing dot", allGrants, "GET", "https://API.GitHub.com./repos/o", []string{"GITHUB"}, "Authorization", "token " + testGitHubValue},
		{"host mismatch", allGrants, "GET", "https://github.com/repos/o/r", nil, "Authorization", ""},
		{"host suffix trick", allGrants, "GET", "https://api.github.com.evil.example/repos/o", nil, "Authorization", ""},
		{"subdomain of exact host", allGrants, "GET", "https://x.api.github.com/repos/o", nil, "Authorization", ""},
		{"plain http refused", allGrants, "GET", "http://api.github.com/repos/o/r", nil, "Authorization", ""},
		{"explicit default port", allGrants, "GET", "https://api.github.com:443/repos/o/r", []string{"GITHUB"}, "Authorization", "token " + testGitHubValue},
		{"other port", allGrants, "GET", "https://api.github.com:8443/repos/o/r", nil, "Authorization", ""},
		{"path prefix exact", allGrants, "GET", "https://api.github.com/repos", []string{"GITHUB"}, "Authorization", "token " + testGitHubValue},
		{"path outside prefix", allGrants, "GET", "https://api.github.com/user", nil, "Authorization", ""},
		{"path prefix not on segment boundary", allGrants, "GET", "https://api.github.com/repository", nil, "Authorization", ""},
		{"path dot-dot escape", allGrants, "GET", "https://api.github.com/repos/../admin", nil, "Authorization", ""},
		{"path encoded slash", allGrants, "GET", "https://api.github.com/repos%2F..%2Fadmin", nil, "Authorization", ""},
		{"method allowed lower case", allGrants, "post", "https://api.github.com/repos/o/r", []string{"GITHUB"}, "Authorization", "token " + testGitHubValue},
		{"method not allowed", allGrants, "DELETE", "https://api.github.com/repos/o/r", nil, "Authorization", ""},
		{"wildcard subdomain with port", allGrants, "DELETE", "https://a.b.example.com:8443/x", []string{"WILD"}, "X-Api-Key", testPlainValue},
		{"wildcard apex with port", allGrants, "GET", "https://example.com:8443/", []string{"WILD"}, "X-Api-Key", testPlainValue},
		{"wildcard default port refused", allGrants, "GET", "https://a.example.com/x", nil, "X-Api-Key", ""},
		{"wildcard other domain", allGrants, "GET", "https://a.example.com.evil.example:8443/x", nil, "X-Api-Key", ""},
		{"wildcard lookalike", allGrants, "GET", "https://notexample.com:8443/x", nil, "X-Api-Key", ""},
		{"wildcard not granted", []string{"GITHUB"}, "GET", "https://a.example.com:8443/x", nil, "X-Api-Key", ""},
		{"allow_http over http", allGrants, "GET", "http://127.0.0.1:8080/v1", []string{"LOCAL"}, "X-Local", "Bearer local-plain-http-value"},
		{"allow_http over https", allGrants, "GET", "https://127.0.0.1:8080/v1", []string{"LOCAL"}, "X-Local", "Bearer local-plain-http-value"},
		{"allow_http wrong port", allGrants, "GET", "http://127.0.0.1/v1", nil, "X-Local", ""},
		{"allow_http other IP", allGrants, "GET", "http://127.0.0.2:8080/v1", nil, "X-Local", ""},
		{"placeholder mode not swapped when absent", allGrants, "GET", "https://api.openai.com/v1/models", nil, "Authorization", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newReq(t, tc.method, tc.url)
			// The caller's own header of that name never survives an injection.
			if tc.value != "" {
				req.Header.Set(tc.header, "caller-supplied")
			}
			names, err := s.Inject(tc.grants, req)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names, tc.wantNames) {
				t.Errorf("injected %v, want %v", names, tc.wantNames)
			}
			got := req.Header.Get(tc.header)
			if tc.value == "" {
				if got != "" {
					t.Errorf("%s = %q, want absent", tc.header, got)
				}
				for k, vs := range req.Header {
					for _, v := range vs {
						if strings.Contains(v, testGitHubValue) || strings.Contains(v, testPlainValue) || strings.Contains(v, "local-plain") {
							t.Errorf("a value was injected into %s", k)
						}
					}
				}
				return
			}
			if got != tc.value {
				t.Errorf("%s = %q, want %q", tc.header, got, tc.value)
			}
			if n := len(req.Header.Values(tc.header)); n != 1 {
				t.Errorf("%s has %d values, want 1 (the caller's is replaced)", tc.header, n)
			}
		})
	}
}

func TestInjectReplacesAnySpellingOfTheHeader(t *testing.T) {
	s := egressStore(t)
	req := newReq(t, "GET", "https://api.github.com/repos/o/r")
	req.Header["authorization"] = []string{"caller"}
	req.Header["AUTHORIZATION"] = []string{"caller"}
	if _, err := s.Inject(allGrants, req); err != nil {
		t.Fatal(err)
	}
	if len(req.Header) != 1 || req.Header.Get("Authorization") != "token "+testGitHubValue {
		t.Errorf("headers after Inject: %v", req.Header)
	}
}

func TestInjectConflict(t *testing.T) {
	s := openTestStore(t, "")
	mustPut(t, s, "A", api.PutCredentialRequest{Value: testPlainValue, Host: "api.example.com"})
	mustPut(t, s, "B", api.PutCredentialRequest{Value: testOpenAIValue, Host: "*.example.com"})
	req := newReq(t, "GET", "https://api.example.com/")
	_, err := s.Inject([]string{"B", "A"}, req)
	if ae, ok := api.AsError(err); !ok || ae.Code != api.CodePolicyDenied {
		t.Fatalf("Inject of two credentials on one header = %v, want policy_denied", err)
	}
	assertNoSecret(t, err.Error())
	// Only one granted: fine.
	req = newReq(t, "GET", "https://api.example.com/")
	if names, err := s.Inject([]string{"B"}, req); err != nil || !slices.Equal(names, []string{"B"}) {
		t.Fatalf("Inject(B) = %v, %v", names, err)
	}
}

func TestPlaceholderFormat(t *testing.T) {
	s := egressStore(t)
	ph := s.Placeholders(allGrants)
	if len(ph) != 4 {
		t.Fatalf("Placeholders = %d entries, want the 4 placeholder-mode credentials", len(ph))
	}
	if _, ok := ph["GITHUB"]; ok {
		t.Error("header-mode credential got a placeholder")
	}
	if got := s.Placeholders([]string{"OPENAI", "UNKNOWN"}); len(got) != 1 {
		t.Errorf("Placeholders(OPENAI, UNKNOWN) = %v", got)
	}
	tests := []struct {
		name, value, prefix string
	}{
		{"OPENAI", testOpenAIValue, "sk-proj-"},
		{"SLACK", testSlackValue, "xoxb-"},
		{"GH_PH", testGitHubValue2, "ghp_"},
		{"QUERY", testQueryValue, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ph[tc.name]
			if len(p) != len(tc.value) {
				t.Errorf("placeholder length %d, value length %d", len(p), len(tc.value))
			}
			if !strings.HasPrefix(p, tc.prefix) {
				t.Errorf("placeholder %q lost prefix %q", p, tc.prefix)
			}
			if p == tc.value || strings.Contains(p, tc.value[len(tc.prefix):len(tc.prefix)+6]) {
				t.Errorf("placeholder %q reveals the value", p)
			}
			for _, c := range p[len(tc.prefix):] {
				if !strings.ContainsRune(tc.value[len(tc.prefix):]+lowerChars+upperChars+digitChars, c) {
					t.Errorf("placeholder char %q outside the value's alphabet", c)
				}
			}
		})
	}
	// The Slack token keeps its dashes where they were.
	if p := ph["SLACK"]; strings.Count(p, "-") != strings.Count(testSlackValue, "-") || p[17] != '-' {
		t.Errorf("slack placeholder %q does not keep the separators", p)
	}
	// A new value gets a new placeholder; the same value the same one.
	before := ph["OPENAI"]
	mustPut(t, s, "OPENAI", api.PutCredentialRequest{Value: testOpenAIValue, Host: "api.openai.com", Placeholder: true})
	if got := s.Placeholders([]string{"OPENAI"})["OPENAI"]; got != before {
		t.Errorf("same value, new placeholder %q != %q", got, before)
	}
	mustPut(t, s, "OPENAI", api.PutCredentialRequest{Value: testOpenAIValue + "X", Host: "api.openai.com", Placeholder: true})
	if got := s.Placeholders([]string{"OPENAI"})["OPENAI"]; got == before {
		t.Error("new value kept the old placeholder")
	}
	// Another master key gives other placeholders.
	other, err := Open(Config{Path: t.TempDir() + "/c.enc", Key: otherKey(t), NoWatch: true, Logger: newLogger(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, other, "OPENAI", api.PutCredentialRequest{Value: testOpenAIValue, Host: "api.openai.com", Placeholder: true})
	if other.Placeholders([]string{"OPENAI"})["OPENAI"] == before {
		t.Error("placeholder does not depend on the master key")
	}
}

func TestPlaceholderSeparatorOnlyValue(t *testing.T) {
	// A value of separators only must still get a placeholder different from it.
	p := placeholderFor([]byte("k"), "X", strings.Repeat("-", 20))
	if p == strings.Repeat("-", 20) || len(p) != 20 {
		t.Errorf("placeholder %q", p)
	}
}

func TestPlaceholderSwapAndLeak(t *testing.T) {
	s := egressStore(t)
	ph := s.Placeholders(allGrants)
	openai, slack, query, ghph := ph["OPENAI"], ph["SLACK"], ph["QUERY"], ph["GH_PH"]
	tests := []struct {
		name        string
		grants      []string
		method, url string
		header      http.Header
		body        string
		leak        string // credential or pattern named in the error; "" = allowed
		wantNames   []string
		wantHeader  string // Authorization after Inject
		wantQuery   string
	}{
		{
			name: "granted to matching host", grants: allGrants, method: "POST",
			url:    "https://api.openai.com/v1/chat",
			header: http.Header{"Authorization": {"Bearer " + openai}},
			body:   `{"model":"x"}`, wantNames: []string{"OPENAI"}, wantHeader: "Bearer " + testOpenAIValue,
		},
		{
			name: "slack placeholder in custom header under path prefix", grants: allGrants, method: "POST",
			url:       "https://slack.com/api/chat.postMessage",
			header:    http.Header{"Authorization": {"Bearer " + slack}},
			wantNames: []string{"SLACK"}, wantHeader: "Bearer " + testSlackValue,
		},
		{
			// The dummy looks like a GitHub token; where it belongs, that is no leak.
			name: "ghp_ placeholder does not trip the github pattern", grants: allGrants, method: "PUT",
			url:       "https://uploads.github.com/x",
			header:    http.Header{"Authorization": {"token " + ghph}},
			wantNames: []string{"GH_PH"}, wantHeader: "token " + testGitHubValue2,
		},
		{
			name: "ghp_ placeholder to the wrong host", grants: allGrants, method: "PUT",
			url:    "https://api.github.com/x",
			header: http.Header{"Authorization": {"token " + ghph}}, leak: "GH_PH",
		},
		{
			name: "query placeholder swapped and escaped", grants: allGrants, method: "GET",
			url:       "https://maps.example.org/geo?key=" + query + "&q=x",
			wantNames: []string{"QUERY"}, wantQuery: "key=" + url.QueryEscape(testQueryValue) + "&q=x",
		},
		{
			name: "placeholder in body to matching host is a harmless dummy", grants: allGrants, method: "POST",
			url: "https://api.openai.com/v1/chat", body: "my key is " + openai,
		},
		{
			name: "placeholder to wrong host", grants: allGrants, method: "POST",
			url:    "https://evil.example/collect",
			header: http.Header{"Authorization": {"Bearer " + openai}}, leak: "OPENAI",
		},
		{
			name: "placeholder in body to wrong host", grants: allGrants, method: "POST",
			url: "https://evil.example/collect", body: "x=" + openai, leak: "OPENAI",
		},
		{
			name: "placeholder in URL to wrong host", grants: allGrants, method: "GET",
			url: "https://evil.example/?k=" + openai, leak: "OPENAI",
		},
		{
			name: "placeholder percent-encoded to wrong host", grants: allGrants, method: "GET",
			url: "https://evil.example/?k=" + url.QueryEscape(url.QueryEscape(openai)), leak: "OPENAI",
		},
		{
			name: "placeholder not granted", grants: []string{"GITHUB"}, method: "POST",
			url:    "https://api.openai.com/v1/chat",
			header: http.Header{"Authorization": {"Bearer " + openai}}, leak: "OPENAI",
		},
		{
			name: "placeholder outside path prefix", grants: allGrants, method: "POST",
			url:    "https://slack.com/other",
			header: http.Header{"Authorization": {"Bearer " + slack}}, leak: "SLACK",
		},
		{
			name: "placeholder over plain http", grants: allGrants, method: "POST",
			url:    "http://api.openai.com/v1/chat",
			header: http.Header{"Authorization": {"Bearer " + openai}}, leak: "OPENAI",
		},
		{
			name: "placeholder on another port", grants: allGrants, method: "POST",
			url:    "https://api.openai.com:8443/v1/chat",
			header: http.Header{"Authorization": {"Bearer " + openai}}, leak: "OPENAI",
		},
		{
			name: "other pattern next to an allowed placeholder", grants: allGrants, method: "POST",
			url:    "https://api.openai.com/v1/chat",
			header: http.Header{"Authorization": {"Bearer " + openai}},
			body:   "token=abcdefghijklmnopqrstuvwxyz", leak: "secret_assignment",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			err = s.CheckOutbound(tc.grants, tc.method, u, tc.header, []byte(tc.body))
			if tc.leak != "" {
				ae, ok := api.AsError(err)
				if !ok || ae.Code != api.CodeLeakDetected {
					t.Fatalf("CheckOutbound = %v, want leak_detected", err)
				}
				if !strings.Contains(ae.Message, tc.leak) {
					t.Errorf("message %q does not name %s", ae.Message, tc.leak)
				}
				for _, p := range []string{openai, slack, query, ghph} {
					if strings.Contains(err.Error(), p) {
						t.Errorf("error reveals a placeholder: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckOutbound = %v, want nil", err)
			}
			req := httptest.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			for k, vs := range tc.header {
				req.Header[k] = slices.Clone(vs)
			}
			names, err := s.Inject(tc.grants, req)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names, tc.wantNames) {
				t.Errorf("injected %v, want %v", names, tc.wantNames)
			}
			if got := req.Header.Get("Authorization"); got != tc.wantHeader {
				t.Errorf("Authorization = %q, want %q", got, tc.wantHeader)
			}
			if tc.wantQuery != "" && req.URL.RawQuery != tc.wantQuery {
				t.Errorf("query = %q, want %q", req.URL.RawQuery, tc.wantQuery)
			}
		})
	}
}

// encodings of v that a test builds with the standard library.
func b64(enc *base64.Encoding, s string) string { return enc.EncodeToString([]byte(s)) }

func percentAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{s[i]})))
	}
	return b.String()
}

// leakForms lists a value hidden in the ways SPEC 4.4 names. Each case gives the text
// and a fragment that must not survive redaction.
func leakForms(v string) []struct{ name, text, gone string } {
	midB64 := func(enc *base64.Encoding, lead string) (string, string) {
		full := enc.EncodeToString([]byte(lead + v + " and some trailing text"))
		// A chunk from the middle of the encoded value.
		n := len(lead) * 4 / 3
		return "data:" + full + " end", full[n+4 : n+len(v)*4/3-4]
	}
	s1, g1 := midB64(base64.StdEncoding, "")
	s2, g2 := midB64(base64.StdEncoding, "x")
	s3, g3 := midB64(base64.StdEncoding, "xy")
	s4, g4 := midB64(base64.RawURLEncoding, "x")
	s5, g5 := midB64(base64.URLEncoding, "xy")
	return []struct{ name, text, gone string }{
		{"plain", v, v},
		{"plain in the middle of text", "prefix text " + v + " suffix text", v},
		{"plain glued to text", "abc" + v + "xyz", v},
		{"percent-encoded", percentAll(v), percentAll(v)},
		{"percent-encoded twice", strings.ReplaceAll(percentAll(v), "%", "%25"), strings.ReplaceAll(percentAll(v), "%", "%25")},
		{"query-escaped", "q=" + url.QueryEscape(v), url.QueryEscape(v)},
		{"base64 std padded", b64(base64.StdEncoding, v), b64(base64.StdEncoding, v)[:len(v)]},
		{"base64 std unpadded", b64(base64.RawStdEncoding, v), b64(base64.RawStdEncoding, v)[:len(v)]},
		{"base64 url padded", b64(base64.URLEncoding, v), b64(base64.URLEncoding, v)[:len(v)]},
		{"base64 url unpadded", b64(base64.RawURLEncoding, v), b64(base64.RawURLEncoding, v)[:len(v)]},
		{"base64 std alignment 0 mid-stream", s1, g1},
		{"base64 std alignment 1 mid-stream", s2, g2},
		{"base64 std alignment 2 mid-stream", s3, g3},
		{"base64 url unpadded alignment 1", s4, g4},
		{"base64 url alignment 2", s5, g5},
		{"base64 then percent-encoded", url.QueryEscape(b64(base64.StdEncoding, "ab"+v)), b64(base64.StdEncoding, "ab"+v)[8:20]},
		{"basic auth", "Basic " + b64(base64.StdEncoding, "user:"+v), b64(base64.StdEncoding, "user:"+v)[10:20]},
		{"hex lower", "0x" + hex.EncodeToString([]byte(v)), hex.EncodeToString([]byte(v))},
		{"hex upper", strings.ToUpper(hex.EncodeToString([]byte(v))), strings.ToUpper(hex.EncodeToString([]byte(v)))},
		{"hex mid-stream", "ff00" + hex.EncodeToString([]byte(v)) + "00ff", hex.EncodeToString([]byte(v))},
	}
}

func TestCheckOutboundLeakForms(t *testing.T) {
	s := egressStore(t)
	base, _ := url.Parse("https://api.example.net/upload")
	for _, f := range leakForms(testPlainValue) {
		places := []struct {
			name   string
			u      *url.URL
			header http.Header
			body   string
		}{
			{"body", base, nil, f.text},
			{"header value", base, http.Header{"X-Data": {"a", f.text}}, ""},
			{"URL query", &url.URL{Scheme: "https", Host: "api.example.net", Path: "/", RawQuery: "d=" + f.text}, nil, ""},
			{"URL path", &url.URL{Scheme: "https", Host: "api.example.net", Path: "/" + f.text}, nil, ""},
		}
		if !strings.ContainsAny(f.text, " :") {
			places = append(places, struct {
				name   string
				u      *url.URL
				header http.Header
				body   string
			}{"header name", base, http.Header{"X-" + f.text: {"1"}}, ""})
		}
		for _, p := range places {
			t.Run(f.name+"/"+p.name, func(t *testing.T) {
				// Granted or not: a real value never leaves as caller content.
				err := s.CheckOutbound(allGrants, "POST", p.u, p.header, []byte(p.body))
				ae, ok := api.AsError(err)
				if !ok || ae.Code != api.CodeLeakDetected {
					t.Fatalf("CheckOutbound = %v, want leak_detected", err)
				}
				if !strings.Contains(ae.Message, `"WILD"`) {
					t.Errorf("message %q does not name the credential", ae.Message)
				}
				if strings.Contains(err.Error(), f.text) || strings.Contains(err.Error(), testPlainValue) {
					t.Errorf("error reveals the content: %v", err)
				}
			})
		}
	}
}

func TestCheckOutboundJSONEscapes(t *testing.T) {
	s := egressStore(t)
	u, _ := url.Parse("https://api.example.net/")
	body := `{"note":"ok","k":"` + strings.ReplaceAll(testPlainValue, "3", `\u0033`) + `"}`
	err := s.CheckOutbound(nil, "POST", u, nil, []byte(body))
	if ae, ok := api.AsError(err); !ok || ae.Code != api.CodeLeakDetected || !strings.Contains(ae.Message, `"WILD"`) {
		t.Fatalf("CheckOutbound(JSON-escaped value) = %v, want leak_detected naming WILD", err)
	}
	if err := s.CheckOutbound(nil, "POST", u, nil, []byte(`{"a":"line\nbreak \u00e9t\u00e9"}`)); err != nil {
		t.Fatalf("CheckOutbound(clean escaped JSON) = %v", err)
	}
}

func TestCheckOutboundClean(t *testing.T) {
	s := egressStore(t)
	u, _ := url.Parse("https://api.example.net/search?q=hello+world&page=2")
	near := []byte(testPlainValue)
	near[10] ^= 1
	tests := []struct {
		name   string
		header http.Header
		body   string
	}{
		{"ordinary request", http.Header{"Accept": {"application/json"}, "User-Agent": {"tool/1.0"}}, `{"query":"weather in Paris"}`},
		{"near miss", nil, string(near)},
		{"short prefix of a value", nil, testPlainValue[:6]},
		{"base64 of other text", nil, b64(base64.StdEncoding, "nothing to see here, just text")},
		{"binary body", nil, "\x00\x01\x02\xff\xfe%%%zz%4"},
		{"short token-like word", nil, "token=abc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.CheckOutbound(allGrants, "POST", u, tc.header, []byte(tc.body)); err != nil {
				t.Fatalf("CheckOutbound = %v, want nil", err)
			}
		})
	}
}

func TestCheckOutboundPatterns(t *testing.T) {
	s := openTestStore(t, "") // no credentials: patterns only
	u, _ := url.Parse("https://api.example.net/")
	tests := []struct {
		name, body, pattern string
	}{
		{"api key assignment", "api_key = 'abcdefghijklmnopqrstuvwxyz'", "api_key_assignment"},
		{"password assignment", "password: hunter2hunter2hunter2", "secret_assignment"},
		{"openai key", "sk-abcdefghijklmnopqrstuvwxyz", "openai_key"},
		{"github pat", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "github_pat"},
		{"github app token", "ghs_abcdefghijklmnopqrstuvwxyz0123456789", "github_app_token"},
		{"slack token", "xoxp-1234-5678", "slack_token"},
		{"bearer token", "Authorization: Bearer abcdefghijklmnopqrstuvwxyz", "bearer_token"},
		{"percent-encoded pattern", "k=" + percentAll("ghp_abcdefghijklmnopqrstuvwxyz0123456789"), "github_pat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CheckOutbound(nil, "POST", u, nil, []byte(tc.body))
			ae, ok := api.AsError(err)
			if !ok || ae.Code != api.CodeLeakDetected || !strings.Contains(ae.Message, tc.pattern) {
				t.Fatalf("CheckOutbound = %v, want leak_detected naming %s", err, tc.pattern)
			}
		})
	}
	// The caller's own bearer header is a pattern match too.
	err := s.CheckOutbound(nil, "GET", u, http.Header{"Authorization": {"Bearer abcdefghijklmnopqrstuvwxyz"}}, nil)
	if ae, ok := api.AsError(err); !ok || ae.Code != api.CodeLeakDetected {
		t.Errorf("caller bearer header = %v", err)
	}
}

func TestRedactLeakForms(t *testing.T) {
	s := egressStore(t)
	for _, f := range leakForms(testPlainValue) {
		t.Run(f.name, func(t *testing.T) {
			in := "BEFORE " + f.text + " AFTER"
			out, n := s.Redact([]byte(in))
			if n < 1 || !bytes.Contains(out, []byte("[REDACTED]")) {
				t.Fatalf("Redact(%q) = %q, %d: nothing redacted", in, out, n)
			}
			if bytes.Contains(out, []byte(f.gone)) || bytes.Contains(out, []byte(testPlainValue)) {
				t.Errorf("Redact left the value: %q", out)
			}
			if !bytes.HasPrefix(out, []byte("BEFORE ")) || !bytes.HasSuffix(out, []byte(" AFTER")) {
				t.Errorf("Redact damaged the text around the value: %q", out)
			}
			if _, again := s.Redact(out); again != 0 {
				t.Errorf("redacted text still has %d hits: %q", again, out)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	s := egressStore(t)
	ph := s.Placeholders([]string{"OPENAI"})["OPENAI"]
	tests := []struct {
		name, in, want string
		n              int
	}{
		{"nothing", "hello world", "hello world", 0},
		{"two values", "a " + testGitHubValue + " b " + testPlainValue + " c", "a [REDACTED] b [REDACTED] c", 2},
		{"adjacent values merge", testPlainValue + testPlainValue, "[REDACTED]", 1},
		{"pattern", `{"auth":"Bearer abcdefghijklmnopqrstuvwxyz"}`, `{"auth":"Bearer [REDACTED]"}`, 1},
		{"placeholder is not a secret", "dummy " + ph, "dummy " + ph, 0},
		{"percent-encoded value inside a URL", "https://x/?a=1&k=" + percentAll(testPlainValue) + "&b=2", "https://x/?a=1&k=[REDACTED]&b=2", 1},
		{"base64 padded at the end", "auth=" + b64(base64.StdEncoding, "u:"+testPlainValue), "auth=dT[REDACTED]", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, n := s.Redact([]byte(tc.in))
			if string(out) != tc.want || n != tc.n {
				t.Errorf("Redact = %q, %d; want %q, %d", out, n, tc.want, tc.n)
			}
		})
	}
}

func TestRedactJSON(t *testing.T) {
	s := egressStore(t)
	tests := []struct {
		name, in, want string
		n              int
		notJSON        bool
	}{
		{"untouched keeps bytes", `{"b": 1,  "a": [true, null, "x"]}`, `{"b": 1,  "a": [true, null, "x"]}`, 0, false},
		{"string value", `{"token":"` + testGitHubValue + `"}`, `{"token":"[REDACTED]"}`, 1, false},
		{"inside a longer string", `["see ` + testPlainValue + ` here"]`, `["see [REDACTED] here"]`, 1, false},
		{"object key", `{"` + testPlainValue + `": 1}`, `{"[REDACTED]": 1}`, 1, false},
		{"escaped in JSON", `{"v":"` + strings.ReplaceAll(testPlainValue, "s3", `\u0073\u0033`) + `"}`, `{"v":"[REDACTED]"}`, 1, false},
		{"base64 in a string", `{"v":"` + b64(base64.StdEncoding, testPlainValue) + `"}`, `{"v":"[REDACTED]"}`, 1, false},
		{"keeps other escapes", `{"v":"<a> \"q\" ` + testPlainValue + `\n"}`, `{"v":"<a> \"q\" [REDACTED]\n"}`, 1, false},
		{"invalid JSON redacted as text", `{"v": "` + testPlainValue, `{"v": "[REDACTED]`, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, n, err := s.RedactJSON([]byte(tc.in))
			if tc.notJSON != (err != nil) {
				t.Fatalf("err = %v, notJSON %v", err, tc.notJSON)
			}
			if string(out) != tc.want || n != tc.n {
				t.Errorf("RedactJSON = %s, %d; want %s, %d", out, n, tc.want, tc.n)
			}
			if !tc.notJSON && !jsonValid(out) {
				t.Errorf("output is not valid JSON: %s", out)
			}
		})
	}
}

func TestRedactJSONAcrossValues(t *testing.T) {
	// A value with JSON punctuation, laid out by a hostile upstream across two
	// strings, is still not returned.
	s := openTestStore(t, "")
	v := `pa",  "ss-word-123456`
	mustPut(t, s, "PW", api.PutCredentialRequest{Value: v, Host: "a.example"})
	in := `["x` + v + `y"]`
	out, n, err := s.RedactJSON([]byte(in))
	if err != nil || n == 0 || !jsonValid(out) || bytes.Contains(out, []byte(v)) {
		t.Fatalf("RedactJSON = %s, %d, %v", out, n, err)
	}
	// A numeric value inside a JSON number becomes a string.
	mustPut(t, s, "PIN", api.PutCredentialRequest{Value: "9876543210123", Host: "a.example"})
	out, n, err = s.RedactJSON([]byte(`{"id": 19876543210123.5}`))
	if err != nil || n != 1 || string(out) != `{"id": "[REDACTED]"}` {
		t.Fatalf("RedactJSON(number) = %s, %d, %v", out, n, err)
	}
}

// secretsForGateway is the interface internal/egress declares (its Secrets); the
// guard proves *Store keeps exactly those signatures.
type secretsForGateway interface {
	CheckOutbound(grants []string, method string, u *url.URL, header http.Header, body []byte) error
	Inject(grants []string, req *http.Request) ([]string, error)
	Redact(b []byte) ([]byte, int)
}

var _ secretsForGateway = (*Store)(nil)
