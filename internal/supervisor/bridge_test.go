package supervisor

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/egress/tlsca"
)

const bridgeToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeDoor is an egress door on a Unix socket: it records the
// Proxy-Authorization of every request and serves absolute-form requests
// (echoing what it got) and CONNECT (an echo tunnel; "refused.test:443" is
// refused with 403 as the real door refuses by policy).
type fakeDoor struct {
	path string

	mu    sync.Mutex // guards auths, conns
	auths []string   // "METHOD target auth"
	conns int        // connections accepted

	release chan struct{}    // /stream's second half waits for it
	ca      *tlsca.Authority // set: CONNECT tls.test:443 is intercepted with it
	srv     *http.Server
	wg      sync.WaitGroup
}

func newFakeDoor(t *testing.T) *fakeDoor {
	t.Helper()
	dir, err := os.MkdirTemp("", "cbxdoor") // short: a socket path is at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &fakeDoor{path: filepath.Join(dir, "proxy.sock"), release: make(chan struct{})}
	ln, err := net.Listen("unix", d.path)
	if err != nil {
		t.Fatal(err)
	}
	d.srv = &http.Server{Handler: http.HandlerFunc(d.serve), ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				d.mu.Lock()
				d.conns++
				d.mu.Unlock()
			}
		}}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		_ = d.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		d.srv.Close()
		d.wg.Wait()
	})
	return d
}

func (d *fakeDoor) seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.auths...)
}

