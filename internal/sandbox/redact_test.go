package sandbox

import (
	"bytes"
	"strings"
	"testing"
)

// TestLineRedactorSecretAcrossCut: a secret that straddles the point where an
// over-long line is cut is still redacted, whatever the write sizes. It failed
// before the redactor chose its cuts (a fixed cut at 64 KiB split the secret).
func TestLineRedactorSecretAcrossCut(t *testing.T) {
	const secret = "s3cr3t-VALUE-0123456789"
	redact := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(secret), []byte("[REDACTED]")) }
	for _, at := range []int{maxLine - 5, maxLine - 1, maxLine, 2*maxLine - 7, 3*maxLine - 12} {
		for _, chunk := range []int{1 << 20, 4096, 1000} {
			text := strings.Repeat("a", at) + secret + strings.Repeat("b", 3*maxLine) + "\n" + secret + "tail"
			var out bytes.Buffer
			l := &lineRedactor{w: &out, redact: redact}
			for i := 0; i < len(text); i += chunk {
				if _, err := l.Write([]byte(text[i:min(len(text), i+chunk)])); err != nil {
					t.Fatal(err)
				}
			}
			l.Flush()
			got := out.String()
			if strings.Contains(got, "s3cr3t") || strings.Contains(got, "0123456789") {
				t.Errorf("secret at %d, writes of %d: part of it passed unredacted", at, chunk)
			}
			if want := strings.ReplaceAll(text, secret, "[REDACTED]"); got != want {
				t.Errorf("secret at %d, writes of %d: output differs from the text redacted whole (%d vs %d bytes)", at, chunk, len(got), len(want))
			}
		}
	}
}
