package daemon

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/poll"
)

// The tests of this file run real, unmodified programs (curl, wget, git, python3
// with requests, pip) from a Debian image built by scripts/debian-image.sh, in
// sandboxes that have no network but lo: every byte goes through the in-sandbox
// bridge (127.0.0.1:3128, HTTP_PROXY/HTTPS_PROXY) to the sandbox's door, then the
// server's gateway, to loopback upstreams reached as example.com through
// proxy.hosts. Nothing leaves the machine.

// debianImage imports the Debian test image for one test and removes it at cleanup.
// It skips when the tarball has not been built, unless dockertest.DebianRequired
// (CI, scripts/test.sh), where it fails.
func debianImage(t *testing.T) string {
	t.Helper()
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tarball, err := dockertest.DebianTarball(ctx)
	if errors.Is(err, dockertest.ErrNoDebianTarball) && !dockertest.DebianRequired() {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("Debian test image: %v", err)
	}
	ref, err := dockertest.ImportDebian(ctx, tarball)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dockertest.RemoveImage(ref); err != nil {
			t.Errorf("remove %s: %v", ref, err)
		}
	})
	return ref
}

// e2eSecrets are the real credential values; the sandboxes never see them.
const (
	curlSecret = "sk-live0123456789curlABCDEFGHIJKLMNOP"
	pySecret   = "S3cr3tPython0123456789abcdefXYZ"
)

// apiUpstream is a loopback HTTPS API that asserts the credential it got: under
// /curl/ it wants Bearer curlSecret, under /py/ Bearer pySecret. It answers
// "auth=ok" or "auth=wrong" (never the value) and counts both.
type apiUpstream struct {
	*httptest.Server
	port     string
	mu       sync.Mutex
	ok, bad  int
	lastPath string
}

