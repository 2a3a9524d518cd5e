// Command door-get runs inside a clawbox sandbox and fetches one URL through the
// sandbox's egress door: it sends {"url", "method"} to POST /proxy on the Unix socket
// $CLAWBOX_PROXY_SOCKET with the sandbox's token, and prints the gateway's answer
// (status, headers, body) as JSON. A refusal prints the gateway's error and exits 1.
// Build it static to copy into an image:
//
//	CGO_ENABLED=0 go build -o door-get ./examples/door-get
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: door-get URL")
		os.Exit(2)
	}
	if err := get(os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "door-get:", err)
		os.Exit(1)
	}
}

func get(url string, out io.Writer) error {
	sock := os.Getenv("CLAWBOX_PROXY_SOCKET")
	if sock == "" {
		return fmt.Errorf("CLAWBOX_PROXY_SOCKET is not set: run me inside a clawbox sandbox")
	}
	token := os.Getenv("CLAWBOX_PROXY_TOKEN")
	if token == "" {
		b, err := os.ReadFile(os.Getenv("CLAWBOX_PROXY_TOKEN_FILE"))
		if err != nil {
			return fmt.Errorf("no CLAWBOX_PROXY_TOKEN and no token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	body, err := json.Marshal(map[string]string{"url": url, "method": "GET"})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, "http://door/proxy", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(answer))
	}
	_, err = out.Write(answer)
	return err
}
