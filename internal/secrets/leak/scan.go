package leak

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
)

// MinSecretLen is the shortest value the leak scanner looks for. Shorter values
// (a PIN, "1234567") would match ordinary text everywhere, so they are stored and
// injected but not scanned for; Store logs a warning naming such a credential.
const MinSecretLen = 8

// maxPercentRounds bounds repeated percent-decoding (SPEC 4.4).
const maxPercentRounds = 10

// Redacted is what every hit is replaced with.
const Redacted = "[REDACTED]"

const redacted = Redacted

// credentialPattern is one credential regex of the reference (2.16) with the short
// name a leak error reports and the literals one of which starts every match. The
// assignment and bearer patterns capture their value in their last group: redaction
// replaces only that group, so "TOKEN=…" keeps "TOKEN=" (the name around a secret is
// not the secret). The assignment patterns also accept a quote after the key name,
// so that JSON's "password":"…" is found like password: ….
//
// Each pattern has the short
// name a leak error reports and the literals one of which starts every match. Running
// the regex only where a literal occurs, anchored there, keeps the scan close to
// memchr speed on large bodies; the result is the same as FindAllIndex.
type credentialPattern struct {
	name     string
	re       *regexp.Regexp // anchored at the start of the text it is given
	full     *regexp.Regexp // the regex as the reference gives it
	keywords []string       // lower case when fold
	fold     bool           // keywords match ASCII case-insensitively
}

func newPattern(name, expr string, fold bool, keywords ...string) credentialPattern {
	return credentialPattern{
		name:     name,
		re:       regexp.MustCompile(`\A(?:` + expr + `)`),
		full:     regexp.MustCompile(expr),
		keywords: keywords,
		fold:     fold,
	}
}

// credentialPatterns are compiled once and never modified.
var credentialPatterns = []credentialPattern{
	newPattern("api_key_assignment", `(?i)(api[_\-]?key|apikey)['"]?\s*[:=]\s*['"]?([\w\-]{20,})`, true, "api"),
	newPattern("secret_assignment", `(?i)(secret|token|password|passwd)['"]?\s*[:=]\s*['"]?([\w\-]{16,})`, true, "secret", "token", "passw"),
	newPattern("openai_key", `sk-[a-zA-Z0-9]{20,}`, false, "sk-"),
	newPattern("github_pat", `ghp_[a-zA-Z0-9]{36}`, false, "ghp_"),
	newPattern("github_app_token", `ghs_[a-zA-Z0-9]{36}`, false, "ghs_"),
	newPattern("slack_token", `xox[bprs]-[a-zA-Z0-9\-]+`, false, "xox"),
	newPattern("bearer_token", `(?i)bearer\s+([a-zA-Z0-9\-_.]{20,})`, true, "bearer"),
}

// patternWindow is how much text an anchored attempt first looks at; a match that
// reaches its end is retried on the whole rest of the text.
const patternWindow = 512

// unicodeFolds are the UTF-8 forms of the two non-ASCII runes that (?i) folds onto
// ASCII letters of the keywords (KELVIN SIGN to k, LATIN SMALL LETTER LONG S to s).
// Text holding one is scanned with the plain regexes, which know them.
var unicodeFolds = [][]byte{[]byte("\u212a"), []byte("\u017f")}

// findPatterns calls fn for each non-overlapping match of each credential pattern in
// text, pattern by pattern, until fn returns false.
func findPatterns(text []byte, fn func(name string, start, end int) bool) {
	slow := false
	for _, u := range unicodeFolds {
		if bytes.Contains(text, u) {
			slow = true
		}
	}
	var lower []byte
	for _, p := range credentialPatterns {
		if slow {
			for _, m := range p.full.FindAllSubmatchIndex(text, -1) {
				if a, z := valueSpan(m); !fn(p.name, a, z) {
					return
				}
			}
			continue
		}
		hay := text
		if p.fold {
			if lower == nil {
				lower = asciiLower(text)
			}
			hay = lower
		}
		var starts []int
		for _, kw := range p.keywords {
			for off := 0; ; {
				i := bytes.Index(hay[off:], []byte(kw))
				if i < 0 {
					break
				}
				starts = append(starts, off+i)
				off += i + 1
			}
		}
		slices.Sort(starts)
		next := 0
		for _, st := range starts {
			if st < next {
				continue
			}
			end := min(len(text), st+patternWindow)
			m := p.re.FindSubmatchIndex(text[st:end])
			if m != nil && st+m[1] == end && end < len(text) {
				m = p.re.FindSubmatchIndex(text[st:])
			}
			if m == nil {
				continue
			}
			a, z := valueSpan(m)
			if !fn(p.name, st+a, st+z) {
				return
			}
			next = st + m[1]
		}
	}
}

