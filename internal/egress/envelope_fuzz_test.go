package egress

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"testing"
	"unicode/utf8"

	"github.com/clawbox/clawbox/api"
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

// FuzzParseEnvelope checks the door's one-pass envelope decoder against a plain
// encoding/json decoding of the same rules (a map of raw members, then each known
// field): both accept the same inputs with the same fields, and refuse the same with
// the same code.
func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://x/","method":"POST","headers":{"A":"b"},"body":"hi"}`,
		` { "url" : "https://x/" , "body_base64" : "aGk=" } `, `{}`, `null`, `[]`, `"x"`, ``,
		`{"url":"a","url":"b"}`, `{"u\u0072l":"x"}`, `{"url":"\u00e9\ud800"}`, "{\"url\":\"\xff\"}",
		`{"url":1}`, `{"method":[1,{"a":"}"}]}`, `{"headers":{"a":null}}`, `{"body":1}`,
		`{"body":"a","body_base64":"YQ=="}`, `{"body":null,"body_base64":"YQ=="}`, `{"x":{"url":"y"}}`,
		`{"url":"x"} {}`, `{"url":"a\"}","headers":{}}`, `{"url":true,"zz":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseEnvelope(bytes.Clone(data))
		want, werr := parseEnvelopeJSON(data)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: one-pass err %v, encoding/json err %v", data, err, werr)
		}
		if err != nil {
			if ge, we := codeOf(err), codeOf(werr); ge != we {
				t.Fatalf("%q: code %q, encoding/json %q", data, ge, we)
			}
			return
		}
		if got.req.URL != want.req.URL || got.req.Method != want.req.Method || !maps.Equal(got.req.Headers, want.req.Headers) ||
			!bytes.Equal(got.body, want.body) || got.base64 != want.base64 {
			t.Fatalf("%q: one-pass %+v, encoding/json %+v", data, got, want)
		}
	})
}

func codeOf(err error) string {
	if e, ok := api.AsError(err); ok {
		return e.Code
	}
	return "not an api error: " + err.Error()
}

// parseEnvelopeJSON is the envelope rules written with encoding/json alone: the
// oracle for FuzzParseEnvelope.
func parseEnvelopeJSON(data []byte) (*envelope, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, decodeError(err)
	}
	if fields == nil {
		return nil, api.Errorf(api.CodeInvalidRequest, "the body must be a JSON object")
	}
	for k := range fields {
		if !proxyRequestFields[k] {
			return nil, invalidField(k, "unknown field")
		}
	}
	e := &envelope{}
	for _, k := range []string{"url", "method", "headers", "body", "body_base64"} {
		raw, ok := fields[k]
		if !ok || string(raw) == "null" {
			continue
		}
		var err error
		switch k {
		case "url":
			err = json.Unmarshal(raw, &e.req.URL)
		case "method":
			err = json.Unmarshal(raw, &e.req.Method)
		case "headers":
			err = json.Unmarshal(raw, &e.req.Headers)
		default:
			if raw[0] != '"' {
				err = errors.New("not a string")
			} else if e.body != nil {
				return nil, invalidField("body_base64", "both")
			}
			e.body, e.base64 = []byte(raw), k == "body_base64"
		}
		if err != nil {
			return nil, invalidField(k, "wrong type")
		}
	}
	return e, nil
}
