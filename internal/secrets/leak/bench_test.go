package leak

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// benchScanner knows 50 values, the order of a busy installation.
func benchScanner() *Scanner {
	var specs []Secret
	for i := range 50 {
		sp := Secret{Name: fmt.Sprintf("CRED_%d", i), Value: fmt.Sprintf("bench-secret-%02d-0123456789abcdefghij", i)}
		if i%2 == 0 {
			sp.Placeholder = fmt.Sprintf("bench-dummy-%02d-zyxwvutsrqponmlkjihgf", i)
		}
		specs = append(specs, sp)
	}
	return New(specs)
}

// benchText is 1 MiB of JSON-ish text with escapes, percent-encoding and line
// breaks (so every reading is made) and no secret in it.
func benchText() []byte {
	var buf bytes.Buffer
	for i := 0; buf.Len() < 1<<20; i++ {
		fmt.Fprintf(&buf, "{\"id\":%d,\"name\":\"item\\u0020%d\",\"tags\":[\"a%%20b\",\"c\"],\"blob\":\"QUJDREVGR0hJSktMTU5PUA==\"},\n", i, i)
	}
	return buf.Bytes()
}

func BenchmarkCheck1MiB(b *testing.B) {
	s, text := benchScanner(), benchText()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, ok := s.Check(text, nil); ok {
			b.Fatal("hit")
		}
	}
}

func BenchmarkRedact1MiB(b *testing.B) {
	s, text := benchScanner(), benchText()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		s.Redact(text)
	}
}

func BenchmarkRedactJSON1MiB(b *testing.B) {
	s, text := benchScanner(), benchText()
	text = append(append([]byte{'['}, bytes.TrimSuffix(text, []byte(",\n"))...), ']')
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		s.RedactJSON(text)
	}
}

func BenchmarkWriter1MiB(b *testing.B) {
	s, text := benchScanner(), benchText()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		w := s.NewWriter(io.Discard)
		for i := 0; i < len(text); i += 4096 {
			w.Write(text[i:min(len(text), i+4096)])
		}
		w.Close()
	}
}
