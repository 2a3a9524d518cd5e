package leak

import "testing"

const (
	testValue  = "s3cr/3t-Value+9xq"
	testGitHub = "ghp_" + "abcdefghijklmnopqrstuvwxyz0123456789"
)

func testScanner() *Scanner {
	return New([]Secret{
		{Name: "WILD", Value: testValue},
		{Name: "GH", Value: testGitHub},
		{Name: "PH", Value: "real-placeholder-value-123", Placeholder: "fake-placeholder-value-123"},
	})
}

// TestRedactKeepsTheNameAroundASecret: only a secret's bytes are replaced, never the
// key name and separator around it (issue 12: env output showed
// CLAWBOX_PROXY_[REDACTED]).
func TestRedactKeepsTheNameAroundASecret(t *testing.T) {
	s := testScanner()
	tok := "0123456789abcdef0123456789abcdef"
	tests := []struct{ name, in, want string }{
		{"env line with a token", "CLAWBOX_PROXY_TOKEN=" + tok + "\n", "CLAWBOX_PROXY_TOKEN=[REDACTED]\n"},
		{"env line with a known value", "MY_SECRET_THING=" + testValue + "\n", "MY_SECRET_THING=[REDACTED]\n"},
		{"key=value", "api_key=" + tok, "api_key=[REDACTED]"},
		{"token: value", "token: " + tok, "token: [REDACTED]"},
		{"quoted value", "password='" + tok + "'", "password='[REDACTED]'"},
		{"JSON member", `{"password":"` + tok + `"}`, `{"password":"[REDACTED]"}`},
		{"JSON member with spaces", `{"apiKey" : "` + tok + `"}`, `{"apiKey" : "[REDACTED]"}`},
		{"bearer", "Authorization: Bearer " + tok, "Authorization: Bearer [REDACTED]"},
		{"known value after a key", "GH_TOKEN=" + testGitHub, "GH_TOKEN=[REDACTED]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, n := s.Redact([]byte(tc.in))
			if string(out) != tc.want || n == 0 {
				t.Errorf("Redact(%q) = %q, %d; want %q", tc.in, out, n, tc.want)
			}
		})
	}
}
