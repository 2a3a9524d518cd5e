// Command agent is the static load generator of clawbox's benchmark harness. Inside
// a sandbox it sends requests through the egress door ($CLAWBOX_PROXY_SOCKET, token
// from $CLAWBOX_PROXY_TOKEN_FILE); with -direct it sends the same requests straight
// to the upstream instead (run on the host, for the baseline); with -floor SOCKET it
// sends plain requests for the URL's path to the minimal reverse proxy of the bench
// listening on SOCKET (waiting for it to appear first). It prints one JSON object
// (see Report) on stdout.
//
//	agent -url URL [-n N] [-c C] [-direct -ca FILE | -floor SOCKET] [-method M] [-body B]
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Report is what the agent prints. Latencies are in microseconds.
type Report struct {
	N         int     `json:"n"`
	C         int     `json:"c"`
	OK        int     `json:"ok"`
	Errors    int     `json:"errors"`
	FirstErr  string  `json:"first_error,omitempty"`
	ElapsedUS float64 `json:"elapsed_us"`
	RPS       float64 `json:"rps"`
	MinUS     float64 `json:"min_us"`
	P50US     float64 `json:"p50_us"`
	P90US     float64 `json:"p90_us"`
	P99US     float64 `json:"p99_us"`
	MaxUS     float64 `json:"max_us"`
	// StartUnixNS is when the agent process began; FirstAnswerUnixNS when the first
	// answer arrived (wall clock, shared with the host).
	StartUnixNS       int64 `json:"start_unix_ns"`
	FirstAnswerUnixNS int64 `json:"first_answer_unix_ns"`
}

func main() {
	start := time.Now()
	target := flag.String("url", "", "the upstream URL")
	n := flag.Int("n", 1, "requests to send")
	c := flag.Int("c", 1, "concurrent senders")
	direct := flag.Bool("direct", false, "send straight to the upstream, not through the door")
	ca := flag.String("ca", "", "PEM CA of the upstream (with -direct)")
	method := flag.String("method", "GET", "method of the request")
	body := flag.String("body", "", "body of the request")
	floor := flag.String("floor", "", "send plain requests to the bench's minimal reverse proxy on this Unix socket")
	flag.Parse()
	if *target == "" || *n < 1 || *c < 1 {
		fmt.Fprintln(os.Stderr, "usage: agent -url URL [-n N] [-c C] [-direct -ca FILE]")
		os.Exit(2)
	}
	var send func() error
	var err error
	if *floor != "" {
		send, err = floorSender(*floor, *target, *method, *body, *c)
	} else {
		send, err = sender(*direct, *ca, *target, *method, *body, *c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	lat := make([]time.Duration, *n)
	var next, okN, errN atomic.Int64
	var firstAnswer atomic.Int64
	var errOnce sync.Once
	var firstErr string
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < *c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) {
					return
				}
				s := time.Now()
				err := send()
				lat[i] = time.Since(s)
				firstAnswer.CompareAndSwap(0, time.Now().UnixNano())
				if err != nil {
					errN.Add(1)
					errOnce.Do(func() { firstErr = err.Error() })
					continue
				}
				okN.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	r := Report{
		N: *n, C: *c, OK: int(okN.Load()), Errors: int(errN.Load()), FirstErr: firstErr,
		ElapsedUS: us(elapsed), RPS: float64(*n) / elapsed.Seconds(),
		MinUS: us(lat[0]), P50US: us(q(0.5)), P90US: us(q(0.9)), P99US: us(q(0.99)), MaxUS: us(lat[len(lat)-1]),
		StartUnixNS: start.UnixNano(), FirstAnswerUnixNS: firstAnswer.Load(),
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

// floorSender waits (up to a minute) until the floor listens on sock, then returns
// a function sending one request for target's path through it.
func floorSender(sock, target, method, body string, conns int) (func() error, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		c, err := dial(context.Background(), "", "")
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("floor %s: %w", sock, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: conns}, Timeout: 30 * time.Second}
	return plainSender(hc, method, "http://floor"+u.RequestURI(), body, "floor"), nil
}

// plainSender returns a function sending one request to target with hc and
// reading the whole answer; it fails unless who answered 200.
func plainSender(hc *http.Client, method, target, body, who string) func() error {
	return func() error {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, target, rd)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s answered %d", who, resp.StatusCode)
		}
		return nil
	}
}

// sender returns a function sending one request and reading the whole answer; it
// fails unless the upstream (directly, or as reported by the door) answered 200.
func sender(direct bool, caFile, target, method, body string, conns int) (func() error, error) {
	if direct {
		roots := x509.NewCertPool()
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, err
			}
			roots.AppendCertsFromPEM(pem)
		}
		hc := &http.Client{Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: roots},
			MaxIdleConnsPerHost: conns,
			ForceAttemptHTTP2:   false,
		}, Timeout: 30 * time.Second}
		return plainSender(hc, method, target, body, "upstream"), nil
	}

	sock := os.Getenv("CLAWBOX_PROXY_SOCKET")
	tok, err := os.ReadFile(os.Getenv("CLAWBOX_PROXY_TOKEN_FILE"))
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	token := strings.TrimSpace(string(tok))
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: conns,
	}, Timeout: 30 * time.Second}
	p := map[string]any{"url": target, "method": method}
	if body != "" {
		p["body"] = body
	}
	payload, _ := json.Marshal(p)
	return func() error {
		req, _ := http.NewRequest(http.MethodPost, "http://door/proxy", bytes.NewReader(payload))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("door answered %d: %.200s", resp.StatusCode, b)
		}
		var pr struct {
			Status int `json:"status"`
		}
		if err := json.Unmarshal(b, &pr); err != nil {
			return err
		}
		if pr.Status != http.StatusOK {
			return errors.New("upstream answered " + fmt.Sprint(pr.Status))
		}
		return nil
	}, nil
}
