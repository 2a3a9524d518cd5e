package secrets

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"strings"
)

// MinPlaceholderLen is the shortest value a placeholder-mode credential may have: its
// placeholder has the same length and must be told apart from ordinary text.
const MinPlaceholderLen = 16

const placeholderInfo = "clawbox credentials v1 placeholder"

// knownPrefixes are the token prefixes a placeholder keeps, longest first, so that
// client libraries which check a token's shape accept the dummy.
var knownPrefixes = []string{
	"github_pat_", "sk-proj-", "sk-ant-", "sk-svcacct-",
	"ghp_", "gho_", "ghu_", "ghs_", "ghr_",
	"xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xapp-",
	"glpat-", "npm_", "pypi-", "hf_", "AKIA", "sk_live_", "sk_test_", "rk_live_",
	"sk-",
}

const (
	lowerChars = "abcdefghijklmnopqrstuvwxyz"
	upperChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digitChars = "0123456789"
)

// placeholderFor derives the placeholder of a credential: the value's known prefix
// (ghp_, sk-, xoxb-, …) kept, then one character per remaining character of the value
// drawn from the alphabet the value uses (the union of lower case, upper case and
// digits that occur in it), with the separators - _ and . kept in place. The draw is
// HMAC-SHA256 keyed by a subkey of the master key over the name and value, so the
// placeholder is stable for the life of the value (across restarts) and reveals
// nothing about the value beyond its length, prefix, character classes and separator
// positions.
func placeholderFor(phKey []byte, name, value string) string {
	prefix := ""
	for _, p := range knownPrefixes {
		if strings.HasPrefix(value, p) && len(value) > len(p) {
			prefix = p
			break
		}
	}
	body := value[len(prefix):]
	var alphabet string
	if strings.ContainsAny(body, lowerChars) {
		alphabet += lowerChars
	}
	if strings.ContainsAny(body, upperChars) {
		alphabet += upperChars
	}
	if strings.ContainsAny(body, digitChars) {
		alphabet += digitChars
	}
	if len(alphabet) < 16 {
		// Too small an alphabet (say digits only) would make the dummy easy to
		// confuse with text; widen it to letters and digits.
		alphabet = lowerChars + upperChars + digitChars
	}
	mac := hmac.New(sha256.New, phKey)
	mac.Write([]byte(name))
	mac.Write([]byte{0})
	mac.Write([]byte(value))
	seed := mac.Sum(nil)
	defer clear(seed)

	for attempt := uint32(0); ; attempt++ {
		// Separators are kept unless that keeps failing (a value made only of
		// separators would otherwise be its own placeholder).
		s := drawPlaceholder(seed, attempt, prefix, body, alphabet, attempt < 4)
		// A collision with the value itself is astronomically unlikely; never
		// hand it out anyway.
		if s != value && !strings.Contains(s, value) && !strings.Contains(value, s) {
			return s
		}
	}
}

func drawPlaceholder(seed []byte, attempt uint32, prefix, body, alphabet string, keepSeparators bool) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(body))
	b.WriteString(prefix)
	stream := newByteStream(seed, attempt)
	// Unbiased draw by rejection sampling.
	limit := byte(256 - 256%len(alphabet))
	for i := 0; i < len(body); i++ {
		if c := body[i]; keepSeparators && (c == '-' || c == '_' || c == '.') {
			b.WriteByte(c)
			continue
		}
		for {
			r := stream.next()
			if r < limit {
				b.WriteByte(alphabet[int(r)%len(alphabet)])
				break
			}
		}
	}
	return b.String()
}

// byteStream expands a seed into a stream of bytes: HMAC-SHA256(seed, attempt||counter).
type byteStream struct {
	seed    []byte
	attempt uint32
	counter uint32
	buf     []byte
}

func newByteStream(seed []byte, attempt uint32) *byteStream {
	return &byteStream{seed: seed, attempt: attempt}
}

func (s *byteStream) next() byte {
	if len(s.buf) == 0 {
		mac := hmac.New(sha256.New, s.seed)
		var in [8]byte
		binary.BigEndian.PutUint32(in[:4], s.attempt)
		binary.BigEndian.PutUint32(in[4:], s.counter)
		s.counter++
		mac.Write(in[:])
		s.buf = mac.Sum(nil)
	}
	b := s.buf[0]
	s.buf = s.buf[1:]
	return b
}
