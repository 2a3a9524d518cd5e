package leak

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func pct(s string, lower bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		h := fmt.Sprintf("%%%02X", s[i])
		if lower {
			h = strings.ToLower(h)
		}
		b.WriteString(h)
	}
	return b.String()
}

func uEscapes(s string, upper bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		f := "\\u%04x"
		if upper {
			f = "\\u%04X"
		}
		fmt.Fprintf(&b, f, s[i])
	}
	return b.String()
}

// jsonString is s as encoding/json writes it (without the quotes).
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func wrap(s string, col int, nl string) string {
	var b strings.Builder
	for len(s) > col {
		b.WriteString(s[:col] + nl)
		s = s[col:]
	}
	b.WriteString(s)
	return b.String()
}

func mixedCase(s string) string {
	b := []byte(s)
	for i := range b {
		if i%2 == 0 {
			b[i] = bytes.ToUpper(b[i : i+1])[0]
		}
	}
	return string(b)
}

// leakForm is one way a program may write testValue. gone is a fragment that must
// not survive redaction.
type leakForm struct{ name, text, gone string }

func leakForms(v string) []leakForm {
	long := strings.Repeat("lorem ipsum dolor sit amet ", 4) + v + strings.Repeat(" consectetur adipiscing", 4)
	mime := base64.StdEncoding.EncodeToString([]byte(long))
	php := strings.ReplaceAll(v, "/", `\/`)
	nested, _ := json.Marshal(map[string]string{"inner": `{"k":"` + uEscapes(v, false) + `"}`})
	hexV := hex.EncodeToString([]byte(v))
	return []leakForm{
		{"plain", "x " + v + " y", v},
		{"percent upper hex", "q=" + pct(v, false), pct(v, false)},
		{"percent lower hex", "q=" + pct(v, true), pct(v, true)},
		{"percent twice lower", strings.ReplaceAll(pct(v, true), "%", "%25"), pct(v, true)[3:]},
		{"query escape", "q=" + url.QueryEscape(v), url.QueryEscape(v)},
		{"hex lower", "0x" + hexV, hexV},
		{"hex upper", strings.ToUpper(hexV), strings.ToUpper(hexV)},
		{"hex mixed case", mixedCase(hexV), mixedCase(hexV)},
		{"base64 std", base64.StdEncoding.EncodeToString([]byte(v)), base64.StdEncoding.EncodeToString([]byte(v))[:8]},
		{"base64 url align 1", base64.RawURLEncoding.EncodeToString([]byte("x" + v)), base64.RawURLEncoding.EncodeToString([]byte("x" + v))[4:12]},
		{"base64 align 2", base64.StdEncoding.EncodeToString([]byte("xy" + v)), base64.StdEncoding.EncodeToString([]byte("xy" + v))[4:12]},
		{"base64 MIME 76 CRLF", wrap(mime, 76, "\r\n"), ""},
		{"base64 PEM 64 LF", "-----BEGIN X-----\n" + wrap(mime, 64, "\n") + "\n-----END X-----", ""},
		{"base64 wrapped at 4", wrap(mime, 4, "\n"), ""},
		{"hex wrapped (xxd -p)", wrap(hex.EncodeToString([]byte(long)), 60, "\n"), ""},
		{"JSON slash escape (PHP)", `{"k":"` + php + `"}`, php},
		{"JSON every byte \\u00xx", `{"k":"` + uEscapes(v, false) + `"}`, uEscapes(v, false)},
		{"JSON every byte \\u00XX", `{"k":"` + uEscapes(v, true) + `"}`, uEscapes(v, true)},
		{"JSON mixed escapes", `"` + uEscapes(v[:4], false) + strings.ReplaceAll(v[4:], "/", `\/`) + `"`, uEscapes(v[:4], false)},
		{"escapes in invalid JSON", `{k: '` + uEscapes(v, false) + `', broken`, uEscapes(v, false)},
		{"JSON nested in a JSON string", string(nested), jsonString(uEscapes(v, false))},
		{"\\x escapes", pyEscapes(v), pyEscapes(v)},
		{"percent-encoded JSON escapes", url.QueryEscape(uEscapes(v, false)), url.QueryEscape(uEscapes(v, false))},
	}
}

func pyEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "\\x%02x", s[i])
	}
	return b.String()
}

