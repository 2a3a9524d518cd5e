package audit_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/internal/audit"
)

func TestRedactURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no query", "https://api.example.com/v1/items", "https://api.example.com/v1/items"},
		{"one value", "https://h.example/p?token=abc123", "https://h.example/p?token=REDACTED"},
		{"order kept", "https://h.example/?z=1&a=2&m=3", "https://h.example/?z=REDACTED&a=REDACTED&m=REDACTED"},
		{"repeated key", "https://h.example/?k=1&k=2", "https://h.example/?k=REDACTED&k=REDACTED"},
		{"key without value", "https://h.example/?flag&x=1", "https://h.example/?flag=REDACTED&x=REDACTED"},
		{"empty value", "https://h.example/?x=", "https://h.example/?x=REDACTED"},
		{"encoded key re-encoded", "https://h.example/?a%20b=c&%5Bk%5D=v", "https://h.example/?a+b=REDACTED&%5Bk%5D=REDACTED"},
		{"value with equals", "https://h.example/?sig=a=b=c", "https://h.example/?sig=REDACTED"},
		{"undecodable key", "https://h.example/?%zz=secret", "https://h.example/?REDACTED=REDACTED"},
		{"empty pairs skipped", "https://h.example/?&&a=1&", "https://h.example/?a=REDACTED"},
		{"only separators", "https://h.example/p?&&", "https://h.example/p"},
		{"userinfo dropped", "https://user:hunter2@h.example/p?q=1", "https://h.example/p?q=REDACTED"},
		{"fragment dropped", "https://h.example/cb#access_token=xyz", "https://h.example/cb"},
		{"port and path kept", "http://h.example:8080/a/b%2Fc?x=1", "http://h.example:8080/a/b%2Fc?x=REDACTED"},
		{"semicolon is not a separator", "https://h.example/?a=1;b=2", "https://h.example/?a=REDACTED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := audit.RedactURL(u); got != tc.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	if got := audit.RedactURL(nil); got != "" {
		t.Errorf("RedactURL(nil) = %q", got)
	}
}

// FuzzRedactURL checks, for any URL the gateway could see, that the result parses,
// carries no user information or fragment, and has REDACTED as every query value.
func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{
		"https://h.example/p?token=abc",
		"http://u:p@h.example:81/x?a=1&b&c=%zz#frag",
		"https://h.example/?%zz=1&&x=y=z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		u, err := url.Parse(in)
		if err != nil {
			return
		}
		out := audit.RedactURL(u)
		v, err := url.Parse(out)
		if err != nil {
			// Only a URL that could not be written back in the first place.
			if _, err2 := url.Parse(u.String()); err2 != nil {
				return
			}
			t.Fatalf("RedactURL(%q) = %q, which does not parse: %v", in, out, err)
		}
		if v.User != nil {
			t.Errorf("RedactURL(%q) = %q keeps user information", in, out)
		}
		if strings.Contains(out, "#") {
			t.Errorf("RedactURL(%q) = %q keeps a fragment", in, out)
		}
		if u.Opaque != "" {
			return // opaque URLs are not http(s); the gateway refuses them earlier
		}
		q, err := url.ParseQuery(v.RawQuery)
		if err != nil {
			t.Fatalf("RedactURL(%q) = %q: query does not parse: %v", in, out, err)
		}
		for k, vals := range q {
			for _, val := range vals {
				if val != audit.Redacted {
					t.Errorf("RedactURL(%q) = %q: %q has value %q", in, out, k, val)
				}
			}
		}
	})
}
