package dockertest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Relay forwards connections on a Unix socket to the real Docker socket: a Docker
// that can be made to appear after a server started (point DOCKER_HOST at the
// relay's path), and to stop answering while it serves.
type Relay struct {
	ln        net.Listener
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     []net.Conn
	closeOnce sync.Once
}

// StartRelay listens at path until Close or the end of the test.
func StartRelay(t testing.TB, path string) *Relay {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", "/var/run/docker.sock")
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, up)
			r.mu.Unlock()
			r.wg.Add(2)
			go func() { defer r.wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer r.wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(r.Close)
	return r
}

// Close stops listening, cuts every relayed connection and waits for the relay's
// goroutines: Docker stops answering. It is idempotent.
func (r *Relay) Close() {
	r.closeOnce.Do(func() {
		r.ln.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
}
