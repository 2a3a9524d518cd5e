package secrets

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/clawbox/clawbox/api"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func testKey(t testing.TB) MasterKey {
	t.Helper()
	k, err := ParseMasterKey(testKeyHex)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func otherKey(t testing.TB) MasterKey {
	t.Helper()
	k, err := ParseMasterKey(strings.Repeat("ab", KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// logBuffer collects log output so tests can check that no value reaches a log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openTestStore opens a store without a watcher in a fresh directory.
func openTestStore(t testing.TB, path string) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "credentials.enc")
	}
	s, err := Open(Config{Path: path, Key: testKey(t), NoWatch: true, Logger: newLogger(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ptr[T any](v T) *T { return &v }

func mustPut(t testing.TB, s *Store, name string, req api.PutCredentialRequest) {
	t.Helper()
	if _, err := s.Put(name, req); err != nil {
		t.Fatalf("Put(%s): %v", name, err)
	}
}

func TestStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials.enc")
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var logs logBuffer
	s, err := Open(Config{Path: path, Key: testKey(t), NoWatch: true, Logger: newLogger(&logs), Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "GITHUB_TOKEN", api.PutCredentialRequest{
		Value: testGitHubValue, Host: "API.GitHub.com.", Prefix: ptr("token "),
		PathPrefix: "/repos/", Methods: []string{"get", "POST", "GET"},
	})
	mustPut(t, s, "brave_search", api.PutCredentialRequest{
		Value: "brave-key-0123456789", Host: "*.search.brave.com", Header: "x-subscription-token", Prefix: ptr(""),
	})
	mustPut(t, s, "OPENAI", api.PutCredentialRequest{Value: testOpenAIValue, Host: "api.openai.com", Placeholder: true})
	// Replace: the last Put wins.
	mustPut(t, s, "brave_search", api.PutCredentialRequest{
		Value: "brave-key-9876543210", Host: "api.search.brave.com", Header: "X-Subscription-Token", Prefix: ptr(""), Port: 8443,
	})
	want := s.List()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(Config{Path: path, Key: testKey(t), NoWatch: true, Logger: newLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	got := s2.List()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopen:\n got %v\nwant %v", got, want)
	}
	wantNames := []string{"GITHUB_TOKEN", "OPENAI", "brave_search"}
	if len(got) != len(wantNames) {
		t.Fatalf("got %d entries, want %d", len(got), len(wantNames))
	}
	for i, n := range wantNames {
		if got[i].Name != n {
			t.Errorf("entry %d = %s, want %s (sorted by name)", i, got[i].Name, n)
		}
	}
	gh := got[0]
	if gh.Host != "api.github.com" || gh.Header != "Authorization" || gh.Prefix != "token " ||
		gh.PathPrefix != "/repos" || fmt.Sprint(gh.Methods) != "[GET POST]" || !gh.UpdatedAt.Equal(fixed) {
		t.Errorf("normalised GITHUB_TOKEN = %+v", gh)
	}
	if b := got[2]; b.Port != 8443 || b.Host != "api.search.brave.com" || b.Prefix != "" {
		t.Errorf("replaced brave_search = %+v", b)
	}
	if o := got[1]; o.Prefix != DefaultPrefix || !o.Placeholder {
		t.Errorf("OPENAI defaults = %+v", o)
	}
	// The value survived: it is injected after the reopen.
	req := newReq(t, "GET", "https://api.search.brave.com:8443/res/v1/web/search?q=x")
	if _, err := s2.Inject([]string{"brave_search"}, req); err != nil {
		t.Fatal(err)
	}
	if v := req.Header.Get("X-Subscription-Token"); v != "brave-key-9876543210" {
		t.Errorf("injected %q after reopen", v)
	}
	// The placeholder is stable across a restart.
	if p1, p2 := s.Placeholders([]string{"OPENAI"}), s2.Placeholders([]string{"OPENAI"}); p1["OPENAI"] == "" || p1["OPENAI"] != p2["OPENAI"] {
		t.Errorf("placeholder changed across reopen: %q vs %q", p1["OPENAI"], p2["OPENAI"])
	}
	// The file holds no value in clear.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{testGitHubValue, testOpenAIValue, "brave-key-9876543210", "GITHUB_TOKEN"} {
		if bytes.Contains(raw, []byte(v)) {
			t.Errorf("store file contains %q in clear", v)
		}
	}
	if !strings.Contains(logs.String(), "credential stored") {
		t.Errorf("Put not logged: %s", logs.String())
	}
	assertNoSecret(t, logs.String())
	if strings.Contains(logs.String(), "brave-key") {
		t.Errorf("log reveals a value: %s", logs.String())
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.enc")
	s := openTestStore(t, good)
	mustPut(t, s, "GITHUB_TOKEN", api.PutCredentialRequest{Value: testGitHubValue, Host: "api.github.com"})
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(data)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name string
		data []byte
		key  MasterKey
		want error
	}{
		{"wrong key", data, otherKey(t), ErrDecrypt},
		{"tampered ciphertext", flip(headerSize + 3), testKey(t), ErrDecrypt},
		{"tampered tag", flip(len(data) - 1), testKey(t), ErrDecrypt},
		{"tampered salt", flip(len(fileMagic) + 2), testKey(t), ErrDecrypt},
		{"tampered nonce", flip(headerSize - 1), testKey(t), ErrDecrypt},
		{"unknown version", func() []byte { b := bytes.Clone(data); b[len(fileMagic)] = 2; return b }(), testKey(t), ErrVersion},
		{"bad magic", flip(0), testKey(t), ErrNotStore},
		{"not a store at all", []byte(`{"entries":[]}`), testKey(t), ErrNotStore},
		{"empty file", []byte{}, testKey(t), ErrTruncated},
		{"truncated in magic", data[:4], testKey(t), ErrTruncated},
		{"truncated in header", data[:headerSize-3], testKey(t), ErrTruncated},
		{"truncated in body", data[:len(data)-5], testKey(t), ErrDecrypt},
		{"header only", data[:headerSize+tagSize-1], testKey(t), ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "credentials.enc")
			if err := os.WriteFile(p, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			_, err := Open(Config{Path: p, Key: tc.key, NoWatch: true, Logger: newLogger(&logs)})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
			assertNoSecret(t, err.Error()+logs.String())
		})
	}
}

func TestCorruptBodyNamesNoValue(t *testing.T) {
	// A body that decrypts but does not validate (written by a buggy tool).
	p := filepath.Join(t.TempDir(), "credentials.enc")
	bad := []*entry{{Name: "X", Value: "line1\nline2-" + testOpenAIValue, Host: "a.example", Header: "Authorization"}}
	data, err := seal(testKey(t), bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Config{Path: p, Key: testKey(t), NoWatch: true, Logger: newLogger(io.Discard)})
	if !errors.Is(err, ErrCorruptBody) {
		t.Fatalf("Open = %v, want ErrCorruptBody", err)
	}
	assertNoSecret(t, err.Error())
}

// assertNoSecret fails if s holds any test value or the test key.
func assertNoSecret(t testing.TB, s string) {
	t.Helper()
	for _, v := range []string{testGitHubValue, testOpenAIValue, testKeyHex, strings.ToUpper(testKeyHex), "line1", testPlainValue} {
		if strings.Contains(s, v) {
			t.Fatalf("message reveals a secret: %q", s)
		}
	}
}

func TestAtomicWriteMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	path := filepath.Join(dir, "credentials.enc")
	s := openTestStore(t, path)
	mustPut(t, s, "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example"})
	mustPut(t, s, "B", api.PutCredentialRequest{Value: testOpenAIValue, Host: "b.example"})
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != 0o600 {
		t.Errorf("store mode %04o, want 0600", m)
	}
	dst, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := dst.Mode().Perm(); m != 0o700 {
		t.Errorf("created directory mode %04o, want 0700", m)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 || ents[0].Name() != "credentials.enc" || ents[1].Name() != "credentials.enc.lock" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only credentials.enc and its lock (no temp files left)", names)
	}
	// A failed write (directory not writable) leaves the old file intact.
	if os.Geteuid() == 0 {
		t.Log("running as root: skipping the read-only directory part")
		return
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	before, _ := os.ReadFile(path)
	if _, err := s.Put("C", api.PutCredentialRequest{Value: testPlainValue, Host: "c.example"}); err == nil {
		t.Fatal("Put into a read-only directory succeeded")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("failed write changed the store file")
	}
}

func TestWriteFileAtomicFailureLeavesOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials.enc")
	if err := writeFileAtomic(path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	// Renaming over a directory fails after the temp file was written: the old
	// content must stay and the temp file must go.
	target := filepath.Join(dir, "adir")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(target, []byte("new")); err == nil {
		t.Fatal("rename over a non-empty directory succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("directory holds %d entries, want 2 (temp file removed)", len(ents))
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("old file = %q", b)
	}
}

func TestPutRefusesUnreadableStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials.enc")
	s := openTestStore(t, path)
	mustPut(t, s, "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example"})
	before, _ := os.ReadFile(path)
	// Another process rewrites the store under another key.
	data, err := seal(otherKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, data); err != nil {
		t.Fatal(err)
	}
	_, err = s.Put("B", api.PutCredentialRequest{Value: testOpenAIValue, Host: "b.example"})
	ae, ok := api.AsError(err)
	if !ok || ae.Code != api.CodeUnavailable || !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Put over an unreadable store = %v, want unavailable wrapping ErrDecrypt", err)
	}
	after, _ := os.ReadFile(path)
	if bytes.Equal(before, after) || !bytes.Equal(after, data) {
		t.Error("Put overwrote a store it could not read")
	}
}

