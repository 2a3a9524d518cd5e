// Command agent is a tiny static workload for clawbox's Docker tests. Inside a
// sandbox it talks to its egress door over $CLAWBOX_PROXY_SOCKET with the token from
// $CLAWBOX_PROXY_TOKEN_FILE:
//
//	agent [-bad-token]                      GET /health, prints "<status> <body>"
//	agent -proxy URL [-method M] [-body B]  POST /proxy, prints "<status> <body>"
//	agent -raw JSON                         POST /proxy with JSON as the body
//	agent -fork N [-hold]                   start N sleeping children, print "forks=<started>/N"
//	                                        (with -hold, keep them and wait to be killed)
//	agent -dial ADDR                        connect to ADDR ("tcp:host:port" or "unix:path"),
//	                                        print "dial=ok" or "dial=failed"
//	agent -whoami                           print "euid=<n> uid=<n>" (run from a setuid copy)
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

func main() {
	bad := flag.Bool("bad-token", false, "present a wrong token")
	token := flag.String("token", "", "present this token instead of the sandbox's")
	proxyURL := flag.String("proxy", "", "send this URL through POST /proxy")
	method := flag.String("method", "", "method of the proxied request")
	body := flag.String("body", "", "body of the proxied request")
	header := flag.String("header", "", "a header of the proxied request, Name:Value")
	raw := flag.String("raw", "", "POST this JSON to /proxy as it is")
	sock := flag.String("socket", os.Getenv("CLAWBOX_PROXY_SOCKET"), "the door's socket")
	fork := flag.Int("fork", 0, "start this many sleeping children and report how many started")
	hold := flag.Bool("hold", false, "with -fork: keep the children and block")
	dial := flag.String("dial", "", `connect to "tcp:host:port" or "unix:path" and report whether it worked`)
	whoami := flag.Bool("whoami", false, "print the effective and real uid")
	flag.Parse()

	switch {
	case *fork > 0:
		forks(*fork, *hold)
		return
	case *dial != "":
		dialOnce(*dial)
		return
	case *whoami:
		fmt.Printf("euid=%d uid=%d\n", os.Geteuid(), os.Getuid())
		return
	}

	tok, err := os.ReadFile(os.Getenv("CLAWBOX_PROXY_TOKEN_FILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "token file:", err)
		os.Exit(2)
	}
	tk := strings.TrimSpace(string(tok))
	if tk != os.Getenv("CLAWBOX_PROXY_TOKEN") {
		fmt.Fprintln(os.Stderr, "token file and env differ")
		os.Exit(2)
	}
	switch {
	case *bad:
		tk = strings.Repeat("0", 64)
	case *token != "":
		tk = *token
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", *sock)
	}}}

	var req *http.Request
	switch {
	case *raw != "":
		req, _ = http.NewRequest(http.MethodPost, "http://door/proxy", strings.NewReader(*raw))
	case *proxyURL != "":
		p := map[string]any{"url": *proxyURL}
		if *method != "" {
			p["method"] = *method
		}
		if *body != "" {
			p["body"] = *body
		}
		if *header != "" {
			k, v, _ := strings.Cut(*header, ":")
			p["headers"] = map[string]string{k: v}
		}
		b, _ := json.Marshal(p)
		req, _ = http.NewRequest(http.MethodPost, "http://door/proxy", bytes.NewReader(b))
	default:
		req, _ = http.NewRequest(http.MethodGet, "http://door/health", nil)
	}
	req.Header.Set("Authorization", "Bearer "+tk)
	if req.Method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "door:", err)
		os.Exit(3)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\n", resp.StatusCode, strings.TrimSpace(string(out)))
}

// dialOnce connects to a "tcp:host:port" or "unix:path" address with a short
// timeout and prints the outcome (the error goes to stderr).
func dialOnce(addr string) {
	network, a, _ := strings.Cut(addr, ":")
	c, err := net.DialTimeout(network, a, 3*time.Second)
	if err != nil {
		fmt.Println("dial=failed")
		fmt.Fprintln(os.Stderr, "dial:", err)
		return
	}
	c.Close()
	fmt.Println("dial=ok")
}

// forks starts n children (bounded) and reports how many the pids limit let start,
// then kills them, or with hold keeps them and blocks until killed.
func forks(n int, hold bool) {
	var started []*exec.Cmd
	for i := 0; i < n; i++ {
		cmd := exec.Command("/bin/sleep", "60")
		if err := cmd.Start(); err != nil {
			continue
		}
		started = append(started, cmd)
	}
	fmt.Printf("forks=%d/%d\n", len(started), n)
	for hold {
		time.Sleep(time.Hour)
	}
	for _, c := range started {
		c.Process.Kill()
		c.Wait()
	}
}