// valueSpan returns the part of a match to redact: its last capture group when the
// pattern has one (the value after a key name or "Bearer"), else the whole match.
func valueSpan(m []int) (int, int) {
	if k := len(m); k >= 4 && m[k-2] >= 0 {
		return m[k-2], m[k-1]
	}
	return m[0], m[1]
}

func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// form is how a needle encodes its value.
type Form uint8

const (
	FormPlain Form = iota
	FormHex
	FormBase64
	FormPlaceholder
)

func (f Form) String() string {
	switch f {
	case FormHex:
		return "hex"
	case FormBase64:
		return "base64"
	case FormPlaceholder:
		return "placeholder"
	default:
		return "plain"
	}
}

// needle is one byte string the scanner looks for.
type needle struct {
	pat   []byte
	owner int // index into scanner.names
	form  Form
	// For base64: how many alphabet characters just before and after pat also carry
	// bits of the value (mixed with neighbouring data); redaction takes them too.
	extL, extR int
}

// scanner finds every needle in a text in one pass: a Rabin-Karp rolling hash over a
// window of w bytes (the shortest needle, at most maxWindow), a 64 Ki-bit filter on
// the hash, then a map from hash to the needles that start with that window. The cost
// is linear in the text, whatever the number of needles. A scanner is immutable and
// safe for concurrent use.
type Scanner struct {
	names   []string
	needles []needle
	w       int
	pow     uint64 // hashBase^(w-1)
	filter  []uint64
	byHash  map[uint64][]int
}

const (
	hashBase  = 1099511628211
	maxWindow = 16
)

// Secret is one credential as the scanner sees it. Its index in the slice given to
// New is the number a Finding reports and allowPlaceholder functions receive.
type Secret struct {
	Name        string // for messages; never the value
	Value       string // scanned for when at least MinSecretLen bytes
	Placeholder string // "" when the credential is not in placeholder mode
}

// New precomputes every encoded form of every value long enough to scan. The
// Scanner is immutable and safe for concurrent use.
func New(specs []Secret) *Scanner {
	s := &Scanner{byHash: map[uint64][]int{}}
	type key struct {
		pat   string
		owner int
		form  Form
	}
	seen := map[key]bool{}
	add := func(n needle) {
		k := key{string(n.pat), n.owner, n.form}
		if len(n.pat) == 0 || seen[k] {
			return
		}
		seen[k] = true
		s.needles = append(s.needles, n)
	}
	for _, sp := range specs {
		owner := len(s.names)
		s.names = append(s.names, sp.Name)
		if len(sp.Placeholder) >= MinSecretLen {
			add(needle{pat: []byte(sp.Placeholder), owner: owner, form: FormPlaceholder})
		}
		if len(sp.Value) < MinSecretLen {
			continue
		}
		v := []byte(sp.Value)
		add(needle{pat: v, owner: owner, form: FormPlain})
		h := hex.EncodeToString(v)
		add(needle{pat: []byte(h), owner: owner, form: FormHex})
		add(needle{pat: bytes.ToUpper([]byte(h)), owner: owner, form: FormHex})
		for align := range 3 {
			for _, urlSafe := range []bool{false, true} {
				add(base64Core(v, align, urlSafe, owner))
			}
		}
	}
	if len(s.needles) == 0 {
		return s
	}
	s.w = maxWindow
	for _, n := range s.needles {
		s.w = min(s.w, len(n.pat))
	}
	s.pow = 1
	for range s.w - 1 {
		s.pow *= hashBase
	}
	s.filter = make([]uint64, 1<<16/64)
	for i, n := range s.needles {
		h := rollInit(n.pat[:s.w])
		s.byHash[h] = append(s.byHash[h], i)
		f := filterIndex(h)
		s.filter[f>>6] |= 1 << (f & 63)
	}
	return s
}

// base64Core returns the part of the base64 encoding of v that is the same wherever
// v sits in a larger stream whose length before v is ≡ align (mod 3): the characters
// that carry bits of v only. It matches padded and unpadded text alike, because
// padding only ever follows the last, mixed characters.
func base64Core(v []byte, align int, urlSafe bool, owner int) needle {
	enc := base64.RawStdEncoding
	if urlSafe {
		enc = base64.RawURLEncoding
	}
	buf := make([]byte, align+len(v))
	copy(buf[align:], v)
	full := enc.EncodeToString(buf)
	n := align + len(v)
	start := [3]int{0, 2, 3}[align]
	end := n/3*4 + [3]int{0, 1, 2}[n%3]
	return needle{
		pat:   []byte(full[start:end]),
		owner: owner,
		form:  FormBase64,
		extL:  [3]int{0, 1, 1}[align],
		extR:  [3]int{0, 1, 1}[n%3],
	}
}

