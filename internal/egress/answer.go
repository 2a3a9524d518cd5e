package egress

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// The door's POST /proxy answer is encoded by appending to one pooled buffer: the
// bytes are exactly those of encoding/json marshalling the ProxyResponse the answer
// stands for (header names lower-cased, values of a repeated header joined with
// ", ", keys sorted, the body as a string when it is UTF-8 and in body_base64
// otherwise), checked by FuzzAppendProxyAnswer, without building that map, joining
// those values or copying the body into a string first.

// answerBufs holds encoding buffers; one larger than maxPooledAnswer is not kept.
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

const maxPooledAnswer = 256 << 10

// Shared header values of the door's JSON answers. net/http only reads them; a
// later Add appends to a full slice and so copies it.
var (
	jsonContentType = []string{"application/json"}
	noSniff         = []string{"nosniff"}
)

// writeProxyAnswer writes the 200 answer of POST /proxy for resp.
func writeProxyAnswer(w http.ResponseWriter, resp *Response) {
	bp := answerBufs.Get().(*[]byte)
	b := appendProxyAnswer((*bp)[:0], resp.Status, resp.Header, resp.Body, resp.Truncated)
	b = append(b, '\n') // as json.Encoder ends a value
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = noSniff
	if len(b) > 2048 {
		// net/http sets Content-Length itself for an answer it buffers whole (up
		// to 2 KiB); a longer one would otherwise go chunked.
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if cap(b) <= maxPooledAnswer {
		*bp = b
		answerBufs.Put(bp)
	}
}

// appendProxyAnswer appends the JSON object of api.ProxyResponse for an upstream
// answer: its status, header, body and whether the body was truncated.
func appendProxyAnswer(b []byte, status int, header http.Header, body []byte, truncated bool) []byte {
	b = append(b, `{"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"headers":`...)
	b = appendLowerHeader(b, header)
	if utf8.Valid(body) {
		b = append(b, `,"body":`...)
		// Read only, while body is not written to: no copy of a body of up to
		// proxy.max_response_bytes into a string.
		b = appendJSONString(b, unsafe.String(unsafe.SliceData(body), len(body)))
	} else {
		b = append(b, `,"body":"","body_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, body)
		b = append(b, '"')
	}
	b = append(b, `,"truncated":`...)
	b = strconv.AppendBool(b, truncated)
	return append(b, '}')
}

// headerKey is one header of an answer: its name lower-cased (ASCII, as
// strings.ToLower does for the tokens a header name may hold) and its values.
type headerKey struct {
	lower string
	vals  []string
}

// appendLowerHeader appends h as a JSON object of lower-cased names, sorted, each
// mapped to its values joined with ", ". Two names that lower-case alike (only a
// header map built by hand can hold both) keep the last in sorted order, as a
// map assignment in that order would.
func appendLowerHeader(b []byte, h http.Header) []byte {
	if h == nil {
		return append(b, "{}"...)
	}
	var keysArr [16]headerKey
	keys := keysArr[:0]
	for k, vs := range h {
		keys = append(keys, headerKey{lower: lowerName(k), vals: vs})
	}
	slices.SortStableFunc(keys, func(a, b headerKey) int { return strings.Compare(a.lower, b.lower) })
	b = append(b, '{')
	first := true
	for i, k := range keys {
		if i+1 < len(keys) && keys[i+1].lower == k.lower {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, k.lower)
		b = append(b, ':', '"')
		for j, v := range k.vals {
			if j > 0 {
				b = append(b, ", "...)
			}
			b = appendJSONStringBody(b, v)
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

// lowerName is strings.ToLower(k) without a copy for the common case: a
// lower-case name, or one of the canonical names of commonCaseForms.
func lowerName(k string) string {
	for i := 0; i < len(k); i++ {
		if c := k[i]; 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf {
			if f, ok := commonCaseForms[k]; ok {
				return f[1]
			}
			return strings.ToLower(k)
		}
	}
	return k
}

// appendJSONString appends s as a JSON string as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONStringBody(b, s)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONStringBody appends the inside of s's JSON string as encoding/json's
// default (HTML-safe) encoder writes it: <, > and & as \u003c, \u003e and \u0026,
// U+2028 and U+2029 escaped, invalid UTF-8 as \ufffd.
func appendJSONStringBody(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
