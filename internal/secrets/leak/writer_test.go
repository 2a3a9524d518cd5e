package leak

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// streamText is longer than a Writer's carry plus chunk, with the value in several
// forms spread through it, so that cuts fall inside, before and after every hit.
func streamText(s *Scanner) []byte {
	var buf bytes.Buffer
	forms := leakForms(testValue)
	w := s.NewWriter(&bytes.Buffer{})
	for i := 0; buf.Len() < w.carry+chunk+16<<10; i++ {
		buf.WriteString(strings.Repeat("filler text, nothing secret here. ", 40))
		buf.WriteString(forms[i%len(forms)].text)
		buf.WriteString(" TOKEN=0123456789abcdef0123 ")
	}
	return buf.Bytes()
}

func writeAll(t *testing.T, s *Scanner, parts ...[]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := s.NewWriter(&out)
	for _, p := range parts {
		if n, err := w.Write(p); err != nil || n != len(p) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestWriterSplitAnywhere: whatever the write boundaries, the stream comes out as
// Redact gives the whole text. The Writer's cut is put at every offset in and
// around each hit, and the whole text is also written a byte at a time.
func TestWriterSplitAnywhere(t *testing.T) {
	s := testScanner()
	text := streamText(s)
	want, n := s.Redact(text)
	if n == 0 {
		t.Fatal("test text has no hit")
	}
	// The Writer scans once it holds carry+chunk bytes and keeps the last carry: a
	// first write of i bytes (i ≥ carry+chunk) puts the cut at i-carry. Put it at
	// every offset in and around each hit.
	carry := s.NewWriter(nil).carry
	offsets := map[int]bool{}
	for _, sp := range s.redactSpans(text, Text) {
		for p := sp.start - 2; p <= sp.end+2; p++ {
			// Every offset near the ends of a hit (where a cut can go wrong).
			edge := p <= sp.start+2 || p >= sp.end-2
			if i := p + carry; edge && i >= carry+chunk && i <= len(text) {
				offsets[i] = true
			}
		}
	}
	if len(offsets) < 50 {
		t.Fatalf("only %d cut offsets fall on hits", len(offsets))
	}
	for i := range offsets {
		if got := writeAll(t, s, text[:i], text[i:]); !bytes.Equal(got, want) {
			t.Fatalf("cut at %d: output differs from Redact of the whole text", i-carry)
		}
	}
	parts := make([][]byte, len(text))
	for i := range text {
		parts[i] = text[i : i+1]
	}
	if got := writeAll(t, s, parts...); !bytes.Equal(got, want) {
		t.Fatal("byte-at-a-time output differs from Redact of the whole text")
	}
}

// TestWriterSplitEveryOffsetShort: a short text with a value split at every offset.
func TestWriterSplitEveryOffsetShort(t *testing.T) {
	s := testScanner()
	for _, f := range leakForms(testValue) {
		text := []byte("head " + f.text + " tail")
		want, _ := s.Redact(text)
		for i := 0; i <= len(text); i++ {
			if got := writeAll(t, s, text[:i], text[i:]); !bytes.Equal(got, want) {
				t.Fatalf("%s split at %d: %q, want %q", f.name, i, got, want)
			}
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("sink failed") }

func TestWriterErrorsAndClose(t *testing.T) {
	s := testScanner()
	w := s.NewWriter(failWriter{})
	big := bytes.Repeat([]byte("x"), w.carry+chunk+1)
	if _, err := w.Write(big); err == nil {
		t.Fatal("Write did not report the sink's error")
	}
	if err := w.Close(); err == nil || w.Close() == nil {
		t.Fatal("Close did not report the sink's error, twice")
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
	// A nil Scanner still redacts patterns.
	var out bytes.Buffer
	nw := (*Scanner)(nil).NewWriter(&out)
	nw.Write([]byte("password=0123456789abcdef0123"))
	nw.Close()
	if out.String() != "password=[REDACTED]" || nw.Redactions() != 1 {
		t.Fatalf("nil Scanner writer = %q, %d", out.String(), nw.Redactions())
	}
}
