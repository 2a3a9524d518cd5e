package egress

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/clawbox/clawbox/api"
)

// The door reads a POST /proxy body once, into one buffer of at most MaxRequestBytes,
// and decodes the small fields (url, method, headers) from it without touching the
// body field. The body is decoded in place, in that same buffer, and only once the
// policy has allowed the URL: a request to a refused URL costs one buffer and no
// decoding, whatever its size.

// rawSpan is a JSON value inside the request buffer, kept without copying.
type rawSpan []byte

// UnmarshalJSON keeps data: json.Unmarshal hands it a slice of the caller's buffer,
// which the door owns for the life of the request.
func (s *rawSpan) UnmarshalJSON(data []byte) error {
	*s = data
	return nil
}

// envelope is a decoded POST /proxy body whose body field is still encoded.
type envelope struct {
	req     ProxyRequest // Body and BodyBase64 are left nil; see body
	body    rawSpan      // the JSON string literal of body or body_base64, or nil
	base64  bool         // body holds body_base64
	decoded bool
}

// readEnvelope reads r (at most limit bytes, the MaxBytesReader being the caller's)
// into one buffer of the announced size and decodes it.
func readEnvelope(r io.Reader, contentLength, limit int64) (*envelope, error) {
	readErr := func(err error) error {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(limit)
		}
		return api.Errorf(api.CodeInvalidRequest, "could not read the request body")
	}
	if contentLength > 0 && contentLength <= limit {
		// The announced size, in one buffer: a body that ends early is an error
		// below, one that runs on is too long for its Content-Length (net/http
		// stops reading at it).
		data := make([]byte, contentLength)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, readErr(err)
		}
		return parseEnvelope(data)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, readErr(err)
	}
	return parseEnvelope(buf.Bytes())
}

// parseEnvelope decodes one JSON object of the known fields from data, which it keeps
// (the body field is a slice of it). An unknown field is an error naming it (field
// names match exactly, unlike encoding/json's default); null means absent; of a
// field given twice the last counts, as encoding/json does.
//
// data is checked whole with json.Valid first, so the walk over the object's members
// below reads valid JSON only; it copies nothing but the url and method strings.
func parseEnvelope(data []byte) (*envelope, error) {
	if !json.Valid(data) {
		var v any
		return nil, decodeError(json.Unmarshal(data, &v))
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return nil, api.Errorf(api.CodeInvalidRequest, "the body must be a JSON object")
	}
	var url, method, headers, body, bodyB64 []byte
	unknown, hasUnknown := "", false
	for i = skipSpace(data, i+1); data[i] != '}'; i = skipSpace(data, i+1) {
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		kEnd := skipValue(data, i)
		keyLit := data[i:kEnd]
		i = skipSpace(data, kEnd)      // at ':'
		vStart := skipSpace(data, i+1) // the value
		i = skipValue(data, vStart)
		raw := data[vStart:i]
		i = skipSpace(data, i) - 1 // at the last byte before ',' or '}'
		name := keyLit[1 : len(keyLit)-1]
		if !plainString(name) {
			var k string
			_ = json.Unmarshal(keyLit, &k) // keyLit is valid JSON: this cannot fail
			name = []byte(k)
		}
		switch string(name) { // a conversion in a switch does not allocate
		case "url":
			url = raw
		case "method":
			method = raw
		case "headers":
			headers = raw
		case "body":
			body = raw
		case "body_base64":
			bodyB64 = raw
		default:
			if !hasUnknown {
				unknown, hasUnknown = string(name), true
			}
		}
	}
	if hasUnknown {
		return nil, invalidField(unknown, fmt.Sprintf("unknown field %q", unknown))
	}
	e := &envelope{}
	if err := stringField(url, &e.req.URL); err != nil {
		return nil, invalidField("url", "url has the wrong type")
	}
	if err := stringField(method, &e.req.Method); err != nil {
		return nil, invalidField("method", "method has the wrong type")
	}
	if isSet(headers) && json.Unmarshal(headers, &e.req.Headers) != nil {
		return nil, invalidField("headers", "headers has the wrong type")
	}
	for _, f := range [...]struct {
		name string
		raw  []byte
	}{{"body", body}, {"body_base64", bodyB64}} {
		if !isSet(f.raw) {
			continue
		}
		if f.raw[0] != '"' {
			return nil, invalidField(f.name, f.name+" has the wrong type")
		}
		if e.body != nil {
			return nil, invalidField("body_base64", "give body or body_base64, not both")
		}
		e.body, e.base64 = f.raw, f.name == "body_base64"
	}
	return e, nil
}

// isSet reports whether a member's value was given and is not null.
func isSet(raw []byte) bool { return raw != nil && string(raw) != "null" }

// stringField decodes the JSON string raw into dst (raw absent or null: dst is left
// alone). A string without escapes whose bytes are valid UTF-8 is copied as it is;
// any other goes through encoding/json, which decides what it means.
func stringField(raw []byte, dst *string) error {
	if !isSet(raw) {
		return nil
	}
	if raw[0] != '"' {
		return errors.New("not a string")
	}
	if in := raw[1 : len(raw)-1]; plainString(in) {
		*dst = string(in)
		return nil
	}
	return json.Unmarshal(raw, dst)
}

