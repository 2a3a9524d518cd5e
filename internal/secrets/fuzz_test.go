package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

func jsonValid(b []byte) bool { return json.Valid(b) }

// fuzzValues are the secrets the fuzz targets' store holds. The seed corpora in
// testdata/fuzz contain them in several forms.
var fuzzValues = []string{testPlainValue, testGitHubValue, `pw"with\json,chars:1234`}

func fuzzStore(f *testing.F) *Store {
	s := openTestStore(f, "")
	for i, v := range fuzzValues {
		mustPut(f, s, "F"+string(rune('A'+i)), api.PutCredentialRequest{Value: v, Host: "api.example.com"})
	}
	return s
}

// forbiddenForms are forms of the values that must never survive redaction, built
// with the standard library.
func forbiddenForms() [][]byte {
	var out [][]byte
	for _, v := range fuzzValues {
		out = append(out,
			[]byte(v),
			[]byte(hex.EncodeToString([]byte(v))),
			[]byte(strings.ToUpper(hex.EncodeToString([]byte(v)))),
			[]byte(base64.RawStdEncoding.EncodeToString([]byte(v))[:len(v)]),
			[]byte(base64.RawURLEncoding.EncodeToString([]byte(v))[:len(v)]),
		)
	}
	return out
}

func FuzzScan(f *testing.F) {
	s := fuzzStore(f)
	forbidden := forbiddenForms()
	f.Add([]byte("plain " + testPlainValue))
	f.Add([]byte(percentAll(testGitHubValue)))
	f.Add([]byte(b64(base64.StdEncoding, "x"+testPlainValue)))
	f.Add([]byte("%%%25%2" + testPlainValue[:5]))
	u, _ := url.Parse("https://api.example.com/x")
	f.Fuzz(func(t *testing.T, data []byte) {
		out, n := s.Redact(data)
		for _, fb := range forbidden {
			if bytes.Contains(out, fb) {
				t.Fatalf("Redact left a value form %q in %q", fb, out)
			}
		}
		if n == 0 && !bytes.Equal(out, data) {
			t.Fatalf("Redact changed text without a hit")
		}
		if _, again := s.Redact(out); again != 0 {
			t.Fatalf("redacted output still has %d hits: %q", again, out)
		}
		err := s.CheckOutbound(nil, "POST", u, http.Header{"X-D": {string(data)}}, data)
		if n > 0 && err == nil {
			t.Fatalf("Redact found a hit that CheckOutbound let through: %q", data)
		}
		if err != nil {
			ae, ok := api.AsError(err)
			if !ok || ae.Code != api.CodeLeakDetected {
				t.Fatalf("CheckOutbound error %v", err)
			}
			for _, v := range fuzzValues {
				if strings.Contains(err.Error(), v) {
					t.Fatalf("error reveals a value: %v", err)
				}
			}
		}
	})
}

func FuzzRedactJSON(f *testing.F) {
	s := fuzzStore(f)
	forbidden := forbiddenForms()
	f.Add([]byte(`{"a":"` + testPlainValue + `","b":[1,2.5e3,true,null]}`))
	f.Add([]byte(`["x` + `pw\"with\\json,chars:1234` + `"]`))
	f.Add([]byte(`{"k` + testGitHubValue + `":{"n":-0.1}}`))
	f.Add([]byte(`"\u0073` + testPlainValue[1:] + `"`))
	f.Add([]byte(`{"broken": "` + testPlainValue))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, _, err := s.RedactJSON(data)
		valid := json.Valid(data)
		if valid && (err != nil || !json.Valid(out)) {
			t.Fatalf("valid input gave err=%v, output valid=%v: %q", err, json.Valid(out), out)
		}
		if !valid && err == nil {
			t.Fatal("invalid input without ErrNotJSON")
		}
		for _, fb := range forbidden {
			if bytes.Contains(out, fb) {
				t.Fatalf("RedactJSON left a value form %q in %q", fb, out)
			}
		}
		if valid {
			// Decoded strings hold no value either (escapes cannot hide one).
			var v any
			dec := json.NewDecoder(bytes.NewReader(out))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			walkStrings(v, func(s string) {
				for _, fv := range fuzzValues {
					if strings.Contains(s, fv) {
						t.Fatalf("decoded output string holds a value: %q", s)
					}
				}
			})
		}
	})
}

func walkStrings(v any, fn func(string)) {
	switch x := v.(type) {
	case string:
		fn(x)
	case []any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	case map[string]any:
		for k, e := range x {
			fn(k)
			walkStrings(e, fn)
		}
	}
}