func newAPIUpstream(t *testing.T) *apiUpstream {
	u := &apiUpstream{}
	u.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := ""
		switch {
		case strings.HasPrefix(r.URL.Path, "/curl/"):
			want = "Bearer " + curlSecret
		case strings.HasPrefix(r.URL.Path, "/py/"):
			want = "Bearer " + pySecret
		}
		u.mu.Lock()
		u.lastPath = r.URL.Path
		good := want != "" && r.Header.Get("Authorization") == want
		if good {
			u.ok++
		} else {
			u.bad++
		}
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !good {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"auth":"wrong","path":%q}`, r.URL.Path)
			return
		}
		fmt.Fprintf(w, `{"auth":"ok","path":%q}`, r.URL.Path)
	}))
	t.Cleanup(u.Close)
	_, u.port, _ = net.SplitHostPort(u.Listener.Addr().String())
	return u
}

func (u *apiUpstream) counts() (ok, bad int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ok, u.bad
}

// bigSize is the download streamed through the door by the memory test.
const bigSize = 50 << 20

// bigStream writes n deterministic pseudo-random bytes (seeded by seed) to w in
// 32 KiB chunks, without holding them.
func bigStream(w io.Writer, seed uint64, n int) error {
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'c', 'l', 'a', 'w'})
	buf := make([]byte, 32<<10)
	for n > 0 {
		k := min(n, len(buf))
		rng.Read(buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// testWheel is a pure-Python wheel of a few MiB (a zip: the package, a data file and
// the .dist-info with METADATA, WHEEL and RECORD), as pip expects it.
func testWheel(t *testing.T) (name string, data []byte) {
	t.Helper()
	const dist, version = "clawbox_demo", "1.0"
	name = dist + "-" + version + "-py3-none-any.whl"
	var blob bytes.Buffer
	if err := bigStream(&blob, 7, 3<<20); err != nil {
		t.Fatal(err)
	}
	info := dist + "-" + version + ".dist-info/"
	files := []struct {
		name string
		data []byte
	}{
		{dist + "/__init__.py", []byte("VERSION = \"" + version + "\"\n")},
		{dist + "/blob.bin", blob.Bytes()},
		{info + "METADATA", []byte("Metadata-Version: 2.1\nName: clawbox-demo\nVersion: " + version + "\nSummary: clawbox end-to-end test wheel\n")},
		{info + "WHEEL", []byte("Wheel-Version: 1.0\nGenerator: clawbox-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")},
	}
	var record strings.Builder
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, data []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.data))
		add(f.name, f.data)
	}
	record.WriteString(info + "RECORD,,\n")
	add(info+"RECORD", []byte(record.String()))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return name, buf.Bytes()
}

// bareRepo makes a bare git repository holding one commit (README and a file of a
// few hundred KiB, so the pack is not trivial) and returns its parent directory.
func bareRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed on the host for the smart-HTTP server: %v (apt-get install git)", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=clawbox", "GIT_AUTHOR_EMAIL=e2e@clawbox.invalid",
			"GIT_COMMITTER_NAME=clawbox", "GIT_COMMITTER_EMAIL=e2e@clawbox.invalid", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("init", "-q", "-b", "main", src)
	if err := os.WriteFile(filepath.Join(src, "README"), []byte("cloned through the clawbox door\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var data bytes.Buffer
	if err := bigStream(hex.NewEncoder(&data), 3, 256<<10); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "data.txt"), data.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	run("-C", src, "add", ".")
	run("-C", src, "commit", "-q", "-m", "clawbox e2e commit")
	root := filepath.Join(dir, "srv")
	run("clone", "-q", "--bare", src, filepath.Join(root, "repo.git"))
	return root
}

// filesUpstream is a loopback HTTPS server for downloads: git's smart HTTP
// (git http-backend through net/http/cgi) under /git/, a PEP 503 simple index under
// /simple/ with its wheel under /files/, and a 50 MiB stream at /big.
type filesUpstream struct {
	*httptest.Server
	port      string
	wheelName string
	wheelSum  string
	bigSum    string
}

func newFilesUpstream(t *testing.T) *filesUpstream {
	t.Helper()
	u := &filesUpstream{}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	root := bareRepo(t)
	name, wheel := testWheel(t)
	sum := sha256.Sum256(wheel)
	u.wheelName, u.wheelSum = name, hex.EncodeToString(sum[:])
	h := sha256.New()
	if err := bigStream(h, 11, bigSize); err != nil {
		t.Fatal(err)
	}
	u.bigSum = hex.EncodeToString(h.Sum(nil))

	mux := http.NewServeMux()
	mux.Handle("/git/", &cgi.Handler{
		Path: gitPath, Args: []string{"http-backend"}, Root: "/git",
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + root},
	})
	mux.HandleFunc("/simple/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/simple/":
			fmt.Fprint(w, `<!DOCTYPE html><html><body><a href="/simple/clawbox-demo/">clawbox-demo</a></body></html>`)
		case "/simple/clawbox-demo/":
			fmt.Fprintf(w, `<!DOCTYPE html><html><body><a href="/files/%s#sha256=%s">%s</a></body></html>`, u.wheelName, u.wheelSum, u.wheelName)
		default:
			http.NotFound(w, r)
		}
	})
	mux.HandleFunc("/files/"+name, func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(wheel))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		// No Content-Length: the response is chunked all the way.
		w.Header().Set("Content-Type", "application/octet-stream")
		_ = bigStream(w, 11, bigSize)
	})
	u.Server = httptest.NewTLSServer(mux)
	t.Cleanup(u.Close)
	_, u.port, _ = net.SplitHostPort(u.Listener.Addr().String())
	return u
}

// e2eRun is one sandbox run: its final status and logs.
type e2eRun struct {
	id             string
	status         string
	stdout, stderr string
}

// runScript spawns the Debian image with sh -c script, granted creds, and waits.
func runScript(t *testing.T, c *client.Client, image, task, script string, creds ...string) e2eRun {
	t.Helper()
	ctx := context.Background()
	req := api.ContainerSpawnRequest{
		Task: task, Image: image, Command: []string{"sh", "-c", script},
		Env: map[string]string{"HOME": "/tmp"},
	}
	if len(creds) > 0 {
		req.Capabilities = &api.ContainerCapabilities{Credentials: creds}
	}
	info, err := c.Spawn(ctx, req)
	if err != nil {
		t.Fatalf("spawn %s: %v", task, err)
	}
	// A sandbox still running when the subtest fails is killed (and removed by the
	// server) before the next one starts.
	t.Cleanup(func() { c.Kill(context.Background(), info.ContainerID) })
	wctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	final, err := c.Wait(wctx, info.ContainerID)
	if err != nil {
		t.Fatalf("wait for sandbox %s: %v", info.ContainerID, err)
	}
	logs, err := c.Logs(ctx, info.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	return e2eRun{id: info.ContainerID, status: final.Status, stdout: logs.Stdout, stderr: logs.Stderr}
}

func (r e2eRun) String() string {
	return fmt.Sprintf("sandbox %s %s\nstdout:\n%s\nstderr:\n%s", r.id, r.status, r.stdout, r.stderr)
}

// rawAuditRecord is the part of an audit record these tests read, decoded from the
// JSON of GET /audit.
type rawAuditRecord struct {
	Door        string            `json:"door"`
	Decision    api.AuditDecision `json:"decision"`
	Method      string            `json:"method"`
	URL         string            `json:"url"`
	Host        string            `json:"host"`
	Status      int               `json:"status"`
	Credentials []string          `json:"credentials"`
	ErrorCode   string            `json:"error_code"`
}

// requestAudit polls GET /audit for a sandbox's request records until ok holds.
func requestAudit(t *testing.T, cfg *config.Config, addr, id, what string, ok func([]rawAuditRecord) bool) []rawAuditRecord {
	t.Helper()
	tok, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	var recs []rawAuditRecord
	var body []byte
	poll.Until(t, poll.Server, what, func() (bool, error) {
		req, err := http.NewRequest(http.MethodGet, addr+"/audit?"+url.Values{"container_id": {id}, "kind": {"request"}}.Encode(), nil)
		if err != nil {
			return false, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("GET /audit: %d %v: %s", resp.StatusCode, err, body)
		}
		var list struct {
			Records []rawAuditRecord `json:"records"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return false, err
		}
		recs = list.Records
		return ok(recs), fmt.Errorf("records: %s", body)
	})
	for _, form := range append(secretForms(curlSecret), secretForms(pySecret)...) {
		if bytes.Contains(body, []byte(form)) {
			t.Errorf("an audit record holds a credential value")
		}
	}
	return recs
}

