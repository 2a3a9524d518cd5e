package egress

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzUnquoteInPlace checks the door's in-place JSON string decoder against
// encoding/json: on any literal json accepts and that is valid UTF-8, both give the
// same text; whatever it decodes is never longer than the literal; it never panics.
func FuzzUnquoteInPlace(f *testing.F) {
	for _, s := range []string{`""`, `"plain"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u0067hp_\u00e9"`, `"\ud83d\ude00"`,
		`"\ud800"`, `"\udc00\ud800x"`, `"\u12"`, `"\x"`, "\"\xff\"", "\"é€\"", `"a`, `"\"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, lit []byte) {
		orig := bytes.Clone(lit)
		got, err := unquoteInPlace(bytes.Clone(lit))
		var want string
		jerr := json.Unmarshal(orig, &want)
		if err == nil {
			if len(got) > len(orig) {
				t.Fatalf("%q decoded longer: %q", orig, got)
			}
			if jerr != nil {
				t.Fatalf("%q accepted, json refuses it: %v", orig, jerr)
			}
			if string(got) != want {
				t.Fatalf("%q: got %q, json gives %q", orig, got, want)
			}
			return
		}
		if jerr == nil && utf8.Valid(orig) && bytes.Equal(bytes.TrimSpace(orig), orig) {
			t.Fatalf("%q refused (%v), json accepts it as %q", orig, err, want)
		}
	})
}

// FuzzBase64DecodeInPlace checks the chunked in-place decoder against
// encoding/base64's DecodeString.
func FuzzBase64DecodeInPlace(f *testing.F) {
	for _, s := range []string{"", "aGk=", "aGVs\nbG8=", "!!", "aGk", "aGk=aGk=", "AAEC/w==\r\n"} {
		f.Add([]byte(s))
	}
	f.Add(bytes.Repeat([]byte("QUJD"), 2000))
	f.Fuzz(func(t *testing.T, src []byte) {
		want, werr := base64.StdEncoding.DecodeString(string(src))
		b := bytes.Clone(src)
		n, err := base64DecodeInPlace(b)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: in place err %v, DecodeString err %v", src, err, werr)
		}
		if err == nil && !bytes.Equal(b[:n], want) {
			t.Fatalf("%q: got %q, want %q", src, b[:n], want)
		}
	})
}
