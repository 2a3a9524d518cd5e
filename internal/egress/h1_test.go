package egress

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests drive h1Pool against real loopback servers: httptest's for ordinary
// answers, and rawServer for the faults a well-behaved server does not produce (a
// connection closed under a request, bytes sent on an idle connection, an endless
// header, 1xx answers).

func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

// passTransport records the requests h1Pool passes on, and answers 204.
type passTransport struct{ got atomic.Int32 }

func (p *passTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p.got.Add(1)
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
}

func newTestPool(t *testing.T, tlsConfig *tls.Config) (*h1Pool, *passTransport) {
	t.Helper()
	next := &passTransport{}
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	p := newH1Pool(next, loopbackDial, tlsConfig)
	t.Cleanup(p.close)
	return p, next
}

// countingServer is an httptest server counting the connections it accepted.
func countingServer(t *testing.T, tlsToo bool, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	if tlsToo {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, &conns
}

// get sends a GET of url through p and returns the answer with its body read.
func get(t *testing.T, p *h1Pool, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, string(b)
}

func TestH1PoolReusesConnections(t *testing.T) {
	for _, tlsToo := range []bool{false, true} {
		name := "http"
		if tlsToo {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			srv, conns := countingServer(t, tlsToo, func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "hello "+r.URL.Path)
			})
			var cfg *tls.Config
			if tlsToo {
				cfg = srv.Client().Transport.(*http.Transport).TLSClientConfig
			}
			p, next := newTestPool(t, cfg)
			for i := range 5 {
				resp, body := get(t, p, http.MethodGet, srv.URL+"/x")
				if resp.StatusCode != 200 || body != "hello /x" {
					t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("5 requests used %d connections, want 1", n)
			}
			if n := next.got.Load(); n != 0 {
				t.Errorf("%d requests went to the Transport, want none", n)
			}
		})
	}
}

func TestH1PoolClosesWhatItCannotReuse(t *testing.T) {
	srv, conns := countingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, strings.Repeat("b", 64<<10))
	})
	p, _ := newTestPool(t, nil)

	// A body closed before its end: the connection is not reused.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/big", nil)
	resp, err := p.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	get(t, p, http.MethodGet, srv.URL+"/big")
	if n := conns.Load(); n != 2 {
		t.Errorf("after a body closed early, %d connections, want 2", n)
	}
	// Connection: close from the upstream.
	get(t, p, http.MethodGet, srv.URL+"/close")
	get(t, p, http.MethodGet, srv.URL+"/big")
	if n := conns.Load(); n != 3 {
		t.Errorf("after Connection: close, %d connections, want 3", n)
	}
}

// rawServer accepts loopback connections and runs serve for each, with the
// connection's number (from 0) and a reader of what the client sent.
type rawServer struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	open []net.Conn
}

func newRawServer(t *testing.T, serve func(n int, c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.open = append(s.open, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				serve(n, c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() }

// readRequest reads one request's header (these tests send no bodies).
func readRequest(br *bufio.Reader) (*http.Request, error) {
	return http.ReadRequest(br)
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

func TestH1PoolRetriesAReplayableRequestOnce(t *testing.T) {
	var served, posts atomic.Int32
	srv := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, okAnswer)
		served.Add(1)
		// The next request on this connection is read and the connection closed
		// without an answer, as an upstream closing an idle connection does.
		if r, err := readRequest(br); err == nil && r.Method == http.MethodPost {
			posts.Add(1)
		}
		c.Close()
	})
	p, _ := newTestPool(t, nil)
	get(t, p, http.MethodGet, srv.url())
	resp, body := get(t, p, http.MethodGet, srv.url())
	if resp.StatusCode != 200 || body != "ok" || served.Load() != 2 {
		t.Fatalf("the retried GET: %d %q, %d answers", resp.StatusCode, body, served.Load())
	}

	// A POST without a body is not sent twice: the upstream may have acted on it.
	// The GET's second connection is idle, and closes under the POST.
	req, _ := http.NewRequest(http.MethodPost, srv.url(), nil)
	if resp, err := p.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("a POST on a connection closed under it was sent again")
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("the upstream read the POST %d times, want 1", n)
	}
}

func TestH1PoolIgnoresBytesSentOnAnIdleConnection(t *testing.T) {
	srv := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, okAnswer)
		if n == 0 {
			// Unasked, on the idle connection: not the next request's answer.
			io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
		}
		readRequest(br)
		io.WriteString(c, okAnswer)
	})
	p, _ := newTestPool(t, nil)
	get(t, p, http.MethodGet, srv.url())
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The 408 reaches the idle connection at some point: poll until a GET has
		// certainly been sent after it.
		resp, body := get(t, p, http.MethodGet, srv.url())
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("answer %d %q: the bytes sent on the idle connection were taken for it", resp.StatusCode, body)
		}
		p.mu.Lock()
		n := len(p.idle)
		p.mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
	}
}

func TestH1PoolBoundsTheHeaderAndSkips1xx(t *testing.T) {
	srv := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		for {
			r, err := readRequest(br)
			if err != nil {
				return
			}
			serveBoundsCase(r, c)
		}
	})
	p, _ := newTestPool(t, nil)
	req, _ := http.NewRequest(http.MethodGet, srv.url()+"/huge", nil)
	if resp, err := p.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("a 400 KB header was accepted")
	} else if !strings.Contains(err.Error(), "header larger than") {
		t.Errorf("error = %v, want the header bound's", err)
	}
	resp, body := get(t, p, http.MethodGet, srv.url()+"/hints")
	if resp.StatusCode != 200 || body != "ok" {
		t.Errorf("after 103: %d %q, want 200 ok", resp.StatusCode, body)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.url()+"/endless-hints", nil)
	if resp, err := p.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Error("endless 1xx answers were read without end")
	} else if !strings.Contains(err.Error(), "informational") {
		t.Errorf("error = %v, want the 1xx bound's", err)
	}
}