func TestCheckFindsEveryForm(t *testing.T) {
	s := testScanner()
	for _, f := range leakForms(testValue) {
		t.Run(f.name, func(t *testing.T) {
			got, ok := s.Check([]byte(f.text), nil)
			if !ok || got.Secret != 0 {
				t.Fatalf("Check(%q) = %+v, %v; want secret 0", f.text, got, ok)
			}
		})
	}
}

func TestRedactEveryForm(t *testing.T) {
	s := testScanner()
	for _, f := range leakForms(testValue) {
		t.Run(f.name, func(t *testing.T) {
			in := "BEFORE " + f.text + " AFTER"
			out, n := s.Redact([]byte(in))
			if n == 0 {
				t.Fatalf("Redact(%q): nothing redacted", in)
			}
			if f.gone != "" && bytes.Contains(out, []byte(f.gone)) {
				t.Errorf("Redact left %q in %q", f.gone, out)
			}
			if _, ok := s.Check(out, nil); ok {
				t.Errorf("redacted text still holds a hit: %q", out)
			}
			if !bytes.HasPrefix(out, []byte("BEFORE ")) || !bytes.HasSuffix(out, []byte(" AFTER")) {
				t.Errorf("Redact damaged the text around the value: %q", out)
			}
		})
	}
}

func TestRedactJSONEscapesKeepsValidJSON(t *testing.T) {
	s := testScanner()
	php := strings.ReplaceAll(testValue, "/", `\/`)
	tests := []struct{ name, in, want string }{
		{"PHP slash escape", `{"echo":"Bearer ` + php + `"}`, `{"echo":"Bearer [REDACTED]"}`},
		{"every byte escaped", `{"echo":"` + uEscapes(testValue, false) + `"}`, `{"echo":"[REDACTED]"}`},
		{"in a key", `{"` + uEscapes(testValue, true) + `":1}`, `{"[REDACTED]":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, fn := range []struct {
				name string
				f    func([]byte) []byte
			}{
				{"Redact", func(b []byte) []byte { out, _ := s.Redact(b); return out }},
				{"RedactJSON", func(b []byte) []byte { out, _, _ := s.RedactJSON(b); return out }},
			} {
				out := fn.f([]byte(tc.in))
				if string(out) != tc.want || !json.Valid(out) {
					t.Errorf("%s(%s) = %s, want %s", fn.name, tc.in, out, tc.want)
				}
			}
		})
	}
}

func TestNamesMatchInAnyCase(t *testing.T) {
	s := testScanner()
	lowerGH := strings.ToLower(testGitHub)
	tests := []struct {
		name, text string
		secret     int
	}{
		{"canonicalised header name", "X-Ghp_abcdefghijklmnopqrstuvwxyz0123456789", 1},
		{"lower-cased header name", "x-" + lowerGH, 1},
		{"upper-cased method", strings.ToUpper(testValue), 0},
		{"placeholder in a name", "X-" + strings.ToUpper("fake-placeholder-value-123"), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := s.CheckName([]byte(tc.text), nil)
			if !ok || f.Secret != tc.secret {
				t.Fatalf("CheckName(%q) = %+v, %v; want secret %d", tc.text, f, ok, tc.secret)
			}
			out, n := s.RedactName([]byte(tc.text))
			if n == 0 && tc.secret != 2 {
				t.Fatalf("RedactName(%q) = %q: nothing redacted", tc.text, out)
			}
		})
	}
	// Text mode stays exact for plain values: ordinary words are not folded.
	if _, ok := s.Check([]byte(strings.ToUpper(testValue)), nil); ok {
		t.Error("Check matched an upper-cased plain value in Text mode")
	}
}

func TestCleanTextHasNoHit(t *testing.T) {
	s := testScanner()
	for _, text := range []string{
		"hello world", `{"a":"line\nbreak \u00e9t\u00e9","b":"\/path\/x"}`, "%%%zz%4\\u12\\x1\\",
		wrap(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("nothing to see here ", 20))), 76, "\r\n"),
		"ABCDEF0123456789abcdef", "token=abc", "GET", "Content-Type",
	} {
		if f, ok := s.Check([]byte(text), nil); ok {
			t.Errorf("Check(%q) = %+v", text, f)
		}
		if _, ok := s.CheckName([]byte(text), nil); ok {
			t.Errorf("CheckName(%q) hit", text)
		}
		if out, n := s.Redact([]byte(text)); n != 0 || string(out) != text {
			t.Errorf("Redact(%q) = %q, %d", text, out, n)
		}
	}
}
