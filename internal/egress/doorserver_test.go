package egress

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startDoorServer serves h on a loopback listener with the door's server and
// returns its address; the server is closed when the test ends.
func startDoorServer(t *testing.T, h http.HandlerFunc) (string, *doorServer) {
	t.Helper()
	return startBoundedDoorServer(t, h, 0, 0)
}

// rawConn dials addr and returns the connection and a reader of it; it is
// closed when the test ends.
func rawConn(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c, bufio.NewReader(c)
}

func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

func readResp(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	return resp, string(b)
}

// assertClosed checks that the server closes the connection (EOF or reset,
// never more bytes).
func assertClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	b, err := br.ReadByte()
	if err == nil {
		t.Fatalf("connection still open: read %q", b)
	}
	if isTimeout(err) {
		t.Fatal("connection still open after 30 s")
	}
}

func TestDoorServerKeepAliveAndFraming(t *testing.T) {
	long := strings.Repeat("x", 3*bufferBeforeCommit)
	addr, _ := startDoorServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/short":
			_, _ = io.WriteString(w, "hello")
		case "/long":
			_, _ = io.WriteString(w, long)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	})
	c, br := rawConn(t, addr)
	send(t, c, "GET /short HTTP/1.1\r\nHost: a\r\n\r\nGET /long HTTP/1.1\r\nHost: a\r\n\r\nHEAD /short HTTP/1.1\r\nHost: a\r\n\r\nGET /empty HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := readResp(t, br, "GET")
	if resp.StatusCode != 200 || body != "hello" || resp.ContentLength != 5 || resp.Header.Get("Date") == "" || resp.Close {
		t.Fatalf("short answer: %d %q length %d date %q close %v", resp.StatusCode, body, resp.ContentLength, resp.Header.Get("Date"), resp.Close)
	}
	resp, body = readResp(t, br, "GET")
	if body != long || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("long answer: %d bytes, transfer encoding %v", len(body), resp.TransferEncoding)
	}
	resp, body = readResp(t, br, "HEAD")
	if resp.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, body)
	}
	resp, body = readResp(t, br, "GET")
	if resp.StatusCode != http.StatusNoContent || body != "" || resp.Header.Get("Content-Length") != "" {
		t.Fatalf("204: %d %q %v", resp.StatusCode, body, resp.Header)
	}

	// HTTP/1.0: a long answer is delimited by the connection's end.
	c, br = rawConn(t, addr)
	send(t, c, "GET /long HTTP/1.0\r\n\r\n")
	resp, body = readResp(t, br, "GET")
	if body != long || !resp.Close || len(resp.TransferEncoding) != 0 {
		t.Fatalf("HTTP/1.0 long answer: %d bytes, close %v, te %v", len(body), resp.Close, resp.TransferEncoding)
	}
	assertClosed(t, br)

	// Connection: close from the client is honoured.
	c, br = rawConn(t, addr)
	send(t, c, "GET /short HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if resp, body = readResp(t, br, "GET"); body != "hello" || !resp.Close {
		t.Fatalf("Connection: close: %q close %v", body, resp.Close)
	}
	assertClosed(t, br)
}

func TestDoorServerReusesConnectionsWithNetHTTPClient(t *testing.T) {
	addr, _ := startDoorServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, strconv.Itoa(len(b)))
	})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	var reused atomic.Int32
	for i := range 5 {
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
			if ci.Reused {
				reused.Add(1)
			}
		}})
		body := strings.Repeat("b", i*3000)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/", strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != strconv.Itoa(len(body)) {
			t.Fatalf("request %d: got %q", i, got)
		}
	}
	if reused.Load() != 4 {
		t.Fatalf("reused a connection %d times of 4", reused.Load())
	}
}

