package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/clawbox/clawbox/internal/unixsock"
)

// The floor of the gateway section: the least a second hop costs on this machine. A
// minimal Go reverse proxy (httputil.ReverseProxy: parse the request, set one
// header, forward over a pooled transport) listening on a Unix socket in a
// sandbox's socket directory, in this process beside the door, in front of the same
// upstream. The agent inside the sandbox sends plain GETs to it (agent -floor); the
// door's added latency and throughput are reported as ratios of the floor's.

// floorSocket is the floor's socket inside a sandbox's socket directory, and
// floorContainerSocket the same file as the agent sees it.
const (
	floorSocket          = "floor.sock"
	floorContainerSocket = "/run/clawbox/" + floorSocket
)

// floorHeader is the header the floor sets on every request: without a credential
// a marker, with one the upstream credential, as the door injects it.
func floorHeader(credential bool) (name, value string) {
	if credential {
		return "Authorization", "Bearer " + benchCredential
	}
	return "Via", "1.1 clawbox-bench-floor"
}

// floorTransport is the pooled transport every floor forwards over: the upstream's
// CA trusted, keep-alive, enough idle connections for the bench's senders.
func floorTransport(caFile string) (*http.Transport, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, errors.New("floor: no certificate in " + caFile)
	}
	return &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     time.Minute,
		ForceAttemptHTTP2:   false,
	}, nil
}

// floorProxy is one floor, serving one sandbox's socket directory.
type floorProxy struct {
	srv  *http.Server
	done chan struct{}
	once sync.Once
}

// startFloor serves a floor on sockDir/floor.sock (mode 0666, as the door's socket,
// so the sandbox's user can connect) forwarding to target over tr, setting the
// header of floorHeader(credential).
func startFloor(sockDir string, target *url.URL, tr http.RoundTripper, credential bool) (*floorProxy, error) {
	ln, err := unixsock.Listen(filepath.Join(sockDir, floorSocket))
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	if err := os.Chmod(filepath.Join(sockDir, floorSocket), 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("floor: %w", err)
	}
	name, value := floorHeader(credential)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Set(name, value)
		},
		Transport: tr,
		ErrorLog:  nil,
	}
	f := &floorProxy{srv: &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		_ = f.srv.Serve(ln) // ends with ErrServerClosed at close
	}()
	return f, nil
}

// close stops the floor and removes its socket; safe to call more than once.
func (f *floorProxy) close() {
	f.once.Do(func() {
		_ = f.srv.Close()
		<-f.done
	})
}

// upstreamBase is the upstream's origin for a client on the host (the floor does
// not resolve example.com through proxy.hosts as the door does).
func (u *upstream) upstreamBase() *url.URL {
	return &url.URL{Scheme: "https", Host: net.JoinHostPort("127.0.0.1", u.port)}
}
