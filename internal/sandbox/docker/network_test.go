package docker

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/testkit"
)

func caKeyFile(w world, id string) string { return filepath.Join(w.proxiesDir, id+".ca-key") }

// TestNetworkInsideASandbox runs busybox wget inside a real sandbox with only
// http_proxy to guide it: the request goes through the supervisor's bridge to
// the sandbox's door, which sees the sandbox's token that wget never had; the
// proxy and CA variables are set for the main command and for execs, and the
// CA's certificate is in /run/clawbox while its key is not.
func TestNetworkInsideASandbox(t *testing.T) { dockertest.ForEachRuntime(t, testNetworkInsideASandbox) }

func testNetworkInsideASandbox(t *testing.T, rt dockertest.Runtime) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{runtime: rt})
	ctx := testCtx(t)
	// The main command itself fetches through the bridge, with nothing but the
	// environment clawbox set.
	rec, err := e.m.Spawn(ctx, spawnReq("sh", "-c", "wget -q -O- http://main.example.test/from-main; echo; sleep 300"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Kill(testCtx(t), rec.ID) })

	specs := e.doors.Specs(rec.ID)
	if len(specs) != 1 || specs[0].CA == nil {
		t.Fatalf("door specs %+v, want one with a CA", specs)
	}
	ca := specs[0].CA
	dir := filepath.Join(e.proxiesDir, rec.ID)
	tok, err := os.ReadFile(filepath.Join(dir, "token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))

	t.Run("files", func(t *testing.T) {
		st, err := os.Stat(caKeyFile(e.world, rec.ID))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("CA key file: %v %v, want 0600 beside the socket dir", st, err)
		}
		testkit.NoPrivateKeyUnder(t, dir)
		if got := mustRun(t, ctx, e.svc, rec.ID, "cat", sandbox.ContainerCAPath).stdout; got != string(ca.CertPEM()) {
			t.Errorf("%s in the sandbox:\n%s\nwant the CA's certificate", sandbox.ContainerCAPath, got)
		}
		bundle := mustRun(t, ctx, e.svc, rec.ID, "cat", sandbox.ContainerCABundlePath).stdout
		if !strings.HasPrefix(bundle, string(ca.CertPEM())) {
			t.Errorf("%s does not start with the CA's certificate", sandbox.ContainerCABundlePath)
		}
		ls := mustRun(t, ctx, e.svc, rec.ID, "ls", "-a", sandbox.ContainerSocketDir).stdout
		if strings.Contains(ls, "key") {
			t.Errorf("%s lists a key: %q", sandbox.ContainerSocketDir, ls)
		}
	})

	t.Run("env of an exec", func(t *testing.T) {
		out := mustRun(t, ctx, e.svc, rec.ID, "env").stdout
		for _, kv := range []string{
			"HTTP_PROXY=http://127.0.0.1:3128", "HTTPS_PROXY=http://127.0.0.1:3128",
			"http_proxy=http://127.0.0.1:3128", "https_proxy=http://127.0.0.1:3128",
			"NO_PROXY=localhost,127.0.0.1,::1", "no_proxy=localhost,127.0.0.1,::1",
			"SSL_CERT_FILE=/run/clawbox/ca-bundle.pem", "REQUESTS_CA_BUNDLE=/run/clawbox/ca-bundle.pem",
			"CURL_CA_BUNDLE=/run/clawbox/ca-bundle.pem", "GIT_SSL_CAINFO=/run/clawbox/ca-bundle.pem",
			"PIP_CERT=/run/clawbox/ca-bundle.pem", "NODE_EXTRA_CA_CERTS=/run/clawbox/ca.pem",
		} {
			if !strings.Contains("\n"+out, "\n"+kv+"\n") {
				t.Errorf("exec env lacks %s:\n%s", kv, out)
			}
		}
	})

	t.Run("wget through the bridge", func(t *testing.T) {
		r := mustRun(t, ctx, e.svc, rec.ID, "wget", "-q", "-O-", "http://example.test/some/path?q=1")
		if want := "door " + rec.ID + ": GET http://example.test/some/path?q=1"; r.exit.ExitCode != 0 || r.stdout != want {
			t.Fatalf("wget: exit %d stdout %q stderr %q, want %q", r.exit.ExitCode, r.stdout, r.stderr, want)
		}
		want := "GET http://example.test/some/path?q=1 Bearer " + token
		seen := e.doors.Proxied(rec.ID)
		found := false
		for _, s := range seen {
			found = found || s == want
		}
		if !found {
			t.Errorf("door saw %q, want %q", seen, want)
		}
	})

	t.Run("the main command's request", func(t *testing.T) {
		want := "GET http://main.example.test/from-main Bearer " + token
		pollUntil(t, ctx, "the main command's wget to reach the door", func() bool {
			for _, s := range e.doors.Proxied(rec.ID) {
				if s == want {
					return true
				}
			}
			return false
		})
	})

	t.Run("CONNECT through the bridge", func(t *testing.T) {
		// The test door refuses every CONNECT; the refusal comes back through the
		// bridge as the door sent it. (The test image's wget has no TLS.)
		r := mustRun(t, ctx, e.svc, rec.ID, "sh", "-c",
			`printf 'CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\nProxy-Authorization: Basic Zm9yZ2Vk\r\n\r\n' | nc 127.0.0.1 3128`)
		if !strings.HasPrefix(r.stdout, "HTTP/1.1 403 ") || !strings.Contains(r.stdout, "blocked_by_policy") {
			logs, _ := e.m.Logs(ctx, rec.ID)
			t.Errorf("CONNECT answer %q (stderr %q), want the door's 403; sandbox stderr %q", r.stdout, r.stderr, logs.Logs.Stderr)
		}
		found := false
		for _, s := range e.doors.Proxied(rec.ID) {
			found = found || s == "CONNECT example.test:443 Bearer "+token
		}
		if !found {
			t.Errorf("door saw %q, want the CONNECT with the sandbox's token in place of the client's", e.doors.Proxied(rec.ID))
		}
	})
}

