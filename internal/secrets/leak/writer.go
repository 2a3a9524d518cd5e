package leak

import (
	"errors"
	"io"
	"slices"
)

// Streaming redaction.
//
// A Writer redacts a stream (a proxied response body, container logs) without
// holding all of it: it keeps the last carry bytes of what it was given back, so a
// secret split across writes is still found whole. carry is
// max(minCarry, carryFactor × the longest value or placeholder): enough for a value
// plain, as hex or base64, percent-encoded a few rounds or written as \u00XX escapes
// (6 bytes a byte) and then percent-encoded (18 bytes a byte), and for a credential
// pattern's key name and separator. A hit whose encoded form spans more than carry
// bytes of the stream (say ten rounds of %25-encoding) is found only when it does not
// straddle a boundary; a pattern value that goes on past the held bytes (an
// unbounded xoxb- token longer than maxHold) is cut there and each piece redacted.
const (
	minCarry    = 1 << 10
	carryFactor = 64
	// chunk is how much a Writer gathers beyond carry before it scans: each byte is
	// scanned about (chunk+carry)/chunk times.
	chunk = 32 << 10
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("leak: write to a closed Writer")

// Writer redacts what is written to it, as Redact (or RedactName) would redact the
// whole stream, and writes the result to the underlying writer. Call Close to flush
// the held tail; until then up to carry+chunk bytes are held back. A Writer is not
// safe for concurrent use. Its output is what Redact gives for the concatenation of
// every write, whatever the write boundaries, within the bound the carry gives (see
// the package constants).
type Writer struct {
	s       *Scanner
	w       io.Writer
	mode    Mode
	carry   int
	maxHold int
	buf     []byte
	n       int
	err     error
	closed  bool
}

// NewWriter returns a Writer that redacts text (Mode Text) into w.
func (s *Scanner) NewWriter(w io.Writer) *Writer {
	carry := s.Carry()
	return &Writer{s: s, w: w, mode: Text, carry: carry, maxHold: 4*carry + chunk}
}

// Write implements io.Writer. It reports len(p) once p is accepted; an error of the
// underlying writer is returned by this or a later Write and by Close.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= w.carry+chunk {
		w.emit(false)
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// Close redacts and writes what is held back. It does not close the underlying
// writer. It is idempotent; a second call returns the first one's error.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err == nil {
		w.emit(true)
	}
	return w.err
}

// Redactions returns how many replacements the Writer has made so far.
func (w *Writer) Redactions() int { return w.n }

// emit writes the redacted head of the buffer, keeping the tail that a hit
// continuing in later writes could reach (everything when final).
func (w *Writer) emit(final bool) {
	if len(w.buf) == 0 {
		return
	}
	if final {
		out, n := w.s.redact(w.buf, w.mode)
		w.write(out, n)
		w.buf = nil
		return
	}
	cut := len(w.buf) - w.carry
	var hold []span
	spans := w.s.spans(w.buf, w.mode, &hold)
	// A hit that reaches the kept tail may grow with later data: keep it whole, a
	// pattern's key name included. Moving the cut back can only make it cross hits
	// that start earlier, so one pass from the latest start suffices.
	slices.SortFunc(hold, func(a, b span) int { return b.start - a.start })
	for _, sp := range hold {
		if sp.start < cut && sp.end >= cut {
			cut = sp.start
		}
	}
	if cut <= 0 {
		if len(w.buf) < w.maxHold {
			return
		}
		cut = len(w.buf) - w.carry // a hit longer than maxHold: cut it
	}
	head := w.buf[:cut]
	out := make([]byte, 0, len(head))
	n, prev := 0, 0
	for _, sp := range spans {
		if sp.start >= cut {
			break
		}
		end := min(sp.end, cut)
		out = append(out, head[prev:sp.start]...)
		out = append(out, redacted...)
		prev = end
		n++
	}
	out = append(out, head[prev:]...)
	if n > 0 {
		// As Redact does: a hit the replacement text itself completes.
		var more int
		out, more = w.s.redact(out, w.mode)
		n += more
	}
	w.write(out, n)
	w.buf = append(w.buf[:0], w.buf[cut:]...)
}

func (w *Writer) write(out []byte, n int) {
	w.n += n
	if _, err := w.w.Write(out); err != nil {
		w.err = err
	}
}

// Carry returns how many bytes a stream scanner must keep from one window into the
// next so that a hit split across windows is found whole: the carry of a Writer.
// A checker that releases all but the last Carry bytes of each scanned window has
// scanned every hit that reaches a released byte (within the bound the package
// constants give).
func (s *Scanner) Carry() int {
	carry := minCarry
	if s != nil {
		carry = max(carry, carryFactor*s.maxLen)
	}
	return carry
}
