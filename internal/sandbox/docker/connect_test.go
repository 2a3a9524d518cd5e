package docker

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/client"
)

// TestConnectErrors checks the errors a server operator sees at start: no engine,
// and an engine older than the client's minimum API version (a fake engine on a
// Unix socket, since the real daemon cannot be made old on demand).
func TestConnectErrors(t *testing.T) {
	dir := t.TempDir()
	oldSock := filepath.Join(dir, "old.sock")
	ln, err := net.Listen("unix", oldSock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.24")
		w.Header().Set("Ostype", "linux")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("OK"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	tests := []struct {
		name string
		host string
		want string
	}{
		{"unreachable", "unix://" + filepath.Join(dir, "missing.sock"), "is not reachable"},
		{"too old", "unix://" + oldSock, "is too old"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cli, err := client.New(client.WithHost(tc.host))
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			b, err := New(Options{Client: cli})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			err = b.Connect(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.host) {
				t.Fatalf("Connect = %v, want %q naming %s", err, tc.want, tc.host)
			}
		})
	}
}

// TestPingBesideOtherCalls runs health pings beside engine calls on one backend, as
// the server's health check does while sandboxes start: under -race it fails if
// Ping writes client state (it once renegotiated the API version on every call).
func TestPingBesideOtherCalls(t *testing.T) {
	requireDocker(t)
	b, err := New(Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 100; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- b.Ping(ctx)
		}()
		go func() {
			defer wg.Done()
			_, err := b.List(ctx, "clawbox-test-none")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
