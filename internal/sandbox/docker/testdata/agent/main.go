// Command agent is a tiny static workload for the Docker tests: it checks its egress
// door from inside a sandbox with GET /health over $CLAWBOX_PROXY_SOCKET, using the
// token from $CLAWBOX_PROXY_TOKEN_FILE (or a wrong one with -bad-token), and prints
// "<status> <body>".
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

func main() {
	bad := flag.Bool("bad-token", false, "present a wrong token")
	flag.Parse()
	tok, err := os.ReadFile(os.Getenv("CLAWBOX_PROXY_TOKEN_FILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "token file:", err)
		os.Exit(2)
	}
	token := strings.TrimSpace(string(tok))
	if token != os.Getenv("CLAWBOX_PROXY_TOKEN") {
		fmt.Fprintln(os.Stderr, "token file and env differ")
		os.Exit(2)
	}
	if *bad {
		token = strings.Repeat("0", 64)
	}
	sock := os.Getenv("CLAWBOX_PROXY_SOCKET")
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequest(http.MethodGet, "http://door/health", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "door:", err)
		os.Exit(3)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\n", resp.StatusCode, strings.TrimSpace(string(body)))
}