func rollInit(b []byte) uint64 {
	var h uint64
	for _, c := range b {
		h = h*hashBase + uint64(c)
	}
	return h
}

func filterIndex(h uint64) uint64 { return (h * 0x9E3779B97F4A7C15) >> 48 }

// find calls fn for every needle occurrence in data, in order of position, until fn
// returns false.
func (s *Scanner) find(data []byte, fn func(pos int, n *needle) bool) {
	w := s.w
	if len(s.needles) == 0 || len(data) < w {
		return
	}
	h := rollInit(data[:w])
	for i := 0; ; i++ {
		if f := filterIndex(h); s.filter[f>>6]&(1<<(f&63)) != 0 {
			for _, ni := range s.byHash[h] {
				n := &s.needles[ni]
				if bytes.HasPrefix(data[i:], n.pat) && !fn(i, n) {
					return
				}
			}
		}
		if i+w >= len(data) {
			return
		}
		h = (h-uint64(data[i])*s.pow)*hashBase + uint64(data[i+w])
	}
}

// variant is one way to read a text: the text itself, or it percent-decoded one or
// more rounds. off maps a byte of the variant to the offset in the original text where
// the bytes it came from begin (len(data)+1 entries; nil means the identity).
type variant struct {
	data  []byte
	off   []int32
	round int
}

// origSpan maps [i, j) in the variant to the original text.
func (v *variant) origSpan(i, j int) (int, int) {
	if v.off == nil {
		return i, j
	}
	return int(v.off[i]), int(v.off[j])
}

// variants calls fn with b and then with each further round of percent-decoding that
// changes it (at most maxPercentRounds), until fn returns false. withOffsets asks for
// the offset map (needed to redact; not to detect).
func variants(b []byte, withOffsets bool, fn func(v *variant) bool) {
	v := &variant{data: b}
	if !fn(v) {
		return
	}
	for round := 1; round <= maxPercentRounds; round++ {
		if bytes.IndexByte(v.data, '%') < 0 {
			return
		}
		next, ok := percentDecode(v, withOffsets, len(b))
		if !ok {
			return
		}
		next.round = round
		v = next
		if !fn(v) {
			return
		}
	}
}

// percentDecode decodes every %XX of v (either case). ok is false when nothing changed.
func percentDecode(v *variant, withOffsets bool, origLen int) (*variant, bool) {
	src := v.data
	out := make([]byte, 0, len(src))
	var off []int32
	if withOffsets {
		off = make([]int32, 0, len(src)+1)
	}
	changed := false
	for i := 0; i < len(src); {
		start := i
		if src[i] == '%' && i+2 < len(src) && isHex(src[i+1]) && isHex(src[i+2]) {
			out = append(out, unhex(src[i+1])<<4|unhex(src[i+2]))
			i += 3
			changed = true
		} else {
			out = append(out, src[i])
			i++
		}
		if withOffsets {
			if v.off == nil {
				off = append(off, int32(start))
			} else {
				off = append(off, v.off[start])
			}
		}
	}
	if !changed {
		return nil, false
	}
	if withOffsets {
		off = append(off, int32(origLen))
	}
	return &variant{data: out, off: off}, true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// isBase64Char reports whether c belongs to either base64 alphabet (the standard and
// the URL-safe forms of one value may share a needle).
func isBase64Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '+' || c == '/' || c == '-' || c == '_'
}

// span is a half-open byte range of the original text.
type span struct{ start, end int }

// redactSpans returns the sorted, merged ranges of b to redact: every known value in
// every form (placeholders excluded: they are dummies) and every pattern match, in b
// and in each percent-decoded reading of it.
func (s *Scanner) redactSpans(b []byte) []span {
	var spans []span
	variants(b, true, func(v *variant) bool {
		s.find(v.data, func(i int, n *needle) bool {
			if n.form == FormPlaceholder {
				return true
			}
			st, en := i, i+len(n.pat)
			for k := 0; k < n.extL && st > 0 && isBase64Char(v.data[st-1]); k++ {
				st--
			}
			for k := 0; k < n.extR && en < len(v.data) && isBase64Char(v.data[en]); k++ {
				en++
			}
			for k := 0; k < 2 && n.form == FormBase64 && en < len(v.data) && v.data[en] == '='; k++ {
				en++
			}
			a, z := v.origSpan(st, en)
			spans = append(spans, span{a, z})
			return true
		})
		findPatterns(v.data, func(_ string, i, j int) bool {
			a, z := v.origSpan(i, j)
			spans = append(spans, span{a, z})
			return true
		})
		return true
	})
	return mergeSpans(spans)
}

