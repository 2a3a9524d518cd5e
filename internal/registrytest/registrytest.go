// Package registrytest runs a throwaway Docker registry on loopback for tests of
// image pulls: Debian's docker-registry (distribution 2.8) serving from a temporary
// directory, behind a small reverse proxy that records every request, so a test can
// prove that a refused pull never reached the registry. The Docker engine treats
// registries on 127.0.0.0/8 as insecure by default, so plain HTTP works without
// touching the engine's configuration.
package registrytest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/internal/dockertest"
)

// Binary is where Debian's docker-registry package installs the registry.
const Binary = "/usr/bin/docker-registry"

// Registry is a running registry. Host is the address images are tagged with
// ("127.0.0.1:PORT"); it is the recording proxy, not the registry itself.
type Registry struct {
	Host string

	cmd    *exec.Cmd
	exited chan struct{} // closed when the registry process has exited
	proxy  *httptest.Server
	log    *syncBuffer

	mu       sync.Mutex // guards requests
	requests []string

	closeOnce sync.Once
	closeErr  error
}

// Start runs a registry storing its data under dir (a test's temporary directory).
// It returns once the registry answers. Stop it with Close.
func Start(ctx context.Context, dir string) (*Registry, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("%s: %w: install Debian's docker-registry package (apt-get install -y docker-registry)", Binary, err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	secret := make([]byte, 16)
	rand.Read(secret)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %x
`, filepath.Join(dir, "data"), addr, secret)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}

	r := &Registry{exited: make(chan struct{}), log: &syncBuffer{}}
	r.cmd = exec.Command(Binary, "serve", cfgPath)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", Binary, err)
	}
	go func() {
		r.cmd.Wait()
		close(r.exited)
	}()

	target := &url.URL{Scheme: "http", Host: addr}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Keep the Host the engine used, so the registry's upload locations
			// point back at the proxy.
			pr.Out.Host = pr.In.Host
		},
		FlushInterval: -1,
	}
	r.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		rp.ServeHTTP(w, req)
	}))
	r.Host = r.proxy.Listener.Addr().String()

	if err := r.waitReady(ctx, addr); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// waitReady polls the registry's /v2/ until it answers 200, the process exits or
// ctx (bounded to 30 s) ends.
func (r *Registry) waitReady(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-r.exited:
			return fmt.Errorf("%s exited before answering: %s", Binary, strings.TrimSpace(r.log.String()))
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer on %s: %w; its log: %s", Binary, addr, ctx.Err(), strings.TrimSpace(r.log.String()))
		case <-tick.C:
		}
	}
}

// Requests returns the requests the registry received so far, as "METHOD /path".
func (r *Registry) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.requests...)
}

// Log returns what the registry process has logged.
func (r *Registry) Log() string { return r.log.String() }

// Close stops the proxy and the registry process and waits for it. Idempotent.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		if r.proxy != nil {
			r.proxy.Close()
		}
		select {
		case <-r.exited:
			return
		default:
		}
		r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.exited:
		case <-time.After(10 * time.Second):
			r.cmd.Process.Kill()
			<-r.exited
			r.closeErr = errors.New("the registry did not stop on SIGINT and was killed")
		}
	})
	return r.closeErr
}

// PushRandomImage imports a one-layer image named ref (which must be under r.Host)
// holding size random bytes in /payload, labelled dockertest.Label, pushes it to the
// registry and removes it from the engine again, so that a pull has to download it.
// The layer is random, so no other local image shares it: the engine cannot skip
// the download with "Already exists".
func (r *Registry) PushRandomImage(ctx context.Context, ref string, size int) error {
	if !strings.HasPrefix(ref, r.Host+"/") {
		return fmt.Errorf("image %q is not under the registry %s", ref, r.Host)
	}
	payload := make([]byte, size)
	rand.Read(payload)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "payload", Mode: 0o644, Size: int64(size)}); err != nil {
		return err
	}
	if _, err := tw.Write(payload); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer cli.Close()
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, ref, client.ImageImportOptions{
		Changes: []string{"LABEL " + dockertest.Label + "=1"},
	})
	if err != nil {
		return fmt.Errorf("import %s: %w", ref, err)
	}
	_, err = io.Copy(io.Discard, res)
	res.Close()
	if err != nil {
		return fmt.Errorf("import %s: %w", ref, err)
	}
	push, err := cli.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: "e30="}) // "{}": no credentials
	if err == nil {
		err = push.Wait(ctx)
	}
	if err != nil {
		RemoveImage(ref)
		return fmt.Errorf("push %s: %w; registry log: %s", ref, err, r.Log())
	}
	return RemoveImage(ref)
}

// RemoveImage removes an image from the engine (a missing image is not an error).
func RemoveImage(ref string) error {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// RandomName returns a random tag-safe string.
func RandomName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects the registry's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil // keep the first MiB
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