func (d *fakeDoor) serve(w http.ResponseWriter, r *http.Request) {
	target := r.RequestURI
	d.mu.Lock()
	d.auths = append(d.auths, r.Method+" "+target+" "+r.Header.Get("Proxy-Authorization"))
	d.mu.Unlock()
	if r.Header.Get("Proxy-Authorization") != "Bearer "+bridgeToken {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusProxyAuthRequired)
		io.WriteString(w, `{"error":"bad token","code":"unauthorized"}`)
		return
	}
	if r.Method == http.MethodConnect {
		if r.Host == "refused.test:443" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Clawbox-Code", "blocked_by_policy")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":"refused.test is not allowed","code":"blocked_by_policy"}`)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if r.Host == "tls.test:443" && d.ca != nil {
			// Intercept as the real door does: TLS with a leaf of the sandbox's
			// CA, then plain HTTP inside.
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				defer c.Close()
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				tc := tls.Server(&prefixConn{Conn: c, r: brw.Reader}, &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
					return d.ca.Leaf(h.ServerName)
				}})
				defer tc.Close()
				req, err := http.ReadRequest(bufio.NewReader(tc))
				if err != nil {
					return
				}
				body := "inside TLS: " + req.Method + " " + req.Host + req.URL.Path
				fmt.Fprintf(tc, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
			}()
			return
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer c.Close()
			io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
			// Echo until the client's half-close, then say goodbye and close.
			io.Copy(c, brw.Reader)
			io.WriteString(c, "bye")
		}()
		return
	}
	if !r.URL.IsAbs() {
		http.Error(w, "not absolute-form", http.StatusBadRequest)
		return
	}
	switch r.URL.Path {
	case "/stream":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		select {
		case <-d.release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "second\n")
	case "/echo":
		_ = http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-TE", strings.Join(r.TransferEncoding, ","))
		io.WriteString(w, r.Method+" "+r.URL.String()+"\n")
		rc := http.NewResponseController(w)
		rc.Flush()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				rc.Flush()
			}
			if err != nil {
				return
			}
		}
	default:
		fmt.Fprintf(w, "%s %s host=%s", r.Method, r.URL.String(), r.Host)
	}
}

// startBridge serves a bridge to door on a loopback port and returns its
// address; the bridge stops at cleanup and must have returned.
func startBridge(t *testing.T, door string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bridge{DoorSocket: door, Token: bridgeToken, Logf: t.Logf}
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the bridge did not stop")
		}
	})
	return ln.Addr().String()
}

func proxyClient(t *testing.T, addr string) *http.Client {
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr, User: url.UserPassword("workload", "its-own-guess")})}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func TestBridgeForwardsAbsoluteFormWithTheSandboxToken(t *testing.T) {
	door := newFakeDoor(t)
	addr := startBridge(t, door.path)
	c := proxyClient(t, addr)
	for i := range 3 { // one keep-alive connection each way
		resp, err := c.Get("http://example.test:8080/a/b?q=1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "GET http://example.test:8080/a/b?q=1 host=example.test:8080"; resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, b, want)
		}
	}
	want := "GET http://example.test:8080/a/b?q=1 Bearer " + bridgeToken
	seen := door.seen()
	if len(seen) != 3 {
		t.Fatalf("door saw %q, want 3 requests", seen)
	}
	for _, s := range seen {
		if s != want {
			t.Errorf("door saw %q, want %q (the client's own Proxy-Authorization replaced)", s, want)
		}
	}
	door.mu.Lock()
	conns := door.conns
	door.mu.Unlock()
	if conns != 1 {
		t.Errorf("door accepted %d connections for 3 sequential requests, want 1 (kept alive)", conns)
	}
}

func TestBridgeKeepAliveOnOneClientConnection(t *testing.T) {
	door := newFakeDoor(t)
	addr := startBridge(t, door.path)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	// Two pipelined requests, the second with a chunked body.
	io.WriteString(conn, "GET http://one.test/x HTTP/1.1\r\nHost: one.test\r\nProxy-Authorization: Bearer forged\r\n\r\n"+
		"POST http://two.test/echo HTTP/1.1\r\nHost: two.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
	br := bufio.NewReader(conn)
	for i, want := range []string{"GET http://one.test/x host=one.test", "POST http://two.test/echo\nhello world"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("response %d: %q, want %q", i, b, want)
		}
		if i == 1 && resp.Header.Get("X-Seen-TE") != "chunked" {
			t.Errorf("the door got the body with transfer encoding %q, want chunked (streamed, not buffered)", resp.Header.Get("X-Seen-TE"))
		}
	}
	for _, s := range door.seen() {
		if !strings.HasSuffix(s, " Bearer "+bridgeToken) {
			t.Errorf("door saw %q", s)
		}
	}
}

func TestBridgeStreamsBothWays(t *testing.T) {
	door := newFakeDoor(t)
	addr := startBridge(t, door.path)
	c := proxyClient(t, addr)

	t.Run("response", func(t *testing.T) {
		resp, err := c.Get("http://stream.test/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		// The first line arrives while the door still holds the rest back.
		line, err := br.ReadString('\n')
		if err != nil || line != "first\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		close(door.release)
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "second\n" {
			t.Fatalf("rest %q, %v", rest, err)
		}
	})

	t.Run("request", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		req, _ := http.NewRequest(http.MethodPut, "http://stream.test/echo", pr)
		type result struct {
			resp *http.Response
			err  error
		}
		rc := make(chan result, 1)
		go func() {
			resp, err := c.Do(req)
			rc <- result{resp, err}
		}()
		// The upload's first part reaches the door and comes back before the
		// upload ends.
		if _, err := io.WriteString(pw, "part one|"); err != nil {
			t.Fatal(err)
		}
		var r result
		select {
		case r = <-rc:
		case <-time.After(30 * time.Second):
			t.Fatal("no response while the upload streams")
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
		defer r.resp.Body.Close()
		br := bufio.NewReader(r.resp.Body)
		if line, err := br.ReadString('\n'); err != nil || line != "PUT http://stream.test/echo\n" {
			t.Fatalf("head line %q, %v", line, err)
		}
		got := make([]byte, len("part one|"))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != "part one|" {
			t.Fatalf("echo %q, %v", got, err)
		}
		io.WriteString(pw, "part two")
		pw.Close()
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "part two" {
			t.Fatalf("rest %q, %v", rest, err)
		}
	})
}

// dialConnect sends raw (a CONNECT and maybe more) to the bridge and returns
// the connection and the response head.
func dialConnect(t *testing.T, addr, raw string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, resp
}

func TestBridgeConnect(t *testing.T) {
	door := newFakeDoor(t)
	addr := startBridge(t, door.path)

	t.Run("spliced both ways with early data", func(t *testing.T) {
		// The first tunnel bytes travel in the same write as the CONNECT.
		conn, br, resp := dialConnect(t, addr, "CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\nProxy-Authorization: Basic Zm9yZ2Vk\r\n\r\nearly|")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		io.WriteString(conn, "late")
		conn.(*net.TCPConn).CloseWrite()
		all, err := io.ReadAll(br)
		if err != nil || string(all) != "early|latebye" {
			t.Fatalf("tunnel gave %q, %v; want the echo, then the door's last word after the half-close", all, err)
		}
		want := "CONNECT api.example.test:443 Bearer " + bridgeToken
		if seen := door.seen(); len(seen) == 0 || seen[len(seen)-1] != want {
			t.Errorf("door saw %q, want last %q", seen, want)
		}
	})

	t.Run("refusal relayed", func(t *testing.T) {
		_, br, resp := dialConnect(t, addr, "CONNECT refused.test:443 HTTP/1.1\r\nHost: refused.test:443\r\n\r\n")
		body, _ := io.ReadAll(io.LimitReader(br, 1<<16))
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Clawbox-Code") != "blocked_by_policy" ||
			!strings.Contains(string(body), `"code":"blocked_by_policy"`) {
			t.Fatalf("refusal: %d %v %q", resp.StatusCode, resp.Header, body)
		}
	})
}

func TestBridgeDoorDown(t *testing.T) {
	dir, err := os.MkdirTemp("", "cbxdoor")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	gone := filepath.Join(dir, "proxy.sock") // nothing listens
	addr := startBridge(t, gone)
	check := func(t *testing.T, status int, body []byte) {
		t.Helper()
		var e wireError
		if status != http.StatusBadGateway || json.Unmarshal(body, &e) != nil || e.Code != "upstream_error" || !strings.Contains(e.Message, "door") {
			t.Fatalf("door down: %d %q, want 502 upstream_error naming the door", status, body)
		}
	}
	t.Run("absolute-form", func(t *testing.T) {
		resp, err := proxyClient(t, addr).Get("http://example.test/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		check(t, resp.StatusCode, b)
	})
	t.Run("connect", func(t *testing.T) {
		_, br, resp := dialConnect(t, addr, "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n")
		b, _ := io.ReadAll(resp.Body)
		_ = br
		check(t, resp.StatusCode, b)
	})
	t.Run("socket refuses", func(t *testing.T) {
		// A socket file whose listener is gone: connection refused.
		ln, err := net.Listen("unix", gone)
		if err != nil {
			t.Fatal(err)
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		ln.Close()
		resp, err := proxyClient(t, addr).Get("http://example.test/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		check(t, resp.StatusCode, b)
	})
}

func TestBridgeRefusesWhatIsNotAProxyRequest(t *testing.T) {
	door := newFakeDoor(t)
	addr := startBridge(t, door.path)
	for _, tc := range []struct{ name, raw string }{
		{"origin-form", "GET /x HTTP/1.1\r\nHost: 127.0.0.1:3128\r\n\r\n"},
		{"https absolute-form", "GET https://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			io.WriteString(conn, tc.raw)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			var e wireError
			if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(b, &e) != nil || e.Code != "invalid_request" {
				t.Errorf("%d %q, want 400 invalid_request", resp.StatusCode, b)
			}
		})
	}
	if seen := door.seen(); len(seen) != 0 {
		t.Errorf("door saw %q, want nothing", seen)
	}
}

// TestBridgeStopsWithOpenTunnels checks that ending the bridge's context ends
// an open tunnel and an in-flight streamed response, and that Serve returns
// (the cleanup fails the test otherwise; goleak checks the goroutines).
func TestBridgeStopsWithOpenTunnels(t *testing.T) {
	door := newFakeDoor(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := &Bridge{DoorSocket: door.path, Token: bridgeToken, Logf: t.Logf}
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, ln) }()
	addr := ln.Addr().String()

	conn, br, resp := dialConnect(t, addr, "CONNECT held.test:443 HTTP/1.1\r\nHost: held.test:443\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	io.WriteString(conn, "x")
	if got, err := br.ReadByte(); err != nil || got != 'x' {
		t.Fatalf("echo %q %v", got, err)
	}
	c := proxyClient(t, addr)
	sresp, err := c.Get("http://stream.test/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	if line, err := bufio.NewReader(sresp.Body).ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("first line %q %v", line, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return with a tunnel and a stream open")
	}
	if _, err := io.ReadAll(br); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Errorf("tunnel after stop: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the bridge still accepts after it stopped")
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

// TestBridgeConnectAfterClientHalfClose sends a CONNECT and half-closes at
// once (as `printf ... | nc` does): the door's answer still comes back.
func TestBridgeConnectAfterClientHalfClose(t *testing.T) {
	door := newFakeDoor(t)
	addr := startBridge(t, door.path)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, "CONNECT refused.test:443 HTTP/1.1\r\nHost: refused.test:443\r\n\r\n")
	conn.(*net.TCPConn).CloseWrite()
	// The half-close ends the request's context as soon as the server reads
	// the EOF: a slow door dial must not be cancelled by it.
	b, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(b), "HTTP/1.1 403 ") {
		t.Errorf("answer %q, want the door's 403", b)
	}
}

// prefixConn reads what a bufio.Reader already holds before the connection.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestBridgeConnectCarriesTLS runs Go's own https client through the bridge
// to a door that intercepts with the sandbox's CA: the ClientHello travels
// through the splice and the client verifies the leaf against the CA.
func TestBridgeConnectCarriesTLS(t *testing.T) {
	door := newFakeDoor(t)
	ca, err := tlsca.New("clawbox-test")
	if err != nil {
		t.Fatal(err)
	}
	door.ca = ca
	addr := startBridge(t, door.path)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr}), TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://tls.test/secret/path")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "inside TLS: GET tls.test/secret/path"; resp.StatusCode != 200 || string(b) != want {
		t.Fatalf("%d %q, want 200 %q", resp.StatusCode, b, want)
	}
	want := "CONNECT tls.test:443 Bearer " + bridgeToken
	if seen := door.seen(); len(seen) != 1 || seen[0] != want {
		t.Errorf("door saw %q, want [%q]", seen, want)
	}
}
