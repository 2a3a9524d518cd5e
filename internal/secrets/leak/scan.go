package leak

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MinSecretLen is the shortest value the leak scanner looks for. Shorter values
// (a PIN, "1234567") would match ordinary text everywhere, so they are stored and
// injected but not scanned for; Store logs a warning naming such a credential.
const MinSecretLen = 8

// maxDecodeRounds bounds repeated decoding (SPEC 4.4: percent-decoding up to 10
// rounds; backslash escapes are decoded in the same rounds).
const maxDecodeRounds = 10

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
// text, pattern by pattern, until fn returns false, with the whole match and the
// part to redact (see valueSpan).
func findPatterns(text []byte, fn func(name string, full, value span) bool) {
	slow := false
	for _, u := range unicodeFolds {
		if bytes.Contains(text, u) {
			slow = true
		}
	}
	var lower []byte
	var lowerBuf [shortText]byte
	for _, p := range credentialPatterns {
		if slow {
			for _, m := range p.full.FindAllSubmatchIndex(text, -1) {
				if a, z := valueSpan(m); !fn(p.name, span{m[0], m[1]}, span{a, z}) {
					return
				}
			}
			continue
		}
		hay := text
		if p.fold {
			if lower == nil {
				lower = appendLower(lowerBuf[:0], text)
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
			if !fn(p.name, span{st + m[0], st + m[1]}, span{st + a, st + z}) {
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

func asciiLower(b []byte) []byte { return appendLower(nil, b) }

// appendLower appends b with its ASCII letters in lower case to dst (a stack buffer,
// for the short texts most scans are of).
func appendLower(dst, b []byte) []byte {
	dst = slices.Grow(dst[:0], len(b))[:len(b)]
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst[i] = c
	}
	return dst
}

// shortText is the size of the stack buffer a scan lowers a text into; longer
// texts are lowered into a new slice.
const shortText = 256

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

// needleSet finds every needle of a set in a text in one pass: a Rabin-Karp rolling
// hash over a window of w bytes (the shortest needle, at most maxWindow), a 64 Ki-bit
// filter on the hash, then a map from hash to the needles that start with that window.
// The cost is linear in the text, whatever the number of needles.
type needleSet struct {
	needles []needle
	w       int
	pow     uint64 // hashBase^(w-1)
	filter  []uint64
	byHash  map[uint64][]int
}

// Scanner finds and redacts the values it was built with, in every form it knows,
// and the credential patterns. It is immutable and safe for concurrent use; the zero
// value and a nil *Scanner know no value and still find the patterns.
type Scanner struct {
	names []string
	// exact holds the case-sensitive forms: plain, hex in both cases, base64 and
	// placeholders. foldText holds the forms that match in any letter case in any
	// text (lower-case hex, matched against the lower-cased text: mixed-case hex).
	// foldName adds the lower-cased plain value and placeholder, for text whose case
	// the caller or a proxy may have changed (header names, the method).
	exact, foldText, foldName *needleSet
	maxLen                    int // longest value or placeholder, in bytes
	// clean holds, by Mode, the common words (header names, methods, a few header
	// values) in which this scanner finds nothing, neither to redact nor to report:
	// computed once in New by the same code, they skip the scan of what nearly every
	// request and response carries.
	clean [2]map[string]struct{}
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
	s := &Scanner{}
	type key struct {
		set   *[]needle
		pat   string
		owner int
		form  Form
	}
	var exact, foldText, foldName []needle
	seen := map[key]bool{}
	add := func(set *[]needle, n needle) {
		k := key{set, string(n.pat), n.owner, n.form}
		if len(n.pat) == 0 || seen[k] {
			return
		}
		seen[k] = true
		*set = append(*set, n)
	}
	for _, sp := range specs {
		owner := len(s.names)
		s.names = append(s.names, sp.Name)
		if len(sp.Placeholder) >= MinSecretLen {
			s.maxLen = max(s.maxLen, len(sp.Placeholder))
			add(&exact, needle{pat: []byte(sp.Placeholder), owner: owner, form: FormPlaceholder})
			add(&foldName, needle{pat: asciiLower([]byte(sp.Placeholder)), owner: owner, form: FormPlaceholder})
		}
		if len(sp.Value) < MinSecretLen {
			continue
		}
		s.maxLen = max(s.maxLen, len(sp.Value))
		v := []byte(sp.Value)
		add(&exact, needle{pat: v, owner: owner, form: FormPlain})
		h := hex.EncodeToString(v)
		add(&exact, needle{pat: []byte(h), owner: owner, form: FormHex})
		add(&exact, needle{pat: bytes.ToUpper([]byte(h)), owner: owner, form: FormHex})
		for align := range 3 {
			for _, urlSafe := range []bool{false, true} {
				add(&exact, base64Core(v, align, urlSafe, owner))
			}
		}
		add(&foldText, needle{pat: []byte(h), owner: owner, form: FormHex})
		add(&foldName, needle{pat: asciiLower(v), owner: owner, form: FormPlain})
	}
	foldName = append(foldName, foldText...)
	s.exact, s.foldText, s.foldName = newNeedleSet(exact), newNeedleSet(foldText), newNeedleSet(foldName)
	for _, mode := range []Mode{Text, Name} {
		m := make(map[string]struct{}, 3*len(commonWords))
		for _, w := range commonWords {
			for _, f := range []string{w, strings.ToLower(w), strings.ToUpper(w)} {
				if s.cleanScan([]byte(f), mode) {
					m[f] = struct{}{}
				}
			}
		}
		s.clean[mode] = m
	}
	return s
}

// commonNames are the header names and methods that nearly every request and
// response carries (CommonNames).
var commonNames = []string{
	"Accept", "Accept-Encoding", "Accept-Language", "Accept-Ranges", "Age",
	"Authorization", "Cache-Control", "Connection", "Content-Disposition",
	"Content-Encoding", "Content-Language", "Content-Length", "Content-Type", "Cookie",
	"Date", "Etag", "Expires", "Host", "If-Modified-Since", "If-None-Match",
	"Keep-Alive", "Last-Modified", "Location", "Origin", "Pragma", "Range", "Referer",
	"Server", "Set-Cookie", "Strict-Transport-Security", "Transfer-Encoding",
	"User-Agent", "Vary", "Via", "X-Content-Type-Options", "X-Forwarded-For",
	"X-Request-Id", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
}

// CommonNames returns the header names and methods that nearly every request and
// response carries (a new slice): what the egress path keeps precomputed.
func CommonNames() []string { return slices.Clone(commonNames) }

// commonWords are commonNames and the header values as common; each is also taken
// lower- and upper-cased.
var commonWords = append(slices.Clone(commonNames),
	"application/json", "text/plain", "text/html", "text/plain; charset=utf-8",
	"text/html; charset=utf-8", "application/json; charset=utf-8", "application/octet-stream",
	"nosniff", "keep-alive", "close", "chunked", "gzip", "identity", "no-cache", "bytes", "*",
)

// cleanScan reports whether b holds nothing in mode, by the scan itself: no span to
// redact and nothing Check would report with every placeholder refused (so nothing
// with any placeholder allowed either: an allowed placeholder is one found).
func (s *Scanner) cleanScan(b []byte, mode Mode) bool {
	if len(s.redactSpans(b, mode)) > 0 {
		return false
	}
	_, found := s.scanCheck(b, mode, nil)
	return !found
}

// known reports whether b is one of the common words found clean in mode.
func (s *Scanner) known(b []byte, mode Mode) bool {
	if s == nil {
		return false
	}
	_, ok := s.clean[mode][string(b)]
	return ok
}

func newNeedleSet(needles []needle) *needleSet {
	s := &needleSet{needles: needles, byHash: map[uint64][]int{}}
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
func (s *needleSet) find(data []byte, fn func(pos int, n *needle) bool) {
	if s == nil {
		return
	}
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

// variant is one reading of a text: the text itself, or it decoded one or more
// rounds, possibly with its line breaks removed. off maps a byte of the reading to the
// offset in the original text where the bytes it came from begin (len(data)+1
// entries; nil means the identity).
type variant struct {
	data    []byte
	off     []int32
	round   int  // decoding rounds
	wrapped bool // CR and LF removed: only encoded forms are looked for
}

// origSpan maps [i, j) in the variant to the original text.
func (v *variant) origSpan(i, j int) (int, int) {
	if v.off == nil {
		return i, j
	}
	return int(v.off[i]), int(v.off[j])
}

// readings calls fn with every reading of b, until fn returns false: b itself, then
// each further round of decoding that changes it (at most maxDecodeRounds; a round
// decodes every %XX and every backslash escape, see decodeRound), and after each of
// these, when it holds a CR or LF, the same text with every CR and LF removed
// (base64 and hex wrapped into lines, MIME at 76 columns, PEM at 64, with \r\n or
// \n). The work is bounded: at most 2×(maxDecodeRounds+1) readings, each made in one
// linear pass, so a body of n bytes costs O(n) time and, with offsets, a few times n
// bytes of memory, whatever it holds. withOffsets asks for the offset maps (needed to
// redact; not to detect).
//
// fn gets each reading by value: a reading handed to an unknown function by pointer
// would be allocated on the heap, and most texts scanned (header names and values,
// methods) have only the one reading, which then costs no allocation.
func readings(b []byte, withOffsets bool, fn func(v variant) bool) {
	v := variant{data: b}
	for round := 0; ; round++ {
		if !fn(v) {
			return
		}
		if bytes.IndexByte(v.data, '\n') >= 0 || bytes.IndexByte(v.data, '\r') >= 0 {
			if !fn(stripLines(&v, withOffsets, len(b))) {
				return
			}
		}
		if round == maxDecodeRounds || bytes.IndexByte(v.data, '%') < 0 && bytes.IndexByte(v.data, '\\') < 0 {
			return
		}
		next, ok := decodeRound(&v, withOffsets, len(b))
		if !ok {
			return
		}
		next.round = round + 1
		v = next
	}
}

// builder accumulates a reading and its offset map. It keeps no pointer to the
// variant it reads (only that variant's offset map), so that the variant, a local of
// readings, stays on the stack.
type builder struct {
	srcOff  []int32 // the source variant's offset map (nil: the original text)
	round   int     // the source variant's round
	out     []byte
	off     []int32
	withOff bool
}

func newBuilder(v *variant, withOffsets bool) builder {
	b := builder{srcOff: v.off, round: v.round, out: make([]byte, 0, len(v.data)), withOff: withOffsets}
	if withOffsets {
		b.off = make([]int32, 0, len(v.data)+1)
	}
	return b
}

// emit appends bytes decoded from the source bytes starting at start.
func (b *builder) emit(start int, p ...byte) {
	b.out = append(b.out, p...)
	if b.withOff {
		o := int32(start)
		if b.srcOff != nil {
			o = b.srcOff[start]
		}
		for range p {
			b.off = append(b.off, o)
		}
	}
}

func (b *builder) done(origLen int) variant {
	if b.withOff {
		b.off = append(b.off, int32(origLen))
	}
	return variant{data: b.out, off: b.off, round: b.round}
}

// stripLines returns v without its CR and LF bytes.
func stripLines(v *variant, withOffsets bool, origLen int) variant {
	b := newBuilder(v, withOffsets)
	for i, c := range v.data {
		if c != '\r' && c != '\n' {
			b.emit(i, c)
		}
	}
	out := b.done(origLen)
	out.wrapped = true
	return out
}

// decodeRound decodes, in one pass, every %XX (hex digits in either case) and every
// backslash escape JSON and most languages write: \uXXXX (either case; a surrogate
// pair becomes one UTF-8 rune, a lone surrogate stays as written), \/ \" \\ \b \f
// \n \r \t, and \xXX. It does not need valid JSON: an escape is decoded wherever
// it is, and anything else, an unknown escape included, is kept as it is. A JSON
// document nested in a JSON string (escaped twice) is read after two rounds. ok is
// false when nothing changed.
func decodeRound(v *variant, withOffsets bool, origLen int) (variant, bool) {
	src := v.data
	b := newBuilder(v, withOffsets)
	changed := false
	for i := 0; i < len(src); {
		c := src[i]
		if c == '%' && i+2 < len(src) && isHex(src[i+1]) && isHex(src[i+2]) {
			b.emit(i, unhex(src[i+1])<<4|unhex(src[i+2]))
			i += 3
			changed = true
			continue
		}
		if c == '\\' && i+1 < len(src) {
			if n, dec := backslashEscape(src[i:]); n > 0 {
				b.emit(i, dec...)
				i += n
				changed = true
				continue
			}
		}
		b.emit(i, c)
		i++
	}
	if !changed {
		return variant{}, false
	}
	return b.done(origLen), true
}

// backslashEscape decodes the escape at the start of p (p[0] == '\\'): the number of
// bytes it spans and what it stands for, or 0.
func backslashEscape(p []byte) (int, []byte) {
	switch p[1] {
	case '/', '"', '\\', '\'':
		return 2, p[1:2]
	case 'b':
		return 2, []byte{'\b'}
	case 'f':
		return 2, []byte{'\f'}
	case 'n':
		return 2, []byte{'\n'}
	case 'r':
		return 2, []byte{'\r'}
	case 't':
		return 2, []byte{'\t'}
	case 'x':
		if len(p) >= 4 && isHex(p[2]) && isHex(p[3]) {
			return 4, []byte{unhex(p[2])<<4 | unhex(p[3])}
		}
	case 'u':
		r, ok := hex4(p[2:])
		if !ok {
			return 0, nil
		}
		if utf16.IsSurrogate(r) {
			if r < 0xdc00 && len(p) >= 12 && p[6] == '\\' && p[7] == 'u' {
				if r2, ok := hex4(p[8:]); ok {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						return 12, utf8.AppendRune(nil, dec)
					}
				}
			}
			return 0, nil
		}
		return 6, utf8.AppendRune(nil, r)
	}
	return 0, nil
}

func hex4(p []byte) (rune, bool) {
	if len(p) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p[:4] {
		if !isHex(c) {
			return 0, false
		}
		r = r<<4 | rune(unhex(c))
	}
	return r, true
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

// Mode says how the letter case of a text may have changed on its way, which decides
// which forms match case-insensitively.
type Mode uint8

const (
	// Text is content whose bytes arrive as written: bodies, header values, URLs.
	// Hex and percent-encoding match in any letter case; plain values and base64
	// exactly.
	Text Mode = iota
	// Name is text whose case a client, a proxy or Go's header canonicalisation may
	// change: header names and the request method. Plain values and placeholders
	// match in any ASCII letter case too (a value sent as header "X-ghp_…" arrives as
	// "X-Ghp_…", and a lower-case value as itself).
	Name
)

// hasUpper reports whether b holds an ASCII upper-case letter.
func hasUpper(b []byte) bool {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// needlesIn calls fn for every needle found in reading v (positions in v), in the
// exact forms and, per mode, the case-folded ones, until fn returns false; it
// reports whether it ran to the end. A reading with its line breaks removed is only
// searched for encoded forms (hex, base64).
func (s *Scanner) needlesIn(v *variant, mode Mode, fn func(i int, n *needle) bool) bool {
	if s == nil {
		return true
	}
	ok := true
	s.exact.find(v.data, func(i int, n *needle) bool {
		if v.wrapped && n.form != FormHex && n.form != FormBase64 {
			return true
		}
		ok = fn(i, n)
		return ok
	})
	if !ok {
		return false
	}
	fold := s.foldText
	if mode == Name {
		fold = s.foldName
	}
	if fold == nil || len(fold.needles) == 0 {
		return true
	}
	lower := v.data
	var lowerBuf [shortText]byte
	if hasUpper(v.data) {
		lower = appendLower(lowerBuf[:0], v.data)
	} else if mode == Text {
		return true // lower-case hex was matched exactly
	}
	s.fold(fold, v, lower, fn, &ok)
	return ok
}

func (s *Scanner) fold(set *needleSet, v *variant, lower []byte, fn func(i int, n *needle) bool, ok *bool) {
	set.find(lower, func(i int, n *needle) bool {
		if v.wrapped && n.form != FormHex {
			return true
		}
		*ok = fn(i, n)
		return *ok
	})
}

// redactSpans returns the sorted, merged ranges of b to redact: every known value in
// every form (placeholders excluded: they are dummies) and every pattern match, in
// every reading of b.
func (s *Scanner) redactSpans(b []byte, mode Mode) []span {
	return s.spans(b, mode, nil)
}

// spans is redactSpans that also appends to hold, when not nil, the whole extent of
// every hit: a pattern's key name and separator as well as its value. A streaming
// redactor keeps those bytes together, or a value would lose the key that makes it
// a match.
func (s *Scanner) spans(b []byte, mode Mode, hold *[]span) []span {
	var spans []span
	readings(b, true, func(rv variant) bool {
		v := &rv
		s.needlesIn(v, mode, func(i int, n *needle) bool {
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
			if hold != nil {
				*hold = append(*hold, span{a, z})
			}
			return true
		})
		if !v.wrapped {
			findPatterns(v.data, func(_ string, full, val span) bool {
				a, z := v.origSpan(val.start, val.end)
				spans = append(spans, span{a, z})
				if hold != nil {
					fa, fz := v.origSpan(full.start, full.end)
					*hold = append(*hold, span{fa, fz})
				}
				return true
			})
		}
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

// Redact returns b with every known value, in every form the scanner knows (plain;
// hex in any letter case; base64 standard and URL-safe at any alignment, padded or
// not, also wrapped into lines; each of these percent-encoded or backslash-escaped,
// JSON's \uXXXX and \/ included, up to 10 rounds) and every credential-pattern
// value replaced by "[REDACTED]", and the number of replacements. Only the bytes
// that encode the value are replaced: the text around it, a key name and its
// separator included, is kept. b is returned unchanged, not copied, when nothing
// matched. If a hit survives (a value that overlaps the replacement text itself),
// it tries again, and in the end replaces everything: redaction never falls back to
// the unredacted text.
func (s *Scanner) Redact(b []byte) ([]byte, int) { return s.redact(b, Text) }

// RedactName is Redact for text whose letter case may have changed on its way,
// such as a response header name: plain values and placeholders match in any ASCII
// letter case too (Mode Name).
func (s *Scanner) RedactName(b []byte) ([]byte, int) { return s.redact(b, Name) }

func (s *Scanner) redact(b []byte, mode Mode) ([]byte, int) {
	if s.known(b, mode) {
		return b, 0
	}
	total := 0
	for range 3 {
		spans := s.redactSpans(b, mode)
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
	if len(s.redactSpans(b, mode)) == 0 {
		return b, total
	}
	return []byte(redacted), total + 1
}

// Finding is the first leak the scanner found in outbound content.
type Finding struct {
	Secret  int    // index of the Secret given to New, or -1 for a pattern
	Form    Form   // for a Secret
	Round   int    // decoding rounds (%XX, backslash escapes) of the reading it was in
	Wrapped bool   // found once line breaks were removed
	Folded  bool   // found in a letter case other than the one encoded
	Pattern string // pattern name, when Secret is -1
}

// Check looks for a leak in one piece of outbound content read as Text. It finds
// everything Redact would redact. allowPlaceholder says whether the placeholder of
// Secret i may be there (granted, and bound to this destination); allowed
// placeholders are masked before the patterns run, so a dummy "ghp_…" sent where it
// belongs does not look like a GitHub token. A nil allowPlaceholder allows none.
func (s *Scanner) Check(b []byte, allowPlaceholder func(i int) bool) (Finding, bool) {
	return s.check(b, Text, allowPlaceholder)
}

// CheckName is Check for a header name or a request method as the caller gave it
// (before any canonicalisation): plain values and placeholders match in any ASCII
// letter case too (Mode Name).
func (s *Scanner) CheckName(b []byte, allowPlaceholder func(i int) bool) (Finding, bool) {
	return s.check(b, Name, allowPlaceholder)
}

func (s *Scanner) check(b []byte, mode Mode, allowPlaceholder func(i int) bool) (Finding, bool) {
	if s.known(b, mode) {
		return Finding{}, false
	}
	return s.scanCheck(b, mode, allowPlaceholder)
}

func (s *Scanner) scanCheck(b []byte, mode Mode, allowPlaceholder func(i int) bool) (Finding, bool) {
	if allowPlaceholder == nil {
		allowPlaceholder = func(int) bool { return false }
	}
	var f Finding
	found := false
	readings(b, false, func(rv variant) bool {
		v := &rv
		var allowed []span
		s.needlesIn(v, mode, func(i int, n *needle) bool {
			if n.form == FormPlaceholder && allowPlaceholder(n.owner) {
				allowed = append(allowed, span{i, i + len(n.pat)})
				return true
			}
			f = Finding{Secret: n.owner, Form: n.form, Round: v.round, Wrapped: v.wrapped,
				Folded: !bytes.Equal(v.data[i:i+len(n.pat)], n.pat)}
			found = true
			return false
		})
		if found || v.wrapped {
			return !found
		}
		text := v.data
		if len(allowed) > 0 {
			text = maskSpans(v.data, mergeSpans(allowed))
		}
		findPatterns(text, func(name string, _, _ span) bool {
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