func TestPutValidation(t *testing.T) {
	s := openTestStore(t, "")
	long := strings.Repeat("a", 65)
	tests := []struct {
		name, cred string
		req        api.PutCredentialRequest
		field      string
	}{
		{"name starts with digit", "1TOKEN", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example"}, "name"},
		{"name with dash", "MY-TOKEN", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example"}, "name"},
		{"name with equals", "A=B", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example"}, "name"},
		{"name too long", long, api.PutCredentialRequest{Value: testPlainValue, Host: "a.example"}, "name"},
		{"empty value", "A", api.PutCredentialRequest{Host: "a.example"}, "value"},
		{"value with LF", "A", api.PutCredentialRequest{Value: testPlainValue + "\nX-Evil: 1", Host: "a.example"}, "value"},
		{"value with CR", "A", api.PutCredentialRequest{Value: testPlainValue + "\r", Host: "a.example"}, "value"},
		{"value with NUL", "A", api.PutCredentialRequest{Value: testPlainValue + "\x00", Host: "a.example"}, "value"},
		{"value with control char", "A", api.PutCredentialRequest{Value: testPlainValue + "\x07", Host: "a.example"}, "value"},
		{"no host", "A", api.PutCredentialRequest{Value: testPlainValue}, "host"},
		{"host with scheme", "A", api.PutCredentialRequest{Value: testPlainValue, Host: "https://a.example"}, "host"},
		{"host with port", "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example:443"}, "host"},
		{"host with path", "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example/x"}, "host"},
		{"wildcard TLD", "A", api.PutCredentialRequest{Value: testPlainValue, Host: "*.com"}, "host"},
		{"inner wildcard", "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.*.example"}, "host"},
		{"bad header", "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example", Header: "X Bad"}, "header"},
		{"framing header", "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example", Header: "Content-Length"}, "header"},
		{"prefix with LF", "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example", Prefix: ptr("x\n")}, "prefix"},
		{"relative path prefix", "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example", PathPrefix: "repos"}, "path_prefix"},
		{"dot path prefix", "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example", PathPrefix: "/a/../b"}, "path_prefix"},
		{"bad method", "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example", Methods: []string{"GE T"}}, "methods"},
		{"port out of range", "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example", Port: 70000}, "port"},
		{"placeholder too short", "A", api.PutCredentialRequest{Value: "short-value", Host: "a.example", Placeholder: true}, "placeholder"},
		{"query without placeholder", "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example", PlaceholderQuery: true}, "placeholder_query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Put(tc.cred, tc.req)
			ae, ok := api.AsError(err)
			if !ok || ae.Code != api.CodeInvalidRequest {
				t.Fatalf("Put = %v, want invalid_request", err)
			}
			if d, _ := ae.Details.(map[string]string); d["field"] != tc.field {
				t.Errorf("details = %v, want field %q", ae.Details, tc.field)
			}
			assertNoSecret(t, err.Error())
		})
	}
	if n := len(s.List()); n != 0 {
		t.Errorf("invalid Puts stored %d entries", n)
	}
}