// TestCALifecycle follows a sandbox's CA through each way a sandbox's life
// ends: a failed spawn and a kill remove the key, a shutdown keeps it and the
// next process opens the door with the same CA, and an adoption without a
// usable key opens the door with none.
func TestCALifecycle(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	t.Run("failed spawn", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, newWorld(t), envOptions{})
		ctx := testCtx(t)
		req := spawnReq("true")
		req.Image = "clawbox-test/missing:" + randHex(4) // fails after the door opened
		_, err := e.m.Spawn(ctx, req)
		wantCode(t, err, api.CodeImageNotFound)
		ents, err := os.ReadDir(e.proxiesDir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			t.Errorf("proxies dir after a failed spawn holds %v, want nothing (no socket dir, no CA key)", ents)
		}
		if n := len(e.doors.CloseCounts()); n != 1 {
			t.Errorf("%d doors closed, want the one opened", n)
		}
	})
	t.Run("kill", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, newWorld(t), envOptions{})
		ctx := testCtx(t)
		rec := spawnRunning(t, ctx, e)
		if _, err := os.Stat(caKeyFile(e.world, rec.ID)); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := e.m.Kill(ctx, rec.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := os.Stat(caKeyFile(e.world, rec.ID)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("CA key after kill: %v", err)
		}
	})
	t.Run("detach and adopt", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		e1 := newEnv(t, w, envOptions{})
		ctx := testCtx(t)
		kept, err := e1.m.Spawn(ctx, spawnReq("sleep", "300"))
		if err != nil {
			t.Fatal(err)
		}
		keyless, err := e1.m.Spawn(ctx, spawnReq("sleep", "300"))
		if err != nil {
			t.Fatal(err)
		}
		first := e1.doors.Specs(kept.ID)[0].CA
		e1.close(t)
		if _, err := os.Stat(caKeyFile(w, kept.ID)); err != nil {
			t.Fatalf("shutdown removed the CA key the next start needs: %v", err)
		}
		if err := os.Remove(caKeyFile(w, keyless.ID)); err != nil {
			t.Fatal(err)
		}

		e2 := newEnv(t, w, envOptions{})
		specs := e2.doors.Specs(kept.ID)
		if len(specs) != 1 || specs[0].CA == nil || !bytes.Equal(specs[0].CA.CertPEM(), first.CertPEM()) {
			t.Fatalf("adopted door specs %+v, want the CA made at spawn", specs)
		}
		// Its leaves verify against what the sandbox already trusts.
		if _, err := specs[0].CA.Leaf("api.example.test"); err != nil {
			t.Errorf("the reloaded CA cannot mint: %v", err)
		}
		specs = e2.doors.Specs(keyless.ID)
		if len(specs) != 1 || specs[0].CA != nil {
			t.Fatalf("door specs without a key %+v, want one without a CA", specs)
		}
		for _, id := range []string{kept.ID, keyless.ID} {
			rec, err := e2.m.Get(ctx, id)
			if err != nil || rec.Status != sandbox.StatusRunning {
				t.Fatalf("%s after adoption: %v %+v, want running", id, err, rec)
			}
			if _, err := e2.m.Kill(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(caKeyFile(w, id)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("CA key of %s after kill: %v", id, err)
			}
		}
	})
}

// TestNoBridgeWithoutADoor checks that a container_direct sandbox gets no
// bridge, no proxy variables and no CA.
func TestNoBridgeWithoutADoor(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{policies: []string{"container", "container_direct"}})
	ctx := testCtx(t)
	req := spawnReq("sleep", "300")
	req.Policy = string(sandbox.PolicyContainerDirect)
	rec, err := e.m.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Kill(testCtx(t), rec.ID) })
	if n := len(e.doors.Specs(rec.ID)); n != 0 {
		t.Errorf("%d doors opened for container_direct", n)
	}
	env := mustRun(t, ctx, e.svc, rec.ID, "env").stdout
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "SSL_CERT_FILE", "PIP_CERT"} {
		if strings.Contains("\n"+env, "\n"+k+"=") {
			t.Errorf("container_direct env sets %s:\n%s", k, env)
		}
	}
	if ls := mustRun(t, ctx, e.svc, rec.ID, "ls", sandbox.ContainerSocketDir).stdout; strings.Contains(ls, "ca.pem") || strings.Contains(ls, "ca-bundle") {
		t.Errorf("container_direct socket dir: %q", ls)
	}
	if _, err := os.Stat(caKeyFile(e.world, rec.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("container_direct CA key: %v", err)
	}
	// Nothing listens on the bridge's address.
	r := mustRun(t, ctx, e.svc, rec.ID, "wget", "-q", "-O-", "-T", "2", "http://127.0.0.1:3128/")
	if r.exit.ExitCode == 0 {
		t.Errorf("something listens on 127.0.0.1:3128 in a container_direct sandbox")
	}
}
