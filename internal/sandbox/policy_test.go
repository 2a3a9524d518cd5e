package sandbox

import (
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

func errCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := api.AsError(err); ok {
		return e.Code
	}
	return "other"
}

func TestImageAllowed(t *testing.T) {
	defaults := []string{"alpine", "debian", "ubuntu", "python", "node", "clawbox/"}
	tests := []struct {
		name    string
		image   string
		allowed []string
		want    string // normalised reference, "" when refused
		code    string
	}{
		{"short name", "alpine", defaults, "docker.io/library/alpine:latest", ""},
		{"short name with tag", "alpine:3.18", defaults, "docker.io/library/alpine:3.18", ""},
		{"fully qualified", "docker.io/library/alpine:3", defaults, "docker.io/library/alpine:3", ""},
		{"library path", "library/debian:12", defaults, "docker.io/library/debian:12", ""},
		{"digest", "alpine@sha256:" + strings.Repeat("a", 64), defaults, "docker.io/library/alpine@sha256:" + strings.Repeat("a", 64), ""},
		{"tag and digest", "alpine:3.18@sha256:" + strings.Repeat("b", 64), defaults, "docker.io/library/alpine:3.18@sha256:" + strings.Repeat("b", 64), ""},
		{"prefix entry", "clawbox/agent-base:latest", defaults, "docker.io/clawbox/agent-base:latest", ""},
		{"prefix entry deep", "clawbox/a/b:1", defaults, "docker.io/clawbox/a/b:1", ""},
		{"prefix without boundary", "clawbox-evil/x", defaults, "", api.CodeImageNotAllowed},
		{"exact entry is not a prefix", "alpine/git", defaults, "", api.CodeImageNotAllowed},
		{"other registry same name", "ghcr.io/library/alpine", defaults, "", api.CodeImageNotAllowed},
		{"not listed", "redis", defaults, "", api.CodeImageNotAllowed},
		{"registry prefix", "ghcr.io/acme/x:1", []string{"ghcr.io/acme/"}, "ghcr.io/acme/x:1", ""},
		{"registry prefix evil", "ghcr.io/acme-evil/x", []string{"ghcr.io/acme/"}, "", api.CodeImageNotAllowed},
		{"registry with port", "localhost:5000/img:2", []string{"localhost:5000/img"}, "localhost:5000/img:2", ""},
		{"registry with port prefix", "localhost:5000/team/img", []string{"localhost:5000/"}, "localhost:5000/team/img:latest", ""},
		{"port is not a tag", "localhost:5000/img", []string{"localhost"}, "", api.CodeImageNotAllowed},
		{"whole registry", "docker.io/someone/img", []string{"docker.io/"}, "docker.io/someone/img:latest", ""},
		{"empty list denies", "alpine", []string{}, "", api.CodeImageNotAllowed},
		{"nil list denies", "alpine", nil, "", api.CodeImageNotAllowed},
		{"entry with tag allows the repository", "alpine:edge", []string{"alpine:3"}, "docker.io/library/alpine:edge", ""},
		{"malformed entry matches nothing", "alpine", []string{"UPPER", "/", "//"}, "", api.CodeImageNotAllowed},
		{"upper case image", "Alpine", defaults, "", api.CodeInvalidRequest},
		{"empty image", "", defaults, "", api.CodeInvalidRequest},
		{"garbage", "a b", defaults, "", api.CodeInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ImageAllowed(tc.image, tc.allowed)
			if got != tc.want || errCode(err) != tc.code {
				t.Errorf("ImageAllowed(%q) = %q, %v; want %q, code %q", tc.image, got, err, tc.want, tc.code)
			}
		})
	}
}

// FuzzImageAllowed checks that a reference is allowed only by an entry naming its
// repository or a path above it, and that the normalised result re-parses to itself.
func FuzzImageAllowed(f *testing.F) {
	for _, s := range []string{"alpine", "ghcr.io/acme/x:1", "localhost:5000/img@sha256:" + strings.Repeat("a", 64), "clawbox-evil/x", "a/b/c:d"} {
		f.Add(s, "clawbox/")
		f.Add(s, "alpine")
	}
	f.Fuzz(func(t *testing.T, image, entry string) {
		got, err := ImageAllowed(image, []string{entry})
		if err != nil {
			if got != "" {
				t.Fatalf("refused with a result %q", got)
			}
			return
		}
		again, err := ImageAllowed(got, []string{entry})
		if err != nil || again != got {
			t.Fatalf("normalised %q is not stable: %q, %v", got, again, err)
		}
		norm, err := NormalizeImage(got)
		if err != nil || norm != got {
			t.Fatalf("NormalizeImage(%q) = %q, %v", got, norm, err)
		}
		if strings.HasSuffix(entry, "/") {
			return
		}
		// An exact entry allows only its own repository.
		e, err := NormalizeImage(entry)
		if err != nil {
			t.Fatalf("malformed entry %q allowed %q", entry, image)
		}
		repo := func(s string) string {
			if i := strings.IndexByte(s, '@'); i >= 0 {
				s = s[:i]
			}
			if i := strings.LastIndexByte(s, ':'); i > strings.LastIndexByte(s, '/') {
				s = s[:i]
			}
			return s
		}
		if repo(e) != repo(got) {
			t.Fatalf("entry %q allowed %q", entry, got)
		}
	})
}

func TestCheckEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		bad  string // the key the error must name, "" for valid
	}{
		{"empty", nil, ""},
		{"ordinary", map[string]string{"FOO": "bar", "_x1": "", "PATH": "/bin"}, ""},
		{"equals in key", map[string]string{"LD_PRELOAD=/x.so#": "y"}, "LD_PRELOAD=/x.so#"},
		{"leading digit", map[string]string{"1A": "x"}, "1A"},
		{"dash", map[string]string{"A-B": "x"}, "A-B"},
		{"empty key", map[string]string{"": "x"}, `""`},
		{"NUL in value", map[string]string{"A": "x\x00y"}, "A"},
		{"proxy mixed case", map[string]string{"Http_Proxy": "http://evil"}, "Http_Proxy"},
		{"no_proxy lower", map[string]string{"no_proxy": "*"}, "no_proxy"},
		{"clawbox prefix", map[string]string{"clawbox_proxy_token": "x"}, "clawbox_proxy_token"},
		{"clawbox other", map[string]string{"CLAWBOX_ANYTHING": "x"}, "CLAWBOX_ANYTHING"},
		{"ld audit", map[string]string{"LD_AUDIT": "x"}, "LD_AUDIT"},
		{"node options", map[string]string{"node_options": "--require x"}, "node_options"},
		{"ca bundle", map[string]string{"REQUESTS_CA_BUNDLE": "/x"}, "REQUESTS_CA_BUNDLE"},
		{"git ca", map[string]string{"GIT_SSL_CAINFO": "/x"}, "GIT_SSL_CAINFO"},
		{"pip cert", map[string]string{"pip_cert": "/x"}, "pip_cert"},
		{"https_proxy lower", map[string]string{"https_proxy": "http://evil"}, "https_proxy"},
		{"ENV", map[string]string{"env": "/x"}, "env"},
		{"similar but fine", map[string]string{"ENVIRONMENT": "prod", "MY_HTTP_PROXY_NAME": "x"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckEnv(tc.env)
			if tc.bad == "" {
				if err != nil {
					t.Fatalf("CheckEnv: %v", err)
				}
				return
			}
			if errCode(err) != api.CodeInvalidRequest || !strings.Contains(err.Error(), strings.Trim(tc.bad, `"`)) {
				t.Fatalf("CheckEnv = %v, want invalid_request naming %s", err, tc.bad)
			}
		})
	}
}

// TestDoorEnvIsReserved checks that a spawn can set none of the variables
// clawbox sets for a sandbox with a door, in any case.
func TestDoorEnvIsReserved(t *testing.T) {
	env := doorEnv()
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy",
		"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO", "PIP_CERT"} {
		if env[k] == "" {
			t.Errorf("doorEnv does not set %s", k)
		}
	}
	for k := range env {
		for _, key := range []string{k, strings.ToLower(k), strings.ToUpper(k)} {
			if err := CheckEnv(map[string]string{key: "x"}); errCode(err) != api.CodeInvalidRequest {
				t.Errorf("CheckEnv(%s) = %v, want it reserved", key, err)
			}
		}
	}
}

func TestCanTransition(t *testing.T) {
	tests := []struct {
		from, to Status
		ok       bool
	}{
		{StatusCreating, StatusRunning, true},
		{StatusCreating, StatusLost, true},
		{StatusCreating, StatusCompleted, false},
		{StatusRunning, StatusCompleted, true},
		{StatusRunning, StatusFailed, true},
		{StatusRunning, StatusTimedOut, true},
		{StatusRunning, StatusKilled, true},
		{StatusRunning, StatusLost, true},
		{StatusRunning, StatusCreating, false},
		{StatusRunning, StatusRunning, false},
		{StatusKilled, StatusCompleted, false},
		{StatusCompleted, StatusRunning, false},
		{StatusLost, StatusRunning, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.from)+"→"+string(tc.to), func(t *testing.T) {
			if got := CanTransition(tc.from, tc.to); got != tc.ok {
				t.Errorf("CanTransition = %v", got)
			}
		})
	}
}

func TestToken(t *testing.T) {
	tok, hash := newToken()
	if len(tok) != 64 || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Fatalf("token %q is not 64 hex characters", tok)
	}
	if strings.Contains(string(hash), tok) || len(hash) != 32 {
		t.Fatal("hash is not a SHA-256 of the token")
	}
	other, _ := newToken()
	if other == tok {
		t.Fatal("two tokens are equal")
	}
	tests := []struct {
		name      string
		hash      []byte
		presented string
		ok        bool
	}{
		{"own token", hash, tok, true},
		{"other token", hash, other, false},
		{"empty", hash, "", false},
		{"prefix", hash, tok[:63], false},
		{"upper case", hash, strings.ToUpper(tok), tok == strings.ToUpper(tok)},
		{"no hash", nil, tok, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tokenMatches(tc.hash, tc.presented); got != tc.ok {
				t.Errorf("tokenMatches = %v", got)
			}
		})
	}
}

func TestCappedBuffer(t *testing.T) {
	c := &cappedBuffer{limit: 5}
	for _, p := range []string{"ab", "cd", "efg", "h"} {
		if n, err := c.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	b, trunc := c.bytes()
	if string(b) != "abcde" || !trunc {
		t.Errorf("kept %q truncated %v", b, trunc)
	}
	exact := &cappedBuffer{limit: 2}
	exact.Write([]byte("ab"))
	if b, trunc := exact.bytes(); string(b) != "ab" || trunc {
		t.Errorf("exact fit: %q %v", b, trunc)
	}
}