func TestDoorServerRefusesBadRequests(t *testing.T) {
	var served atomic.Int32
	addr, _ := startDoorServer(t, func(w http.ResponseWriter, r *http.Request) { served.Add(1) })
	for _, tc := range []struct {
		name, req string
		code      int
	}{
		{"no Host on HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
		{"malformed Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"two transfer codings", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"too many empty lines first", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"a bare CR first", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"two Content-Lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"header too large", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 40<<10) + "\r\n\r\n", 431},
		{"unknown expectation", "POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\nContent-Length: 1\r\n\r\na", 417},
		{"bad request line", "GET\r\n\r\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := rawConn(t, addr)
			send(t, c, tc.req)
			resp, _ := readResp(t, br, "GET")
			if resp.StatusCode != tc.code || !resp.Close {
				t.Fatalf("got %d (close %v), want %d", resp.StatusCode, resp.Close, tc.code)
			}
			assertClosed(t, br)
		})
	}
	if n := served.Load(); n != 0 {
		t.Fatalf("the handler served %d refused requests", n)
	}

	// The unknown coding is not echoed back.
	c, br := rawConn(t, addr)
	send(t, c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x-<script>\r\n\r\n")
	if resp, body := readResp(t, br, "POST"); resp.StatusCode != 501 || strings.Contains(body, "script") {
		t.Fatalf("unknown coding: %d %q", resp.StatusCode, body)
	}

	// Up to four empty lines before a request line are ignored, also after a POST
	// whose body was followed by one more CRLF than its length counts.
	c, br = rawConn(t, addr)
	send(t, c, "\r\n\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for i, m := range []string{"POST", "GET"} {
		if resp, _ := readResp(t, br, m); resp.StatusCode != 200 || resp.Close {
			t.Fatalf("request %d after empty lines: %d close %v", i, resp.StatusCode, resp.Close)
		}
	}
	if n := served.Load(); n != 2 {
		t.Fatalf("served %d requests after empty lines, want 2", n)
	}
	served.Store(0)

	// An absolute-form target carries the host; no Host header is needed.
	c, br = rawConn(t, addr)
	send(t, c, "GET http://example.test/ HTTP/1.1\r\n\r\n")
	if resp, _ := readResp(t, br, "GET"); resp.StatusCode != 200 || served.Load() != 1 {
		t.Fatalf("absolute form: %d, served %d", resp.StatusCode, served.Load())
	}
}

func TestDoorServerExpectContinue(t *testing.T) {
	addr, _ := startDoorServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		if r.Header.Get("Expect") != "" {
			// The server handles it; the handler (and so the upstream) never sees it.
			http.Error(w, "Expect reached the handler", http.StatusTeapot)
			return
		}
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})
	c, br := rawConn(t, addr)
	send(t, c, "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim answer: %q %v", line, err)
	}
	if blank, _ := br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q", blank)
	}
	send(t, c, "ping")
	if resp, body := readResp(t, br, "POST"); resp.StatusCode != 200 || body != "ping" {
		t.Fatalf("after the body: %d %q", resp.StatusCode, body)
	}

	// A handler that answers without reading: no 100 Continue, and the
	// connection closes (the client never sent its body).
	send(t, c, "POST /refuse HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	if resp, _ := readResp(t, br, "POST"); resp.StatusCode != http.StatusForbidden || !resp.Close {
		t.Fatalf("refused upload: %d, Connection: close announced %v", resp.StatusCode, resp.Close)
	}
	assertClosed(t, br)

	// HTTP/1.0 has no 100 Continue: the expectation is ignored, the body read as
	// sent, and the handler does not see the header.
	c, br = rawConn(t, addr)
	send(t, c, "POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc")
	if resp, body := readResp(t, br, "POST"); resp.StatusCode != 200 || body != "abc" {
		t.Fatalf("HTTP/1.0 with Expect: %d %q", resp.StatusCode, body)
	}
}

func TestDoorServerUnreadBody(t *testing.T) {
	addr, _ := startDoorServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	// A small unread body is drained and the connection serves the next request.
	c, br := rawConn(t, addr)
	send(t, c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("z", 1000)+"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for i := range 2 {
		if resp, body := readResp(t, br, "GET"); body != "ok" || resp.Close {
			t.Fatalf("request %d: %q close %v", i, body, resp.Close)
		}
	}
	// A body larger than maxDrain that the handler left unread closes the
	// connection rather than being read through.
	c, br = rawConn(t, addr)
	n := maxDrain + 10<<10
	send(t, c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "+strconv.Itoa(n)+"\r\n\r\n")
	go func() { _, _ = c.Write(make([]byte, n)) }()
	// The answer says so: the client does not send a next request into it.
	if resp, body := readResp(t, br, "POST"); body != "ok" || !resp.Close {
		t.Fatalf("got %q, Connection: close announced %v", body, resp.Close)
	}
	assertClosed(t, br)
}

func TestDoorServerShortAndAbortedAnswers(t *testing.T) {
	addr, _ := startDoorServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/short":
			// Announces more than it writes.
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "abc")
		case "/over":
			w.Header().Set("Content-Length", "2")
			if _, err := io.WriteString(w, "abc"); !errors.Is(err, http.ErrContentLength) {
				panic("writing past Content-Length: " + errFmt(err))
			}
		case "/abort":
			_, _ = io.WriteString(w, strings.Repeat("a", 2*bufferBeforeCommit))
			panic(http.ErrAbortHandler)
		}
	})
	// Fewer bytes than announced: the connection ends, so the client sees a
	// short body and not a whole one.
	c, br := rawConn(t, addr)
	send(t, c, "GET /short HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short body read: %v, want unexpected EOF", err)
	}

	c, br = rawConn(t, addr)
	send(t, c, "GET /over HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := readResp(t, br, "GET"); body != "ab" {
		t.Fatalf("over-long write: %q", body)
	}

	// ErrAbortHandler cuts a chunked answer off before its last chunk.
	c, br = rawConn(t, addr)
	send(t, c, "GET /abort HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("an aborted answer read as complete")
	}
}

