package sandbox

import (
	"bytes"
	"io"
	"sync"
)

// lineRedactor passes output on a line at a time, redacted, so that a secret is
// never split across two writes and missed. A line longer than maxLine is passed
// on in maxLine pieces.
type lineRedactor struct {
	mu     sync.Mutex
	w      io.Writer
	redact func([]byte) []byte
	buf    []byte
}

const maxLine = 64 << 10

func (l *lineRedactor) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) < maxLine {
				return len(b), nil
			}
			i = maxLine - 1
		}
		line := l.buf[:i+1]
		if _, err := l.w.Write(l.redact(line)); err != nil {
			return 0, err
		}
		l.buf = l.buf[i+1:]
	}
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