func hasRecord(recs []rawAuditRecord, match func(rawAuditRecord) bool) bool {
	for _, r := range recs {
		if match(r) {
			return true
		}
	}
	return false
}

// proxyEnvCheck is the first line of every script: the proxy and CA variables the
// server sets, and whether the CA bundle is there.
const proxyEnvCheck = `echo "proxy=${HTTPS_PROXY:-} ${http_proxy:-} ca=${SSL_CERT_FILE:-}:$(test -s "${SSL_CERT_FILE:-/nonexistent}" && echo present)"`

// TestUnmodifiedPrograms runs curl, python3 with requests, wget, git and pip,
// unmodified, in sandboxes of the Debian test image against loopback upstreams:
// credentials are injected upstream with only a placeholder (or nothing) inside, a
// refused host is a clear 403 from the proxy, downloads stream, and every request is
// audited with the door it came through. One server and one image serve all the
// subtests, which run one after the other.
func TestUnmodifiedPrograms(t *testing.T) {
	image := debianImage(t)
	apiUp := newAPIUpstream(t)
	files := newFilesUpstream(t)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over plain http, path=%s\n", r.URL.Path)
	}))
	t.Cleanup(plain.Close)
	_, plainPort, _ := net.SplitHostPort(plain.Listener.Addr().String())

	cfg := dockerConfig(t)
	cfg.Containers.DefaultImage = image
	cfg.Proxy.AllowPrivateCIDRs = []string{"127.0.0.0/8"}
	cfg.Proxy.Hosts = map[string][]string{"example.com": {"127.0.0.1"}}
	cfg.Proxy.RateLimit.RequestsPerSecond = 1000
	cfg.Proxy.RateLimit.Burst = 1000
	// Under the race detector the 50 MiB stream takes minutes (the leak scan and the
	// redaction run over every byte).
	cfg.Containers.DefaultTimeoutMS = (15 * time.Minute).Milliseconds()
	cfg.Containers.KillOnShutdown = true
	// Every httptest TLS server has the same certificate (for example.com).
	caFile := filepath.Join(t.TempDir(), "upstream-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: apiUp.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Proxy.UpstreamCAFile = caFile
	cfg.ContainerPolicy.NetworkAllowlist = []string{
		"https://example.com:" + apiUp.port + "/",
		"https://example.com:" + files.port + "/",
		"http://example.com:" + plainPort + "/",
	}
	cfg.ContainerPolicy.AllowedCredentials = []string{"CURLAPI", "PYAPI"}
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()
	if _, err := c.PutCredential(ctx, "CURLAPI", api.PutCredentialRequest{
		Value: curlSecret, Host: "example.com", Port: mustAtoi(t, apiUp.port), PathPrefix: "/curl/", Placeholder: true,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutCredential(ctx, "PYAPI", api.PutCredentialRequest{
		Value: pySecret, Host: "example.com", Port: mustAtoi(t, apiUp.port), PathPrefix: "/py/",
	}); err != nil {
		t.Fatal(err)
	}
	apiBase := "https://example.com:" + apiUp.port
	filesBase := "https://example.com:" + files.port

	// The network a sandbox sees: the proxy variables and the CA bundle the server sets.
	env := runScript(t, c, image, "e2e env", proxyEnvCheck+`
curl -s -o /dev/null -w 'door=%{http_code}\n' http://denied.example.net/
env | grep -c 'curlABCDEF\|Python0123' || true`, "CURLAPI", "PYAPI")
	if env.status != api.ContainerStatusCompleted {
		t.Fatal(env)
	}
	if want := "proxy=http://127.0.0.1:3128 http://127.0.0.1:3128 ca="; !strings.HasPrefix(env.stdout, want) || !strings.Contains(env.stdout, ":present\n") {
		t.Fatalf("the sandbox's proxy and CA environment, want %q… and the bundle present:\n%s", want, env)
	}
	if got := outputKV(env.stdout)["door"]; got != "403" {
		t.Fatalf("a forward request to a host no rule allows: status %s, want 403 from the door\n%s", got, env)
	}
	if lines := strings.Split(strings.TrimSpace(env.stdout), "\n"); lines[len(lines)-1] != "0" {
		t.Errorf("a real credential value is in the sandbox's environment:\n%s", env)
	}

	t.Run("curl_https_placeholder_injected", func(t *testing.T) {
		okBefore, _ := apiUp.counts()
		r := runScript(t, c, image, "e2e curl https", proxyEnvCheck+`
case "$CURLAPI" in sk-*) echo "placeholder=yes";; *) echo "placeholder=no";; esac
curl -sS --fail-with-body -H "Authorization: Bearer $CURLAPI" `+apiBase+`/curl/v1/me; echo " exit=$?"`, "CURLAPI")
		if r.status != api.ContainerStatusCompleted || !strings.Contains(r.stdout, "placeholder=yes") {
			t.Fatal(r)
		}
		if !strings.Contains(r.stdout, `{"auth":"ok","path":"/curl/v1/me"} exit=0`) {
			t.Fatalf("curl did not reach the upstream with the injected credential:\n%s", r)
		}
		if ok, _ := apiUp.counts(); ok != okBefore+1 {
			t.Errorf("upstream saw %d requests with the right credential, want %d", ok, okBefore+1)
		}
		recs := requestAudit(t, cfg, addrs[0], r.id, "an allowed connect record naming CURLAPI", func(recs []rawAuditRecord) bool {
			return hasRecord(recs, func(a rawAuditRecord) bool {
				return a.Door == "connect" && a.Decision == api.DecisionAllowed && len(a.Credentials) == 1 && a.Credentials[0] == "CURLAPI"
			})
		})
		t.Logf("audit: %+v", recs)
	})

	t.Run("python_requests_nothing_inside", func(t *testing.T) {
		okBefore, _ := apiUp.counts()
		r := runScript(t, c, image, "e2e python requests", proxyEnvCheck+`
echo "pyenv=${PYAPI:-unset}"
python3 -c '
import requests
r = requests.get("`+apiBase+`/py/v1/items", timeout=60)
print("status=%d body=%s" % (r.status_code, r.text))
'`, "PYAPI")
		if r.status != api.ContainerStatusCompleted {
			t.Fatal(r)
		}
		if !strings.Contains(r.stdout, `status=200 body={"auth":"ok","path":"/py/v1/items"}`) {
			t.Fatalf("requests did not reach the upstream with the injected credential:\n%s", r)
		}
		if ok, _ := apiUp.counts(); ok != okBefore+1 {
			t.Errorf("upstream saw %d requests with the right credential, want %d", ok, okBefore+1)
		}
		requestAudit(t, cfg, addrs[0], r.id, "an allowed connect record naming PYAPI", func(recs []rawAuditRecord) bool {
			return hasRecord(recs, func(a rawAuditRecord) bool {
				return a.Door == "connect" && a.Decision == api.DecisionAllowed && len(a.Credentials) == 1 && a.Credentials[0] == "PYAPI"
			})
		})
	})

	t.Run("curl_refused_host", func(t *testing.T) {
		r := runScript(t, c, image, "e2e curl refused", proxyEnvCheck+`
curl -sS -v -o /dev/null https://denied.example.net/ 2>/tmp/err; echo "https_exit=$?"
grep -i '^< x-clawbox-error:' /tmp/err | tr -d '\r' | tr 'A-Z' 'a-z' | sed 's/^/https_header=/'
grep -o 'CONNECT tunnel failed, response 403' /tmp/err | head -1 | sed 's/^/https_curl=/'
curl -sS -i http://denied.example.net/ >/tmp/out 2>&1; echo "http_exit=$?"
head -1 /tmp/out | tr -d '\r' | sed 's/^/http_status=/'
grep -c blocked_by_policy /tmp/out | sed 's/^/http_code_mentions=/'`)
		if r.status != api.ContainerStatusCompleted {
			t.Fatal(r)
		}
		got := outputKV(r.stdout)
		if got["https_exit"] != "56" || got["https_curl"] != "CONNECT tunnel failed, response 403" {
			t.Errorf("curl over https to a refused host: want exit 56 after a 403 to CONNECT:\n%s", r)
		}
		if !strings.HasPrefix(got["https_header"], "< x-clawbox-error: blocked_by_policy") {
			t.Errorf("the CONNECT refusal carries no X-Clawbox-Error: blocked_by_policy header:\n%s", r)
		}
		if got["http_exit"] != "0" || !strings.HasPrefix(got["http_status"], "HTTP/1.1 403") || got["http_code_mentions"] == "0" {
			t.Errorf("curl over plain http to a refused host: want a 403 naming blocked_by_policy:\n%s", r)
		}
		requestAudit(t, cfg, addrs[0], r.id, "a blocked connect record for denied.example.net", func(recs []rawAuditRecord) bool {
			return hasRecord(recs, func(a rawAuditRecord) bool {
				return a.Door == "connect" && a.Decision == api.DecisionBlocked && strings.Contains(a.Host+a.URL, "denied.example.net")
			}) && hasRecord(recs, func(a rawAuditRecord) bool {
				return a.Door == "forward" && a.Decision == api.DecisionBlocked
			})
		})
	})

	t.Run("wget_plain_http", func(t *testing.T) {
		r := runScript(t, c, image, "e2e wget", proxyEnvCheck+`
wget -q -S -O - http://example.com:`+plainPort+`/hello/wget 2>/tmp/err; echo "exit=$?"
grep -i 'x-clawbox-error' /tmp/err | sed 's/^ */refused: /'`)
		if r.status != api.ContainerStatusCompleted || !strings.Contains(r.stdout, "hello over plain http, path=/hello/wget\nexit=0") {
			t.Fatal(r)
		}
		requestAudit(t, cfg, addrs[0], r.id, "an allowed forward record", func(recs []rawAuditRecord) bool {
			return hasRecord(recs, func(a rawAuditRecord) bool {
				return a.Door == "forward" && a.Decision == api.DecisionAllowed && a.Method == http.MethodGet
			})
		})
	})

	t.Run("git_clone_https", func(t *testing.T) {
		r := runScript(t, c, image, "e2e git clone", proxyEnvCheck+`
git clone -q `+filesBase+`/git/repo.git /tmp/repo; echo "exit=$?"
echo "readme=$(cat /tmp/repo/README)"
echo "subject=$(git -C /tmp/repo log -1 --format=%s)"
echo "data=$(wc -c < /tmp/repo/data.txt)"`)
		got := outputKV(r.stdout)
		if r.status != api.ContainerStatusCompleted || got["exit"] != "0" || got["readme"] != "cloned through the clawbox door" ||
			got["subject"] != "clawbox e2e commit" || got["data"] != fmt.Sprint(2*(256<<10)) {
			t.Fatal(r)
		}
		requestAudit(t, cfg, addrs[0], r.id, "git's smart-HTTP requests through the connect door", func(recs []rawAuditRecord) bool {
			return hasRecord(recs, func(a rawAuditRecord) bool {
				return a.Door == "connect" && a.Decision == api.DecisionAllowed && strings.Contains(a.URL, "/git/repo.git/info/refs")
			}) && hasRecord(recs, func(a rawAuditRecord) bool {
				return a.Door == "connect" && a.Decision == api.DecisionAllowed && a.Method == http.MethodPost && strings.Contains(a.URL, "git-upload-pack")
			})
		})
	})

	t.Run("pip_download", func(t *testing.T) {
		r := runScript(t, c, image, "e2e pip download", proxyEnvCheck+`
python3 -m pip download --no-deps --no-cache-dir --disable-pip-version-check --progress-bar off \
  --index-url `+filesBase+`/simple/ -d /tmp/dl clawbox-demo; echo "exit=$?"
cd /tmp/dl && sha256sum *.whl | sed 's/^/sum=/'`)
		got := outputKV(r.stdout)
		if r.status != api.ContainerStatusCompleted || got["exit"] != "0" || got["sum"] != files.wheelSum+"  "+files.wheelName {
			t.Fatalf("want sum=%s  %s\n%s", files.wheelSum, files.wheelName, r)
		}
	})

	t.Run("stream_50MiB_bounded_memory", func(t *testing.T) {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		stop := make(chan struct{})
		peak := make(chan uint64, 1)
		go func() {
			var m runtime.MemStats
			var peakInuse uint64
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				runtime.ReadMemStats(&m)
				peakInuse = max(peakInuse, m.HeapInuse)
				select {
				case <-stop:
					peak <- peakInuse
					return
				case <-tick.C:
				}
			}
		}()
		r := runScript(t, c, image, "e2e stream", proxyEnvCheck+`
start=$(date +%s)
curl -sS --fail `+filesBase+`/big | sha256sum | sed 's/ .*//;s/^/sum=/'
echo "seconds=$(( $(date +%s) - start ))"`)
		close(stop)
		grew := int64(<-peak) - int64(base.HeapInuse)
		got := outputKV(r.stdout)
		if r.status != api.ContainerStatusCompleted || got["sum"] != files.bigSum {
			t.Fatalf("want sum=%s\n%s", files.bigSum, r)
		}
		t.Logf("50 MiB through the door in %s s: the server's heap in use grew by at most %.1f MiB (from %.1f MiB)", got["seconds"], float64(grew)/(1<<20), float64(base.HeapInuse)/(1<<20))
		if grew > 25<<20 {
			t.Errorf("the server's heap grew by %.1f MiB while streaming 50 MiB: the body is buffered", float64(grew)/(1<<20))
		}
	})

	if ok, bad := apiUp.counts(); bad != 0 {
		t.Errorf("the API upstream saw %d requests without the right credential (%d with)", bad, ok)
	}
}
