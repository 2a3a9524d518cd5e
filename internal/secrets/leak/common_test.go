package leak

import (
	"strings"
	"testing"
)

// TestCommonWordsKnownClean: the words New finds clean skip the scan, and give
// exactly what the scan gives; a stored value that is a common word (or holds one)
// is never among them.
func TestCommonWordsKnownClean(t *testing.T) {
	s := New([]Secret{
		{Name: "STS", Value: "Strict-Transport-Security"},
		{Name: "JSON", Value: "application/json; charset=utf-8"},
		{Name: "TOKEN", Value: "ghp_abcdefghijklmnopqrstuvwxyz0123456789", Placeholder: "CLAWBOX_PLACEHOLDER_TOKEN_0123456789"},
	})
	for _, mode := range []Mode{Text, Name} {
		for _, w := range commonWords {
			for _, f := range []string{w, strings.ToLower(w), strings.ToUpper(w)} {
				b := []byte(f)
				slowClean := len(s.redactSpans(b, mode)) == 0
				if _, found := s.scanCheck(b, mode, nil); found {
					slowClean = false
				}
				if s.known(b, mode) != slowClean {
					t.Errorf("mode %d, %q: known %v, scan says clean %v", mode, f, s.known(b, mode), slowClean)
				}
				out, n := s.redact(b, mode)
				if wantOut, wantN := s.redactSlow(b, mode); n != wantN || string(out) != string(wantOut) {
					t.Errorf("mode %d, %q: redact gave %q, %d; the scan %q, %d", mode, f, out, n, wantOut, wantN)
				}
			}
		}
	}
	if out, n := s.Redact([]byte("Strict-Transport-Security")); n == 0 || strings.Contains(string(out), "Strict") {
		t.Errorf("a stored value that is a header name was not redacted: %q", out)
	}
	if _, n := s.RedactName([]byte("strict-transport-security")); n == 0 {
		t.Error("the lower-cased stored value was not redacted as a name")
	}
	if _, found := s.CheckName([]byte("STRICT-TRANSPORT-SECURITY"), nil); !found {
		t.Error("the upper-cased stored value was not found as a name")
	}
	if _, found := s.Check([]byte("application/json; charset=utf-8"), nil); !found {
		t.Error("a stored value that is a header value was not found")
	}
	for _, w := range []string{"Content-Type", "GET", "nosniff"} {
		if !s.known([]byte(w), Text) || !s.known([]byte(w), Name) {
			t.Errorf("%q is not known clean", w)
		}
	}
}

// redactSlow is redact without the known-clean words.
func (s *Scanner) redactSlow(b []byte, mode Mode) ([]byte, int) {
	saved := s.clean
	s.clean = [2]map[string]struct{}{}
	defer func() { s.clean = saved }()
	return s.redact(b, mode)
}