func errFmt(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

func TestDoorServerShutdownAndClose(t *testing.T) {
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	canceled := make(chan struct{}, 1)
	addr, s := startDoorServer(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
			_, _ = io.WriteString(w, "done")
		case <-r.Context().Done():
			canceled <- struct{}{}
		}
	})
	idle, idleBr := rawConn(t, addr)
	_ = idle
	busy, busyBr := rawConn(t, addr)
	send(t, busy, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered

	// Shutdown closes the idle connection at once and waits for the busy one.
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	assertClosed(t, idleBr)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	resp, body := readResp(t, busyBr, "GET")
	if body != "done" {
		t.Fatalf("request in flight: %q", body)
	}
	_ = resp
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	assertClosed(t, busyBr)
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("the listener still accepts after Shutdown")
	}

	// Close cancels a request in flight.
	addr2, s2 := startDoorServer(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done()
		canceled <- struct{}{}
	})
	c, br := rawConn(t, addr2)
	send(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	_ = s2.Close()
	select {
	case <-canceled:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not cancel the request's context")
	}
	assertClosed(t, br)
	_ = s2.Close() // idempotent
}

func TestDoorServerHijack(t *testing.T) {
	addr, s := startDoorServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		go func() {
			defer conn.Close()
			_, _ = brw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
			_ = brw.Flush()
			_, _ = io.Copy(conn, brw) // echo
		}()
	})
	c, br := rawConn(t, addr)
	send(t, c, "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\nearly")
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	// Shutdown does not wait for, nor close, a hijacked connection.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a hijacked connection: %v", err)
	}
	send(t, c, "-late")
	buf := make([]byte, len("early-late"))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "early-late" {
		t.Fatalf("tunnel echo: %q %v", buf, err)
	}
}

// TestDoorServerNoticesClientGone: a client that goes away while its request is
// served (a slow upstream) cancels the request's context, so the upstream
// request and its slot end, without a write to the client failing first.
func TestDoorServerNoticesClientGone(t *testing.T) {
	canceled := make(chan error, 2)
	addr, _ := startDoorServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Body != http.NoBody {
			_, _ = io.ReadAll(r.Body)
		}
		select {
		case <-r.Context().Done():
			canceled <- r.Context().Err()
		case <-time.After(20 * time.Second):
			canceled <- nil
		}
	})
	for _, req := range []string{
		"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
	} {
		c, _ := rawConn(t, addr)
		send(t, c, req)
		time.Sleep(50 * time.Millisecond)
		c.Close()
		if err := <-canceled; !errors.Is(err, context.Canceled) {
			t.Fatalf("%q: the handler's context after the client left: %v, want canceled", req, err)
		}
	}
}

// TestDoorServerPipelinedDuringSlowHandler: bytes of the next request that arrive
// while the watch for a gone client reads the connection are kept and served.
func TestDoorServerPipelinedDuringSlowHandler(t *testing.T) {
	addr, _ := startDoorServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			// Longer than goneAfter: the watch is reading when the next request comes.
			select {
			case <-r.Context().Done():
				return
			case <-time.After(goneAfter + 700*time.Millisecond):
			}
		}
		_, _ = io.WriteString(w, r.URL.Path)
	})
	c, br := rawConn(t, addr)
	send(t, c, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(goneAfter + 200*time.Millisecond)
	send(t, c, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"/slow", "/next"} {
		if resp, body := readResp(t, br, "GET"); resp.StatusCode != 200 || body != want {
			t.Fatalf("want %s: %d %q", want, resp.StatusCode, body)
		}
	}
}