// serveBoundsCase answers one request of TestH1PoolBoundsTheHeaderAndSkips1xx.
func serveBoundsCase(r *http.Request, c net.Conn) {
	switch r.URL.Path {
	case "/huge":
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Filler: " + strings.Repeat("f", 1000) + "\r\n"
		for range 400 { // 400 KB, over the 256 KiB bound
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
		io.WriteString(c, "Content-Length: 2\r\n\r\nok")
	case "/hints":
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+okAnswer)
	case "/endless-hints":
		for {
			if _, err := io.WriteString(c, "HTTP/1.1 103 Early Hints\r\n\r\n"); err != nil {
				return
			}
		}
	}
}

func TestH1PoolDecodesTheGzipItAskedFor(t *testing.T) {
	srv, conns := countingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "gzip" {
			io.WriteString(w, "plain")
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, "decoded")
		zw.Close()
	})
	p, _ := newTestPool(t, nil)
	for range 2 {
		resp, body := get(t, p, http.MethodGet, srv.URL)
		if body != "decoded" || !resp.Uncompressed || resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("body %q, Uncompressed %v, Content-Encoding %q", body, resp.Uncompressed, resp.Header.Get("Content-Encoding"))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("two gzip answers used %d connections, want 1", n)
	}
	// A caller's own Accept-Encoding is passed through, and its answer left as is.
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := p.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Uncompressed || !bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		t.Errorf("the caller's gzip was decoded (Uncompressed %v)", resp.Uncompressed)
	}
}

func TestH1PoolEndsWithTheRequestContext(t *testing.T) {
	srv := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		readRequest(br)
		io.Copy(io.Discard, br) // never answers
	})
	p, _ := newTestPool(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url(), nil)
	_, err := p.RoundTrip(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestH1PoolPassesOnWhatItDoesNotSend(t *testing.T) {
	p, next := newTestPool(t, nil)
	reqs := []*http.Request{}
	withBody, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", strings.NewReader("body"))
	upgrade, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/", nil)
	upgrade.Header.Set("Upgrade", "websocket")
	expect, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/", nil)
	expect.Header.Set("Expect", "100-continue")
	reqs = append(reqs, withBody, upgrade, expect)
	for _, req := range reqs {
		resp, err := p.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%v: err %v", req.Header, err)
		}
	}
	if n := next.got.Load(); n != int32(len(reqs)) {
		t.Errorf("the Transport got %d requests, want %d", n, len(reqs))
	}
}

func TestH1PoolCloseClosesIdleConnections(t *testing.T) {
	closed := make(chan struct{})
	srv := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		readRequest(br)
		io.WriteString(c, okAnswer)
		if _, err := br.ReadByte(); err != nil { // EOF: the pool closed it
			close(closed)
		}
	})
	p, _ := newTestPool(t, nil)
	get(t, p, http.MethodGet, srv.url())
	p.close()
	p.close() // idempotent
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle connection was not closed")
	}
	req, _ := http.NewRequest(http.MethodGet, srv.url(), nil)
	if _, err := p.RoundTrip(req); err == nil {
		t.Error("a closed pool sent a request")
	}
}

func TestH1PoolExpiresAndBoundsIdleConnections(t *testing.T) {
	closedBy := func() (*rawServer, chan int) {
		eof := make(chan int, 4)
		return newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
			readRequest(br)
			io.WriteString(c, okAnswer)
			if _, err := br.ReadByte(); err != nil {
				eof <- n
			}
		}), eof
	}
	p, _ := newTestPool(t, nil)
	p.idleTimeout = 50 * time.Millisecond
	a, aClosed := closedBy()
	get(t, p, http.MethodGet, a.url())
	select {
	case <-aClosed:
	case <-time.After(10 * time.Second):
		t.Fatal("an idle connection outlived its idle timeout")
	}
	p.mu.Lock()
	if p.nIdle != 0 || len(p.idle) != 0 {
		t.Errorf("after expiry: %d idle, %d keys", p.nIdle, len(p.idle))
	}
	p.mu.Unlock()

	// At most maxIdle in all: the connection past it is closed, not kept.
	p.idleTimeout = time.Minute
	p.maxIdle = 1
	b, _ := closedBy()
	c, cClosed := closedBy()
	get(t, p, http.MethodGet, b.url())
	get(t, p, http.MethodGet, c.url())
	select {
	case <-cClosed:
	case <-time.After(10 * time.Second):
		t.Fatal("a connection past maxIdle was kept")
	}
	p.mu.Lock()
	if p.nIdle != 1 {
		t.Errorf("%d idle connections, want 1", p.nIdle)
	}
	p.mu.Unlock()
}

func TestH1PoolRefusesAStatusUnder100(t *testing.T) {
	srv := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err == nil {
			io.WriteString(c, "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n")
		}
	})
	p, _ := newTestPool(t, nil)
	req, _ := http.NewRequest(http.MethodGet, srv.url(), nil)
	if resp, err := p.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatalf("status %d was taken for an answer", resp.StatusCode)
	} else if !strings.Contains(err.Error(), "status 99") {
		t.Errorf("error = %v, want the status named", err)
	}
}