// plainString reports whether in, the inside of a valid JSON string literal, means
// itself: no escape and valid UTF-8 (encoding/json replaces invalid bytes).
func plainString(in []byte) bool {
	return bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in)
}

// skipSpace returns the index of the first byte at or after i that is not JSON
// white space (len(data) if none).
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

func isDelim(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// skipValue returns the index just past the JSON value that starts at data[i]. data
// must be valid JSON (json.Valid): it does not check what it skips.
func skipValue(data []byte, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			for i++; data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		default:
			if depth == 0 {
				// a number or a literal: it runs to the next delimiter
				for i < len(data) && !isDelim(data[i]) {
					i++
				}
				return i
			}
		}
	}
	return i
}

// decodeBody decodes the body field in place and returns it (nil when there is
// none). It may be called once.
func (e *envelope) decodeBody() ([]byte, error) {
	if e.decoded {
		return nil, errors.New("egress: envelope body decoded twice")
	}
	e.decoded = true
	if e.body == nil {
		return nil, nil
	}
	b, err := unquoteInPlace(e.body)
	if err != nil {
		if e.base64 {
			return nil, invalidField("body_base64", "body_base64: "+err.Error())
		}
		return nil, invalidField("body", "body: "+err.Error())
	}
	if !e.base64 {
		return b, nil
	}
	n, err := base64DecodeInPlace(b)
	if err != nil {
		return nil, invalidField("body_base64", "body_base64 is not valid base64")
	}
	return b[:n], nil
}

// unquoteInPlace decodes the JSON string literal lit (quotes included) into lit's own
// memory and returns the decoded text. Decoding never lengthens a string: every
// escape is at least as long as what it stands for. Invalid UTF-8 is refused rather
// than replaced (a replacement would be longer than the byte it replaces; binary data
// goes in body_base64). A lone surrogate becomes U+FFFD, as in encoding/json.
func unquoteInPlace(lit []byte) ([]byte, error) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return nil, errors.New("not a JSON string")
	}
	s := lit[1 : len(lit)-1]
	w := 0
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '"':
			return nil, errors.New("not a JSON string")
		case c < 0x20:
			return nil, errors.New("control character in a string")
		case c < utf8.RuneSelf && c != '\\':
			s[w] = c
			w++
			r++
		case c >= utf8.RuneSelf:
			ru, size := utf8.DecodeRune(s[r:])
			if ru == utf8.RuneError && size == 1 {
				return nil, errors.New("not valid UTF-8; send binary data in body_base64")
			}
			w += copy(s[w:], s[r:r+size])
			r += size
		default: // backslash
			if r+1 >= len(s) {
				return nil, errors.New("bad escape")
			}
			r++
			switch s[r] {
			case '"', '\\', '/':
				s[w] = s[r]
			case 'b':
				s[w] = '\b'
			case 'f':
				s[w] = '\f'
			case 'n':
				s[w] = '\n'
			case 'r':
				s[w] = '\r'
			case 't':
				s[w] = '\t'
			case 'u':
				ru, ok := hex4(s[r+1:])
				if !ok {
					return nil, errors.New("bad \\u escape")
				}
				r += 5
				if utf16.IsSurrogate(ru) {
					ru2 := utf8.RuneError
					if r+6 <= len(s) && s[r] == '\\' && s[r+1] == 'u' {
						if lo, ok := hex4(s[r+2:]); ok {
							if dec := utf16.DecodeRune(ru, lo); dec != utf8.RuneError {
								ru2, r = dec, r+6
							}
						}
					}
					ru = ru2
				}
				w += utf8.EncodeRune(s[w:], ru)
				continue
			default:
				return nil, errors.New("bad escape")
			}
			w++
			r++
		}
	}
	return s[:w], nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

// base64DecodeInPlace decodes standard padded base64 in b into b's own memory and
// returns the decoded length. It decodes chunk by chunk through a small buffer: the
// write position (3/4 of the read position) never passes what is still to be read.
// Line breaks are ignored, as by encoding/base64.
func base64DecodeInPlace(b []byte) (int, error) {
	k := 0
	for _, c := range b {
		if c != '\r' && c != '\n' {
			b[k] = c
			k++
		}
	}
	b = b[:k]
	if len(b)%4 != 0 {
		return 0, errors.New("bad length")
	}
	const chunk = 4096 // a multiple of 4
	var tmp [chunk / 4 * 3]byte
	w := 0
	for r := 0; r < len(b); r += chunk {
		end := min(r+chunk, len(b))
		if end < len(b) && bytes.IndexByte(b[r:end], '=') >= 0 {
			return 0, errors.New("padding before the end")
		}
		n, err := base64.StdEncoding.Decode(tmp[:], b[r:end])
		if err != nil {
			return 0, err
		}
		w += copy(b[w:], tmp[:n])
	}
	return w, nil
}
