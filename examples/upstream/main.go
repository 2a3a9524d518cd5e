// Command upstream is a tiny HTTP server for trying clawbox on one machine: it answers
// every request with a JSON description of what arrived (method, path, the
// Authorization header and the other header names) and logs one line per request, so
// you can see what the egress gateway sent on a sandbox's behalf. It listens on
// loopback only.
//
//	go run ./examples/upstream -addr 127.0.0.1:8088
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8088", "loopback address to listen on")
	flag.Parse()
	if err := run(*addr); err != nil {
		log.Fatal(err)
	}
}

func run(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-addr %q: listen on a loopback address only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("upstream listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(answer), ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	go func() { <-stop; srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// seen is what the upstream reports back about a request.
type seen struct {
	Method        string   `json:"method"`
	Path          string   `json:"path"`
	Authorization string   `json:"authorization,omitempty"`
	Headers       []string `json:"headers"`
	BodyBytes     int64    `json:"body_bytes"`
}

func answer(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	s := seen{Method: r.Method, Path: r.URL.RequestURI(), Authorization: r.Header.Get("Authorization"), BodyBytes: n}
	for name := range r.Header {
		s.Headers = append(s.Headers, name)
	}
	sort.Strings(s.Headers)
	// The log line shows what really arrived; the sandbox gets the same JSON back
	// through the gateway, which redacts any stored credential in it.
	log.Printf("%s %s authorization=%q", s.Method, s.Path, s.Authorization)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s)
}
