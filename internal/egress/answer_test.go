package egress

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// proxyAnswerOracle is the answer as encoding/json writes it for the ProxyResponse
// that appendProxyAnswer stands for.
func proxyAnswerOracle(t testing.TB, status int, h http.Header, body []byte, truncated bool) []byte {
	out := ProxyResponse{Status: status, Headers: make(map[string]string, len(h)), Truncated: truncated}
	for k, vs := range h {
		out.Headers[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	if utf8.Valid(body) {
		out.Body = string(body)
	} else {
		out.BodyBase64 = base64.StdEncoding.EncodeToString(body)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendProxyAnswer(t *testing.T) {
	many := http.Header{}
	for i := range 40 {
		many["X-Header-"+strconv.Itoa(i)] = []string{"v" + strconv.Itoa(i)}
	}
	cases := []struct {
		name   string
		status int
		h      http.Header
		body   []byte
		trunc  bool
	}{
		{"empty", 204, http.Header{}, nil, false},
		{"nil header", 200, nil, []byte("x"), false},
		{"json", 200, http.Header{"Content-Type": {"application/json"}, "Etag": {`"abc"`}}, []byte(`{"ok":true,"items":[1,2,3]}`), false},
		{"joined values", 200, http.Header{"Set-Cookie": {"a=1", "b=2"}, "Vary": {"Accept", "Origin"}}, []byte("ok"), true},
		{"html and controls", 500, http.Header{"X-Odd": {"<a href=\"x\">&amp;</a>\t\r\n\x00\x1f\x7f\\"}}, []byte("<script>&\b\f\u2028\u2029</script>"), false},
		{"invalid utf-8 header", 200, http.Header{"X-Bin": {"a\xffb\xc3"}}, []byte("é ok ✓ 𝄞"), false},
		{"binary body", 200, http.Header{"Content-Type": {"application/octet-stream"}}, []byte{0xff, 0x00, 0xfe, 'a'}, false},
		{"lower-case and odd names", 200, http.Header{"x-lower": {"1"}, "X-MiXeD": {"2"}, "Ünï": {"3"}}, nil, false},
		{"more names than the stack holds", 200, many, []byte("m"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := appendProxyAnswer(nil, c.status, c.h, c.body, c.trunc)
			want := proxyAnswerOracle(t, c.status, c.h, c.body, c.trunc)
			if !bytes.Equal(got, want) {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestWriteProxyAnswer: the answer's headers, its length on the wire and its body
// decode as the ProxyResponse it stands for, also past the size where net/http
// would chunk it and for a buffer taken back from the pool.
func TestWriteProxyAnswer(t *testing.T) {
	for _, n := range []int{10, 5000, 10} {
		body := bytes.Repeat([]byte("a"), n)
		rec := httptest.NewRecorder()
		writeProxyAnswer(rec, &Response{Status: 201, Header: http.Header{"Content-Type": {"text/plain"}}, Body: body})
		res := rec.Result()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("status %d, header %v", res.StatusCode, res.Header)
		}
		if cl := res.Header.Get("Content-Length"); n > 2000 && cl != strconv.Itoa(rec.Body.Len()) {
			t.Fatalf("Content-Length %q for %d bytes", cl, rec.Body.Len())
		}
		var pr ProxyResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &pr); err != nil {
			t.Fatal(err)
		}
		if pr.Status != 201 || pr.Body != string(body) || pr.Headers["content-type"] != "text/plain" || !bytes.HasSuffix(rec.Body.Bytes(), []byte("}\n")) {
			t.Fatalf("answer %+v", pr)
		}
	}
}

// FuzzAppendProxyAnswer: the door's answer is byte for byte what encoding/json
// writes for the same ProxyResponse, for any upstream header and body (the
// upstream is untrusted). Header lines are "name:value"; names that lower-case
// alike are left out (a map keeps one of them at random).
func FuzzAppendProxyAnswer(f *testing.F) {
	f.Add(200, "Content-Type:application/json\nSet-Cookie:a=1\nSet-Cookie:b=2", []byte(`{"ok":true}`), false)
	f.Add(502, "X-A:<>&\u2028\nx-b:\xff", []byte("\xff\x00"), true)
	f.Add(0, "", []byte(nil), false)
	f.Fuzz(func(t *testing.T, status int, lines string, body []byte, trunc bool) {
		h := http.Header{}
		seen := map[string]string{}
		for _, l := range strings.Split(lines, "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			if prev, dup := seen[strings.ToLower(k)]; dup && prev != k {
				continue
			}
			seen[strings.ToLower(k)] = k
			h[k] = append(h[k], v)
		}
		got := appendProxyAnswer(nil, status, h, body, trunc)
		want := proxyAnswerOracle(t, status, h, body, trunc)
		if !bytes.Equal(got, want) {
			t.Fatalf("got\n%q\nwant\n%q", got, want)
		}
	})
}