func TestDelete(t *testing.T) {
	s := openTestStore(t, "")
	mustPut(t, s, "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example"})
	mustPut(t, s, "B", api.PutCredentialRequest{Value: testOpenAIValue, Host: "b.example"})
	if err := s.Delete("A"); err != nil {
		t.Fatal(err)
	}
	if l := s.List(); len(l) != 1 || l[0].Name != "B" {
		t.Errorf("after Delete: %v", l)
	}
	// The deleted value is no longer a known secret.
	if _, n := s.Redact([]byte(testPlainValue)); n != 0 {
		t.Error("deleted value still redacted")
	}
	err := s.Delete("A")
	if ae, ok := api.AsError(err); !ok || ae.Code != api.CodeNotFound {
		t.Errorf("second Delete = %v, want not_found", err)
	}
}

func TestNilStore(t *testing.T) {
	var s *Store
	if l := s.List(); len(l) != 0 {
		t.Errorf("nil List = %v", l)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	// Patterns are still found without a store.
	out, n := s.Redact([]byte("key: " + testGitHubValue))
	if n != 1 || strings.Contains(string(out), testGitHubValue) {
		t.Errorf("nil Redact = %q, %d", out, n)
	}
	if _, err := s.Put("A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example"}); err == nil {
		t.Error("nil Put succeeded")
	}
}

func TestLiveReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials.enc")
	reloads := make(chan error, 16)
	var logs logBuffer
	live, err := Open(Config{
		Path: path, Key: testKey(t), Debounce: time.Millisecond,
		Logger: newLogger(&logs),
		OnReload: func(err error) {
			select {
			case reloads <- err:
			default: // never block the watcher; the buffer already holds a wake-up
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	// Another process (the CLI) writes the same file.
	cli := openTestStore(t, path)

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for !cond() {
			select {
			case <-reloads:
			case <-deadline:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	hasEntry := func(name string) func() bool {
		return func() bool {
			for _, c := range live.List() {
				if c.Name == name {
					return true
				}
			}
			return false
		}
	}

	mustPut(t, cli, "GITHUB_TOKEN", api.PutCredentialRequest{Value: testGitHubValue, Host: "api.github.com"})
	waitFor("the new credential", hasEntry("GITHUB_TOKEN"))
	req := newReq(t, "GET", "https://api.github.com/user")
	if names, err := live.Inject([]string{"GITHUB_TOKEN"}, req); err != nil || len(names) != 1 {
		t.Fatalf("Inject after reload = %v, %v", names, err)
	}

	// A bad file is logged and the last good set kept.
	if err := writeFileAtomic(path, []byte("CLAWBOXC\x01garbage")); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for gotErr := false; !gotErr; {
		select {
		case err := <-reloads:
			gotErr = errors.Is(err, ErrTruncated)
		case <-deadline:
			t.Fatal("timed out waiting for the failed reload")
		}
	}
	if !hasEntry("GITHUB_TOKEN")() {
		t.Fatal("a bad file replaced the last good set")
	}
	if !strings.Contains(logs.String(), "keeping the last good set") {
		t.Errorf("failed reload not logged: %s", logs.String())
	}

	// A good file again, with the credential removed, takes effect.
	data, err := seal(testKey(t), []*entry{{Name: "OTHER", Value: testOpenAIValue, Host: "b.example", Header: "Authorization", Prefix: "Bearer "}})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, data); err != nil {
		t.Fatal(err)
	}
	waitFor("the rewritten store", func() bool { return hasEntry("OTHER")() && !hasEntry("GITHUB_TOKEN")() })
	assertNoSecret(t, logs.String())

	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if err := live.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestConcurrentUse hammers Put, Delete and the egress methods together (run with
// -race).
func TestConcurrentUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials.enc")
	s, err := Open(Config{Path: path, Key: testKey(t), Debounce: time.Millisecond, Logger: newLogger(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				name := fmt.Sprintf("C%d_%d", w, i)
				val := fmt.Sprintf("value-%d-%d-0123456789abcdef", w, i)
				if _, err := s.Put(name, api.PutCredentialRequest{Value: val, Host: "api.example.com"}); err != nil {
					t.Error(err)
					return
				}
				req := newReq(t, "GET", "https://api.example.com/")
				if _, err := s.Inject([]string{name}, req); err != nil {
					t.Error(err)
				}
				if out, _ := s.Redact([]byte("x " + val + " y")); bytes.Contains(out, []byte(val)) {
					t.Error("value not redacted right after Put")
				}
				if i%2 == 0 {
					if err := s.Delete(name); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if n := len(s.List()); n != 20 {
		t.Errorf("%d entries, want 20", n)
	}
}

// TestTwoWritersLoseNothing runs two independent stores on one file, as the server and
// an offline CLI would be: the file lock serialises their read-modify-write.
func TestTwoWritersLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials.enc")
	a, b := openTestStore(t, path), openTestStore(t, path)
	var wg sync.WaitGroup
	for w, s := range []*Store{a, b} {
		wg.Go(func() {
			for i := range 10 {
				if _, err := s.Put(fmt.Sprintf("W%d_%d", w, i), api.PutCredentialRequest{Value: testPlainValue, Host: "a.example"}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	c := openTestStore(t, path)
	if n := len(c.List()); n != 20 {
		t.Errorf("file holds %d entries, want 20", n)
	}
}

func TestParseMasterKey(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"lower", testKeyHex, true},
		{"upper", strings.ToUpper(testKeyHex), true},
		{"trimmed", "  " + testKeyHex + "\n", true},
		{"too short", testKeyHex[:62], false},
		{"too long", testKeyHex + "00", false},
		{"not hex", "zz" + testKeyHex[2:], false},
		{"all zero", strings.Repeat("0", 64), false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseMasterKey(tc.in)
			if tc.ok != (err == nil) {
				t.Fatalf("ParseMasterKey = %v, ok want %v", err, tc.ok)
			}
			if err != nil {
				if strings.Contains(err.Error(), strings.TrimSpace(tc.in)[:min(8, len(strings.TrimSpace(tc.in)))]) && tc.in != "" {
					t.Errorf("error quotes the key: %v", err)
				}
				return
			}
			if k != testKey(t) {
				t.Error("parsed key differs")
			}
		})
	}
}

func TestMasterKeyNeverPrints(t *testing.T) {
	k := testKey(t)
	var logs logBuffer
	newLogger(&logs).Info("key", "k", k)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), k.String(), fmt.Sprintf("%x", k), fmt.Sprintf("%v", &k), logs.String()} {
		if strings.Contains(s, testKeyHex[8:24]) || strings.Contains(s, "0x1f") || strings.Contains(s, "[0 1 2 3") {
			t.Errorf("key printed: %q", s)
		}
	}
}

func TestLoadMasterKey(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	gen, err := GenerateKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != 0o600 {
		t.Errorf("key file mode %04o, want 0600", m)
	}
	if _, err := GenerateKeyFile(keyFile); !errors.Is(err, fs.ErrExist) {
		t.Errorf("GenerateKeyFile over an existing file = %v, want ErrExist", err)
	}
	if k, err := LoadMasterKey("", keyFile); err != nil || k != gen {
		t.Errorf("LoadMasterKey(key file) = %v, same=%v", err, k == gen)
	}
	if k, err := LoadMasterKey(" "+strings.ToUpper(testKeyHex)+" ", keyFile); err != nil || k != testKey(t) {
		t.Errorf("env does not win: %v", err)
	}
	if _, err := LoadMasterKey("", filepath.Join(dir, "missing")); !errors.Is(err, ErrNoMasterKey) {
		t.Errorf("missing key file = %v, want ErrNoMasterKey", err)
	}
	if _, err := LoadMasterKey("", ""); !errors.Is(err, ErrNoMasterKey) {
		t.Errorf("nothing = %v, want ErrNoMasterKey", err)
	}
	if _, err := LoadMasterKey("xyz", keyFile); err == nil || !strings.Contains(err.Error(), "CLAWBOX_MASTER_KEY") {
		t.Errorf("bad env = %v", err)
	}
	loose := filepath.Join(dir, "loose.key")
	if err := os.WriteFile(loose, []byte(testKeyHex+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMasterKey("", loose); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key file = %v, want refusal", err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMasterKey("", bad); err == nil {
		t.Error("bad key file accepted")
	}
	// A generated key opens a store.
	s, err := Open(Config{Path: filepath.Join(dir, "c.enc"), Key: gen, NoWatch: true, Logger: newLogger(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "A", api.PutCredentialRequest{Value: testPlainValue, Host: "a.example"})
	if _, err := Open(Config{Path: filepath.Join(dir, "c.enc"), Key: MasterKey{}, NoWatch: true}); !errors.Is(err, ErrNoMasterKey) {
		t.Errorf("Open with zero key = %v", err)
	}
	raw, _ := os.ReadFile(keyFile)
	if len(bytes.TrimSpace(raw)) != 64 {
		t.Errorf("key file holds %d bytes, want 64 hex characters", len(bytes.TrimSpace(raw)))
	}
	if _, err := hex.DecodeString(string(bytes.TrimSpace(raw))); err != nil {
		t.Errorf("key file is not hex: %v", err)
	}
}

// TestPatternsOnly: the no-master-key store is a real value that still refuses and
// redacts credential patterns, injects nothing and stores nothing.
func TestPatternsOnly(t *testing.T) {
	s := PatternsOnly()
	defer s.Close()
	const v = "sk-live0123456789abcdefghijklmnop"
	u, _ := url.Parse("https://example.com/x")
	err := s.CheckOutbound(nil, "GET", u, http.Header{"Authorization": {"Bearer " + v}}, nil)
	if e, ok := api.AsError(err); !ok || e.Code != api.CodeLeakDetected {
		t.Fatalf("CheckOutbound of a pattern = %v, want leak_detected", err)
	}
	if out, n := s.Redact([]byte("k=" + v)); n != 1 || string(out) != "k=[REDACTED]" {
		t.Errorf("Redact = %q, %d", out, n)
	}
	req, _ := http.NewRequest("GET", "https://example.com/x", nil)
	if names, err := s.Inject([]string{"X"}, req); err != nil || len(names) != 0 {
		t.Errorf("Inject = %v, %v; want nothing", names, err)
	}
	if _, err := s.Put("X", api.PutCredentialRequest{Value: v, Host: "example.com"}); err == nil {
		t.Error("Put on PatternsOnly: no error")
	} else if e, ok := api.AsError(err); !ok || e.Code != api.CodeUnavailable {
		t.Errorf("Put = %v, want unavailable", err)
	}
	if err := s.Delete("X"); err == nil {
		t.Error("Delete on PatternsOnly: no error")
	}
}
