package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// TestHostileNamesTouchNothing: Put and Delete with names no entry can have are
// refused (invalid_request, not_found) without creating, locking or rewriting any
// file, and the stored entries are unchanged.
func TestHostileNamesTouchNothing(t *testing.T) {
	names := []struct{ name, value string }{
		{"traversal", "../../etc/passwd"},
		{"encoded slash", "a%2fb"},
		{"slash", "a/b"},
		{"NUL", "A\x00B"},
		{"CRLF", "A\r\nB"},
		{"dot dot", ".."},
		{"empty", ""},
		{"odd Unicode", "ＧＩＴＨＵＢ"},
		{"RTL override", "A\u202eB"},
		{"too long", strings.Repeat("A", 65)},
		{"very long", strings.Repeat("A", 10000)},
		{"leading digit", "1A"},
	}
	t.Run("empty store", func(t *testing.T) {
		dir := t.TempDir()
		s := openTestStore(t, filepath.Join(dir, "credentials.enc"))
		for _, n := range names {
			_, err := s.Put(n.value, api.PutCredentialRequest{Value: testPlainValue, Host: "a.example"})
			if e, ok := api.AsError(err); !ok || e.Code != api.CodeInvalidRequest {
				t.Errorf("Put(%s) = %v, want invalid_request", n.name, err)
			}
			err = s.Delete(n.value)
			if e, ok := api.AsError(err); !ok || e.Code != api.CodeNotFound {
				t.Errorf("Delete(%s) = %v, want not_found", n.name, err)
			}
			if e, ok := api.AsError(err); ok && strings.Contains(e.Message, n.value) && len(n.value) > 2 {
				t.Errorf("Delete(%s) echoes the name: %q", n.name, e.Message)
			}
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("hostile names created files: %v", ents)
		}
	})
	t.Run("store with entries", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "credentials.enc")
		s := openTestStore(t, path)
		mustPut(t, s, "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example"})
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			s.Put(n.value, api.PutCredentialRequest{Value: testOpenAIValue, Host: "b.example"})
			s.Delete(n.value)
		}
		after, _ := os.ReadFile(path)
		if string(after) != string(before) {
			t.Error("hostile names rewrote the store file")
		}
		if l := s.List(); len(l) != 1 || l[0].Name != "A" {
			t.Errorf("entries after hostile names: %+v", l)
		}
	})
}
