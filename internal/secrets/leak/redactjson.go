package leak

import (
	"bytes"
	"encoding/json"
	"errors"
)

// ErrNotJSON is returned by RedactJSON when its input is not valid JSON. The bytes
// returned with it are the input redacted as text: still safe to pass on.
var ErrNotJSON = errors.New("not valid JSON: redacted as text")

// redactedJSON is the JSON string that replaces a value holding a hit.
const redactedJSON = `"[REDACTED]"`

// jsonToken is the place of one value token in the output.
type jsonToken struct{ start, end int }

// RedactJSON redacts a JSON document value by value: every string (object keys
// included) is decoded, redacted like Redact and re-encoded, and a number that holds a
// hit becomes the string "[REDACTED]". The result is valid JSON whenever raw is, and
// it never falls back to unredacted text: if a hit spans several values (a value with
// JSON punctuation in it), those values are replaced whole, and failing that the whole
// document becomes "[REDACTED]". Invalid JSON is redacted as text and returned with
// ErrNotJSON.
func (sc *Scanner) RedactJSON(raw []byte) ([]byte, int, error) {
	if !json.Valid(raw) {
		out, n := sc.Redact(raw)
		return out, n, ErrNotJSON
	}
	// Hits in the raw text. A token needs the full treatment only when it overlaps
	// one, or when it is a string with escapes (its decoded text differs from the raw
	// bytes). Percent-decoding and the regexes cannot tell a token apart from its
	// surroundings (a token starts with a quote, a digit or a minus), so whatever a
	// token alone would show, the whole text shows too.
	rawSpans := sc.redactSpans(raw, Text)
	if len(rawSpans) == 0 && bytes.IndexByte(raw, '\\') < 0 {
		return raw, 0, nil
	}
	var out bytes.Buffer
	out.Grow(len(raw))
	var toks []jsonToken
	total := 0
	si := 0
	for i := 0; i < len(raw); {
		c := raw[i]
		var j int
		switch {
		case c == '"':
			j = stringEnd(raw, i)
		case c == '-' || '0' <= c && c <= '9':
			j = i + 1
			for j < len(raw) && isNumberByte(raw[j]) {
				j++
			}
		case c == 't' || c == 'n':
			j = i + 4
		case c == 'f':
			j = i + 5
		default:
			out.WriteByte(c)
			i++
			continue
		}
		lit := raw[i:j]
		start := out.Len()
		for si < len(rawSpans) && rawSpans[si].end <= i {
			si++
		}
		overlaps := si < len(rawSpans) && rawSpans[si].start < j
		if overlaps || (c == '"' && bytes.IndexByte(lit, '\\') >= 0) {
			rep, n := sc.redactJSONToken(lit, overlaps)
			out.Write(rep)
			total += n
		} else {
			out.Write(lit)
		}
		toks = append(toks, jsonToken{start, out.Len()})
		i = j
	}
	result := out.Bytes()
	// A hit that crosses token boundaries (a value containing `",` and the like):
	// replace every token it touches.
	for range 2 {
		spans := sc.redactSpans(result, Text)
		if len(spans) == 0 {
			return result, total, nil
		}
		result, toks = replaceTokens(result, toks, spans)
		total += len(spans)
	}
	if len(sc.redactSpans(result, Text)) == 0 {
		return result, total, nil
	}
	return []byte(redactedJSON), total + 1, nil
}

// redactJSONToken redacts one JSON value token (string, number or literal); rawHit
// says whether its raw bytes overlap a hit.
func (sc *Scanner) redactJSONToken(lit []byte, rawHit bool) ([]byte, int) {
	if lit[0] != '"' {
		if !rawHit {
			return lit, 0
		}
		return []byte(redactedJSON), 1
	}
	var str string
	if err := json.Unmarshal(lit, &str); err != nil {
		// Unreachable for valid JSON; never pass the token on unchecked.
		return []byte(redactedJSON), 1
	}
	red, n := sc.Redact([]byte(str))
	if n == 0 && !rawHit {
		return lit, 0
	}
	if n == 0 {
		// The raw token holds a hit its decoded text does not (escapes): drop it.
		return []byte(redactedJSON), 1
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(string(red)); err != nil {
		return []byte(redactedJSON), n
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(sc.redactSpans(b, Text)) > 0 {
		return []byte(redactedJSON), n
	}
	return b, n
}

// replaceTokens replaces every token that overlaps a span with "[REDACTED]".
func replaceTokens(b []byte, toks []jsonToken, spans []span) ([]byte, []jsonToken) {
	var out bytes.Buffer
	out.Grow(len(b))
	newToks := make([]jsonToken, 0, len(toks))
	prev := 0
	si := 0
	for _, t := range toks {
		for si < len(spans) && spans[si].end <= t.start {
			si++
		}
		hit := si < len(spans) && spans[si].start < t.end
		out.Write(b[prev:t.start])
		start := out.Len()
		if hit {
			out.WriteString(redactedJSON)
		} else {
			out.Write(b[t.start:t.end])
		}
		newToks = append(newToks, jsonToken{start, out.Len()})
		prev = t.end
	}
	out.Write(b[prev:])
	return out.Bytes(), newToks
}

// stringEnd returns the index just after the string literal starting at raw[i] == '"'.
func stringEnd(raw []byte, i int) int {
	for j := i + 1; j < len(raw); j++ {
		switch raw[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(raw)
}

func isNumberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}
