package secrets

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
)

// TestStreamCarryCheckFindsSplitValues: a checker that scans windows with CheckBody
// and releases all but StreamCarry bytes of each has seen every value whole before
// releasing a byte of it, wherever the value is cut, in plain and encoded forms.
func TestStreamCarryCheckFindsSplitValues(t *testing.T) {
	s := egressStore(t)
	carry := s.StreamCarry()
	if carry < 64*len(testPlainValue) {
		t.Fatalf("carry %d is less than the scanner's bound for a %d-byte value", carry, len(testPlainValue))
	}
	u, _ := url.Parse("https://api.example.net/upload")
	window := carry + 4096
	forms := []string{testPlainValue, percentAll(testPlainValue), strings.ToUpper(percentAll(testPlainValue))}
	for _, form := range forms {
		for _, at := range []int{0, window - carry - 3, window - len(form)/2, window + 17, 3*window - 1} {
			body := append(bytes.Repeat([]byte("z"), at), form...)
			body = append(body, bytes.Repeat([]byte("z"), window)...)
			released, found := 0, false
			buf := []byte{}
			for off := 0; off < len(body) && !found; {
				end := min(off+window-len(buf), len(body))
				buf = append(buf, body[off:end]...)
				off = end
				if s.CheckBody(nil, "PUT", u, buf) != nil {
					found = true
					break
				}
				keep := carry
				if off == len(body) {
					keep = 0
				}
				if len(buf) > keep {
					released += len(buf) - keep
					buf = append([]byte(nil), buf[len(buf)-keep:]...)
				}
			}
			if !found {
				t.Fatalf("value (%d-byte form) at %d not found", len(form), at)
			}
			if released > at {
				t.Fatalf("value (%d-byte form) at %d found only after %d bytes were released", len(form), at, released)
			}
		}
	}
}

// TestRedactStreamAcrossWrites: RedactStream redacts a value cut across writes.
func TestRedactStreamAcrossWrites(t *testing.T) {
	s := egressStore(t)
	var out bytes.Buffer
	w := s.RedactStream(&out)
	half := len(testPlainValue) / 2
	for _, p := range []string{"a ", testPlainValue[:half], testPlainValue[half:], " b"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "a [REDACTED] b" {
		t.Fatalf("got %q", out.String())
	}
}
