package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/clawbox/clawbox/internal/egress/tlsca"
)

// The interception section is the cost of terminating a CONNECT tunnel's TLS with
// a leaf of the sandbox's CA (internal/egress/tlsca): one full TLS 1.3 handshake,
// client and server in this process over an in-memory pipe, the client verifying
// the chain against the CA as a sandbox does. The baseline serves a certificate
// held in the tls.Config; "leaf cached" asks the Authority for the leaf of a host it
// has served before (the usual case: a sandbox talks to few hosts); "leaf minted"
// asks for a host it has not seen, so each handshake signs a new leaf.

// interceptVariants returns the three handshakes.
func interceptVariants() ([]variant, error) {
	ca, err := tlsca.New("bench-intercept")
	if err != nil {
		return nil, err
	}
	ca.CacheSize = 1 << 16 // minted leaves are never evicted during the run
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	static, err := ca.Leaf("static.example.com")
	if err != nil {
		return nil, err
	}
	if _, err := ca.Leaf("cached.example.com"); err != nil {
		return nil, err
	}
	var fresh atomic.Int64
	handshake := func(host string, server *tls.Config) error {
		c, s := net.Pipe()
		defer c.Close()
		defer s.Close()
		done := make(chan error, 1)
		go func() { done <- tls.Server(s, server).HandshakeContext(context.Background()) }()
		cerr := tls.Client(c, &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12}).HandshakeContext(context.Background())
		if cerr != nil {
			s.Close()
		}
		serr := <-done
		if cerr != nil {
			return fmt.Errorf("client handshake: %w", cerr)
		}
		return serr
	}
	byName := &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return ca.Leaf(h.ServerName) }}
	return []variant{
		{name: "TLS handshake, static certificate", fn: func() error {
			return handshake("static.example.com", &tls.Config{Certificates: []tls.Certificate{*static}})
		}},
		{name: "TLS handshake, tlsca leaf cached", fn: func() error { return handshake("cached.example.com", byName) }},
		{name: "TLS handshake, tlsca leaf minted", fn: func() error {
			before := ca.Minted()
			if err := handshake(fmt.Sprintf("h%d.example.com", fresh.Add(1)), byName); err != nil {
				return err
			}
			if ca.Minted() != before+1 {
				return fmt.Errorf("the handshake did not mint a leaf (%d → %d)", before, ca.Minted())
			}
			return nil
		}},
	}, nil
}

// benchIntercept times interceptVariants, interleaved, then tunnelVariants.
func benchIntercept(ctx context.Context, e *env, n int) ([]Row, error) {
	vs, err := interceptVariants()
	if err != nil {
		return nil, err
	}
	const rounds = 10
	rows, err := timeInterleaved(ctx, "CONNECT interception", vs, rounds, max(1, n/rounds))
	for i := range rows {
		if i > 0 {
			rows[i].Note = fmt.Sprintf("added median %.3f ms per handshake", rows[i].Median-rows[0].Median)
		}
	}
	if err != nil {
		return rows, err
	}
	more, err := benchTunnel(ctx, e, n)
	return append(rows, more...), err
}

// tunnelVariants are GETs of the loopback HTTPS upstream by a Go client: straight
// to it over loopback TLS (the baseline), and through a door's CONNECT with
// interception (the door's leaf for example.com, cached after the first tunnel;
// the decrypted request goes through the pipeline and a TLS connection of the
// gateway's own to the upstream). "new connection" opens a connection (a tunnel)
// per GET: CONNECT, the handshake with the door's leaf, the GET; "keep-alive" sends
// every GET in one connection (one tunnel).
func tunnelVariants(ctx context.Context, e *env) (vs []variant, closeAll func(), err error) {
	var closers []func()
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	dir, err := os.MkdirTemp(e.dir, "tun")
	if err != nil {
		return nil, closeAll, err
	}
	ca, err := tlsca.New("bench-tunnel")
	if err != nil {
		return nil, closeAll, err
	}
	door, err := openDoor(dir, []string{"https://example.com:" + e.up.port + "/"}, ca, e.up.caFile, e.up.port)
	if err != nil {
		return nil, closeAll, err
	}
	closers = append(closers, door.close)
	upPEM, err := os.ReadFile(e.up.caFile)
	if err != nil {
		return nil, closeAll, err
	}
	upRoots := x509.NewCertPool()
	upRoots.AppendCertsFromPEM(upPEM)
	doorRoots := x509.NewCertPool()
	doorRoots.AddCert(ca.Certificate())
	client := func(viaDoor, keepAlive bool) *http.Client {
		tr := &http.Transport{DisableKeepAlives: !keepAlive, DisableCompression: true, TLSClientConfig: &tls.Config{RootCAs: upRoots}}
		if viaDoor {
			tr.Proxy = http.ProxyURL(door.proxyURL())
			tr.ProxyConnectHeader = proxyAuth()
			tr.DialContext = door.dial
			tr.TLSClientConfig = &tls.Config{RootCAs: doorRoots}
		}
		closers = append(closers, tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	get := func(hc *http.Client, u string) func() error {
		return func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d (X-Clawbox-Error %q)", resp.StatusCode, resp.Header.Get("X-Clawbox-Error"))
			}
			return nil
		}
	}
	direct, tunneled := e.up.DirectURL("/api/x"), e.up.URL("/api/x")
	return []variant{
		{name: "direct TLS GET, new connection", fn: get(client(false, false), direct)},
		{name: "door CONNECT + interception + GET, new tunnel", fn: get(client(true, false), tunneled)},
		{name: "direct TLS GET, keep-alive", fn: get(client(false, true), direct)},
		{name: "door GET in an open intercepted tunnel", fn: get(client(true, true), tunneled)},
	}, closeAll, nil
}

// benchTunnel times tunnelVariants, interleaved; each door variant is compared with
// the direct variant of its kind.
func benchTunnel(ctx context.Context, e *env, n int) ([]Row, error) {
	vs, closeAll, err := tunnelVariants(ctx, e)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	const rounds = 10
	rows, err := timeInterleaved(ctx, "CONNECT through the door", vs, rounds, max(1, n/rounds))
	if len(rows) == 4 {
		rows[2].Baseline, rows[3].Baseline = "", rows[2].Name
		rows[1].Note = fmt.Sprintf("added median %.3f ms per tunnel", rows[1].Median-rows[0].Median)
		rows[3].Note = fmt.Sprintf("added median %.3f ms per request", rows[3].Median-rows[2].Median)
	}
	return rows, err
}
