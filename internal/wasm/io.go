package wasm

import (
	"bytes"
	"errors"
	"io"
)

// errOutputTooLarge is what a guest's write gets once stdout is over its cap.
var errOutputTooLarge = errors.New("stdout limit exceeded")

// cappedWriter collects a call's stdout up to limit bytes. A write that would go past
// the limit writes nothing, fails, and marks the writer overflowed: the call then
// fails with output_too_large; output is never silently cut.
//
// A guest is single-threaded and only writes while the host waits for the call, so
// the writer needs no lock.
type cappedWriter struct {
	buf      bytes.Buffer
	limit    int64
	overflow bool
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	if w.overflow || int64(w.buf.Len())+int64(len(p)) > w.limit {
		w.overflow = true
		return 0, errOutputTooLarge
	}
	return w.buf.Write(p)
}

// tailWriter keeps the last limit bytes written to it and never fails, so a guest
// flooding stderr costs bounded memory.
type tailWriter struct {
	buf       []byte
	limit     int
	truncated bool
}

func (w *tailWriter) Write(p []byte) (int, error) {
	n := len(p)
	if n >= w.limit {
		w.buf = append(w.buf[:0], p[n-w.limit:]...)
		w.truncated = true
		return n, nil
	}
	if over := len(w.buf) + n - w.limit; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
		w.truncated = true
	}
	w.buf = append(w.buf, p...)
	return n, nil
}

// tail returns at most n of the last bytes kept.
func (w *tailWriter) tail(n int) string {
	b := w.buf
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}

// slot is an instance's stdio, bound when a call takes the instance. Instances of the
// reactor pool are created before any call exists, so their stdio points here.
type slot struct {
	in  io.Reader
	out io.Writer
	err io.Writer
}

type slotReader struct{ s *slot }

func (r slotReader) Read(p []byte) (int, error) {
	if r.s.in == nil {
		return 0, io.EOF
	}
	return r.s.in.Read(p)
}

type slotWriter struct {
	s      *slot
	stderr bool
}

func (w slotWriter) Write(p []byte) (int, error) {
	dst := w.s.out
	if w.stderr {
		dst = w.s.err
	}
	if dst == nil {
		return len(p), nil // before a call: the runtime's start-up output is dropped
	}
	return dst.Write(p)
}
