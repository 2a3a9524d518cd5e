package leak

import (
	"bytes"
	"testing"
)

// FuzzDecodeRound: the decoder never panics, never grows the text, and its offset
// map is monotonic and inside the original.
func FuzzDecodeRound(f *testing.F) {
	for _, s := range []string{`\u0073\u0033`, `%2f%2F%zz`, `\ud83d\ude00 \ud83d \x41\x4`, `\\u0041`, "a\\", "%"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v := variant{data: b}
		for range maxDecodeRounds {
			next, ok := decodeRound(&v, true, len(b))
			if !ok {
				return
			}
			if len(next.data) > len(v.data) || len(next.off) != len(next.data)+1 {
				t.Fatalf("decoded %q to %q with %d offsets", v.data, next.data, len(next.off))
			}
			for i := 1; i < len(next.off); i++ {
				if next.off[i] < next.off[i-1] || int(next.off[i]) > len(b) {
					t.Fatalf("offsets not monotonic: %v", next.off)
				}
			}
			v = next
		}
	})
}

// FuzzWriter: any text, written in two parts at any cut, comes out with no hit
// left, as Redact of the whole text finds none in its output.
func FuzzWriter(f *testing.F) {
	s := testScanner()
	for _, lf := range leakForms(testValue) {
		f.Add([]byte(lf.text), uint16(len(lf.text)/2))
	}
	f.Fuzz(func(t *testing.T, b []byte, cut uint16) {
		i := int(cut) % (len(b) + 1)
		var out bytes.Buffer
		w := s.NewWriter(&out)
		w.Write(b[:i])
		w.Write(b[i:])
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		want, _ := s.Redact(b)
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("Writer output %q, Redact %q", out.Bytes(), want)
		}
		if _, ok := s.Check(want, nil); ok {
			t.Fatalf("redacted text still holds a hit: %q", want)
		}
	})
}

// FuzzCheckName: CheckName finds whatever Check finds, and a value in any letter
// case; RedactName leaves no hit.
func FuzzCheckName(f *testing.F) {
	s := testScanner()
	f.Add([]byte("X-Ghp_abcdefghijklmnopqrstuvwxyz0123456789"))
	f.Add([]byte("S3CR/3T-VALUE+9XQ"))
	f.Add([]byte("GET"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, exact := s.Check(b, nil)
		_, folded := s.CheckName(b, nil)
		if exact && !folded {
			t.Fatalf("Check found a hit CheckName missed: %q", b)
		}
		out, _ := s.RedactName(b)
		if _, ok := s.CheckName(out, nil); ok {
			t.Fatalf("RedactName left a hit: %q", out)
		}
	})
}