// TestDoorServerInterimAndHead: a 1xx answer is not sent to an HTTP/1.0 client
// and carries no Content-Length; a HEAD answer announces the length of what the
// handler wrote, without the bytes.
func TestDoorServerInterimAndHead(t *testing.T) {
	addr, _ := startDoorServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Content-Length")
		_, _ = io.WriteString(w, "hello")
	})
	c, br := rawConn(t, addr)
	send(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	interim, err := http.ReadResponse(br, nil)
	if err != nil || interim.StatusCode != http.StatusEarlyHints {
		t.Fatalf("interim: %v %v", interim, err)
	}
	if interim.Header.Get("Content-Length") != "" || interim.Header.Get("Link") == "" {
		t.Fatalf("interim header: %v", interim.Header)
	}
	if resp, body := readResp(t, br, "GET"); resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("final: %d %q", resp.StatusCode, body)
	}

	c, br = rawConn(t, addr)
	send(t, c, "GET / HTTP/1.0\r\n\r\n")
	if resp, body := readResp(t, br, "GET"); resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("HTTP/1.0 got %d %q (an interim answer first?)", resp.StatusCode, body)
	}

	c, br = rawConn(t, addr)
	send(t, c, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
	_, _ = http.ReadResponse(br, &http.Request{Method: "HEAD"}) // the interim
	resp, body := readResp(t, br, "HEAD")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != 5 {
		t.Fatalf("HEAD: %d %q length %d", resp.StatusCode, body, resp.ContentLength)
	}
}

// startBoundedDoorServer is startDoorServer with a write timeout and a connection
// bound (0: none) set before it serves.
func startBoundedDoorServer(t *testing.T, h http.HandlerFunc, writeTimeout time.Duration, maxConns int) (string, *doorServer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newDoorServer(h, slog.New(slog.DiscardHandler))
	s.readHeaderTimeout = 10 * time.Second
	s.readTimeout = time.Minute
	s.idleTimeout = time.Minute
	s.maxHeaderBytes = 16 << 10
	s.writeTimeout = writeTimeout
	s.maxConns = maxConns
	done := make(chan error, 1)
	go func() { done <- s.serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return ln.Addr().String(), s
}

func (s *doorServer) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// TestDoorServerWriteTimeout: a client that sends requests and never reads the
// answers does not hold its connection (and its goroutine) past the write
// timeout.
func TestDoorServerWriteTimeout(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 16<<20)
	addr, s := startBoundedDoorServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(big) }, 300*time.Millisecond, 0)
	c, _ := rawConn(t, addr)
	send(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	deadline := time.Now().Add(20 * time.Second)
	for s.openConns() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the connection of a client that reads nothing is still open 20 s after a 300 ms write timeout")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDoorServerMaxConns: a connection over the bound gets 429 rate_limited and is
// closed; once one closes, a new one is served.
func TestDoorServerMaxConns(t *testing.T) {
	addr, s := startBoundedDoorServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }, time.Minute, 2)
	c1, _ := rawConn(t, addr)
	rawConn(t, addr)
	deadline := time.Now().Add(20 * time.Second)
	for s.openConns() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("two connections were not accepted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c3, br3 := rawConn(t, addr)
	send(t, c3, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := readResp(t, br3, "GET")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("X-Clawbox-Error") != "rate_limited" || !strings.Contains(body, "too many connections") {
		t.Fatalf("over the bound: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	assertClosed(t, br3)
	c1.Close()
	for s.openConns() > 1 {
		if time.Now().After(deadline) {
			t.Fatal("a closed connection was not forgotten")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c4, br4 := rawConn(t, addr)
	send(t, c4, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := readResp(t, br4, "GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after one closed: %d %q", resp.StatusCode, body)
	}
}

// TestDoorServerLengthBesideChunked: a request with both Content-Length and
// Transfer-Encoding: chunked is read by its chunks and the connection closes after
// its answer: the bytes after the chunks are never taken for a next request.
func TestDoorServerLengthBesideChunked(t *testing.T) {
	var paths []string
	var mu sync.Mutex
	addr, _ := startDoorServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		_, _ = w.Write(b)
	})
	c, br := rawConn(t, addr)
	send(t, c, "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := readResp(t, br, "POST")
	if resp.StatusCode != 200 || body != "abc" || !resp.Close {
		t.Fatalf("got %d %q, Connection: close announced %v", resp.StatusCode, body, resp.Close)
	}
	assertClosed(t, br)
	mu.Lock()
	served := slices.Clone(paths)
	mu.Unlock()
	if !slices.Equal(served, []string{"/a"}) {
		t.Fatalf("served %q, want only /a", served)
	}

	// Chunked alone keeps the connection.
	c, br = rawConn(t, addr)
	send(t, c, "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
	if resp, body := readResp(t, br, "POST"); body != "hi" || resp.Close {
		t.Fatalf("chunked alone: %q close %v", body, resp.Close)
	}
}
