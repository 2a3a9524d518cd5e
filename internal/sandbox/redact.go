package sandbox

import (
	"bytes"
	"io"
	"sync"
)

// lineRedactor passes output on redacted, a line at a time, so that a secret is
// not split across two redactions and missed. A line longer than maxLine is passed
// on in pieces, cut only where the cut does not split a match: a cut is taken when
// redacting the two sides apart gives exactly what redacting them together gives,
// with at least maxLine bytes of look-ahead after it. A secret (in whatever
// encoded form the redactor finds) shorter than maxLine is therefore never split.
// Only when no cut among the candidates is safe, in a buffer of maxBuffered bytes
// dense with matches, is the buffer redacted and passed on whole.
type lineRedactor struct {
	mu     sync.Mutex
	w      io.Writer
	redact func([]byte) []byte
	buf    []byte
}

const (
	maxLine     = 64 << 10
	maxBuffered = 8 * maxLine
	cutStep     = maxLine / 16
)

func (l *lineRedactor) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		var out []byte
		switch {
		case i >= 0:
			out, l.buf = l.redact(l.buf[:i+1]), l.buf[i+1:]
		case len(l.buf) < 2*maxLine:
			return len(b), nil
		default:
			var ok bool
			if out, ok = l.cut(); !ok {
				if len(l.buf) < maxBuffered {
					return len(b), nil
				}
				out, l.buf = l.redact(l.buf), nil
			}
		}
		if _, err := l.w.Write(out); err != nil {
			return 0, err
		}
	}
}

// cut looks for a safe cut in the first len(buf)-maxLine bytes of the buffer,
// from the furthest back; on success it returns the redacted piece before the cut
// and keeps the rest.
func (l *lineRedactor) cut() ([]byte, bool) {
	whole := l.redact(l.buf)
	for k := len(l.buf) - maxLine; k >= cutStep; k -= cutStep {
		head, tail := l.redact(l.buf[:k]), l.redact(l.buf[k:])
		if len(head)+len(tail) == len(whole) && bytes.HasPrefix(whole, head) && bytes.HasSuffix(whole, tail) {
			l.buf = l.buf[k:]
			return head, true
		}
	}
	return nil, false
}

// Flush writes what is left of an unterminated last line.
func (l *lineRedactor) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.w.Write(l.redact(l.buf))
		l.buf = nil
	}
}