func mergeSpans(spans []span) []span {
	if len(spans) < 2 {
		return spans
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	out := spans[:1]
	for _, sp := range spans[1:] {
		last := &out[len(out)-1]
		if sp.start <= last.end {
			last.end = max(last.end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// redact returns b with every span of redactSpans replaced by "[REDACTED]" and the
// number of replacements. If a hit survives (a value that overlaps the replacement
// text itself), it tries again, and in the end replaces everything: redaction never
// falls back to the unredacted text.
func (s *Scanner) Redact(b []byte) ([]byte, int) {
	total := 0
	for range 3 {
		spans := s.redactSpans(b)
		if len(spans) == 0 {
			return b, total
		}
		var out bytes.Buffer
		out.Grow(len(b))
		prev := 0
		for _, sp := range spans {
			out.Write(b[prev:sp.start])
			out.WriteString(redacted)
			prev = sp.end
		}
		out.Write(b[prev:])
		b = out.Bytes()
		total += len(spans)
	}
	if len(s.redactSpans(b)) == 0 {
		return b, total
	}
	return []byte(redacted), total + 1
}

// Finding is the first leak the scanner found in outbound content.
type Finding struct {
	Secret  int    // credential index, or -1 for a pattern
	Form    Form   // for a credential
	Round   int    // percent-decoding rounds of the variant it was found in
	Pattern string // pattern name, when owner is -1
}

// check looks for a leak in one piece of outbound content. allowPlaceholder says
// whether the placeholder of credential owner may be there (granted, and bound to
// this destination); allowed placeholders are masked before the patterns run, so a
// dummy "ghp_…" sent where it belongs does not look like a GitHub token.
func (s *Scanner) Check(b []byte, allowPlaceholder func(owner int) bool) (Finding, bool) {
	var f Finding
	found := false
	variants(b, false, func(v *variant) bool {
		var allowed []span
		s.find(v.data, func(i int, n *needle) bool {
			if n.form == FormPlaceholder && allowPlaceholder(n.owner) {
				allowed = append(allowed, span{i, i + len(n.pat)})
				return true
			}
			f = Finding{Secret: n.owner, Form: n.form, Round: v.round}
			found = true
			return false
		})
		if found {
			return false
		}
		text := v.data
		if len(allowed) > 0 {
			text = maskSpans(v.data, mergeSpans(allowed))
		}
		findPatterns(text, func(name string, _, _ int) bool {
			f = Finding{Secret: -1, Pattern: name, Round: v.round}
			found = true
			return false
		})
		return !found
	})
	return f, found
}

// maskSpans returns b with each span replaced by one NUL byte, which no credential
// pattern matches or joins across.
func maskSpans(b []byte, spans []span) []byte {
	out := make([]byte, 0, len(b))
	prev := 0
	for _, sp := range spans {
		out = append(out, b[prev:sp.start]...)
		out = append(out, 0)
		prev = sp.end
	}
	return append(out, b[prev:]...)
}

// CheckJSONStrings is Check applied to the decoded text of every string with an
// escape in it in b, when b is a valid JSON document: a JSON body can spell a value
// with \u escapes.
func (s *Scanner) CheckJSONStrings(b []byte, allowPlaceholder func(owner int) bool) (Finding, bool) {
	var f Finding
	found := false
	jsonEscapedStrings(b, func(str []byte) bool {
		f, found = s.Check(str, allowPlaceholder)
		return !found
	})
	return f, found
}

// jsonEscapedStrings calls fn with the decoded text of every string in a valid JSON
// document b that has an escape in it, until fn returns false.
func jsonEscapedStrings(b []byte, fn func([]byte) bool) {
	if bytes.IndexByte(b, '\\') < 0 || !json.Valid(b) {
		return
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		j := stringEnd(b, i)
		lit := b[i:j]
		i = j - 1
		if bytes.IndexByte(lit, '\\') < 0 {
			continue
		}
		var str string
		if json.Unmarshal(lit, &str) == nil && !fn([]byte(str)) {
			return
		}
	}
}
