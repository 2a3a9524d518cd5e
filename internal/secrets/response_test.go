package secrets

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

func wantLeak(t *testing.T, what string, err error, cred string) {
	t.Helper()
	ae, ok := api.AsError(err)
	if !ok || ae.Code != api.CodeLeakDetected || !strings.Contains(ae.Message, `"`+cred+`"`) {
		t.Fatalf("%s = %v, want leak_detected naming %s", what, err, cred)
	}
}

// TestCheckOutboundNamesAnyCase: a value sent as a header name is found whatever Go
// or a client did to its case, and so is a value sent as the method (issue 14).
func TestCheckOutboundNamesAnyCase(t *testing.T) {
	s := egressStore(t)
	u, _ := url.Parse("https://api.example.net/")
	raw := "X-" + testGitHubValue
	canon := http.CanonicalHeaderKey(raw)
	if canon == raw {
		t.Fatal("test needs a name canonicalisation changes")
	}
	wantLeak(t, "CheckOutbound(canonicalised name)", s.CheckOutbound(nil, "GET", u, http.Header{canon: {"1"}}, nil), "GITHUB")
	wantLeak(t, "CheckHeaderNames(raw name)", s.CheckHeaderNames(nil, "GET", u, []string{"Accept", raw}), "GITHUB")
	wantLeak(t, "CheckHeaderNames(lower-cased)", s.CheckHeaderNames(nil, "GET", u, []string{strings.ToLower(raw)}), "GITHUB")
	wantLeak(t, "CheckMethod", s.CheckMethod(testPlainValue), "WILD")
	wantLeak(t, "CheckMethod(upper)", s.CheckMethod(strings.ToUpper(testPlainValue)), "WILD")
	wantLeak(t, "CheckOutbound(method)", s.CheckOutbound(nil, testPlainValue, u, nil, nil), "WILD")
	wantLeak(t, "CheckURL(raw)", s.CheckURL(nil, "GET", u, "/x?k="+strings.ToLower(percentAll(testPlainValue))), "WILD")
	wantLeak(t, "CheckBody(\\u escapes, not JSON)", s.CheckBody(nil, "POST", u, []byte(`k=\u0073`+testPlainValue[1:])), "WILD")
	for _, m := range []string{"GET", "post", "PROPFIND"} {
		if err := s.CheckMethod(m); err != nil {
			t.Errorf("CheckMethod(%s) = %v", m, err)
		}
	}
	if err := s.CheckHeaderNames(nil, "GET", u, []string{"content-type", "X-Request-Id"}); err != nil {
		t.Errorf("CheckHeaderNames(clean) = %v", err)
	}
}

// TestRedactResponse: an upstream echoing the injected value JSON-escaped, in a
// header value, or lower-cased into a header name, hands the sandbox nothing
// (issue 14).
func TestRedactResponse(t *testing.T) {
	s := egressStore(t)
	h := http.Header{
		"X-Echo":                                {"token " + strings.ReplaceAll(testPlainValue, "_", `\u005f`)},
		"X-" + strings.ToLower(testGitHubValue): {"1"},
		"Content-Type":                          {"application/json"},
	}
	out, n := s.RedactHeader(h)
	if n != 2 {
		t.Errorf("RedactHeader made %d replacements, want 2: %v", n, out)
	}
	for k, vs := range out {
		if strings.Contains(strings.ToLower(k), strings.ToLower(testGitHubValue)) || strings.ContainsAny(k, "[]") {
			t.Errorf("header name %q", k)
		}
		for _, v := range vs {
			if strings.Contains(v, "V4lue") {
				t.Errorf("header %s: %q", k, v)
			}
		}
	}
	if out.Get("X-Echo") != "token [REDACTED]" || out.Get("X-Redacted") != "1" || out.Get("Content-Type") != "application/json" {
		t.Errorf("RedactHeader = %v", out)
	}
	if h.Get("X-Echo") == out.Get("X-Echo") {
		t.Error("RedactHeader modified its input")
	}
	php := strings.ReplaceAll("https://x/"+testPlainValue, "/", `\/`)
	body := []byte(`{"url":"` + php + `","all":"` + uEsc(testGitHubValue) + `"}`)
	red, n := s.RedactBody("application/json; charset=utf-8", body)
	if n != 2 || !json.Valid(red) || string(red) != `{"url":"https://x/[REDACTED]","all":"[REDACTED]"}` {
		t.Errorf("RedactBody(JSON) = %s, %d", red, n)
	}
	red, n = s.RedactBody("text/plain", body)
	if n != 2 || bytes.Contains(red, []byte(`\u0067\u0068`)) {
		t.Errorf("RedactBody(text) = %s, %d", red, n)
	}
	var buf bytes.Buffer
	w := s.NewRedactWriter(&buf)
	text := "log: " + testPlainValue + "\n"
	for i := range len(text) {
		w.Write([]byte(text[i : i+1]))
	}
	w.Close()
	if buf.String() != "log: [REDACTED]\n" {
		t.Errorf("NewRedactWriter = %q", buf.String())
	}
}

func uEsc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString(`\u00`)
		b.WriteString("0123456789abcdef"[s[i]>>4 : s[i]>>4+1])
		b.WriteString("0123456789abcdef"[s[i]&15 : s[i]&15+1])
	}
	return b.String()
}
