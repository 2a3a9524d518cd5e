package door

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromEnv(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte("  file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		token   string
		wantErr string
	}{
		{"token from env", map[string]string{"CLAWBOX_PROXY_SOCKET": "/s", "CLAWBOX_PROXY_TOKEN": "t1", "CLAWBOX_PROXY_TOKEN_FILE": tokFile}, "t1", ""},
		{"token from file", map[string]string{"CLAWBOX_PROXY_SOCKET": "/s", "CLAWBOX_PROXY_TOKEN_FILE": tokFile}, "file-token", ""},
		{"no socket", map[string]string{"CLAWBOX_PROXY_TOKEN": "t1"}, "", "CLAWBOX_PROXY_SOCKET is not set"},
		{"no token", map[string]string{"CLAWBOX_PROXY_SOCKET": "/s"}, "", "neither CLAWBOX_PROXY_TOKEN nor CLAWBOX_PROXY_TOKEN_FILE"},
		{"missing token file", map[string]string{"CLAWBOX_PROXY_SOCKET": "/s", "CLAWBOX_PROXY_TOKEN_FILE": filepath.Join(dir, "nope")}, "", "no such file"},
		{"empty token file", map[string]string{"CLAWBOX_PROXY_SOCKET": "/s", "CLAWBOX_PROXY_TOKEN_FILE": empty}, "", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := fromEnv(env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.token != tt.token || c.Socket() != "/s" {
				t.Fatalf("token %q socket %q", c.token, c.Socket())
			}
		})
	}
}
