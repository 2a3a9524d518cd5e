package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/egress"
	"github.com/clawbox/clawbox/internal/egress/tlsca"
	"github.com/clawbox/clawbox/internal/secrets"
)

// The forward-proxy section compares a sandbox's door, answering absolute-form
// requests (GET http://host/path) through the gateway's whole pipeline (policy, leak
// scan with one credential stored, SSRF-safe dialer, response redaction, rate limit
// out of the way, audit), with Debian's squid holding an equivalent ACL (that host
// and port only, everything else denied, no caching), both in front of the same
// plain-HTTP loopback upstream and driven by the same Go client in one run.

// forwardToken is the door's proxy credential in this section.
const forwardToken = "bench-forward-token-0123456789abcdef"

// forwardTarget is one proxy in front of the upstream: a client that sends through
// it, and its release.
type forwardTarget struct {
	name   string
	client *http.Client
	header http.Header // added to every request (the door's token, as the bridge adds it)
	close  func()
	// pid is the proxy's own process, whose CPU time per request is reported (0: the
	// proxy runs in this process, beside the load generator, and is not measured).
	pid int
}

// processCPU returns the CPU time the threads of process pid have used, from
// /proc/<pid>/task/*/schedstat (nanoseconds, unlike the clock ticks of
// /proc/<pid>/stat). A thread that exits takes its time with it; neither squid
// (one thread) nor a Go process drops threads while it is loaded.
func processCPU(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("process %d: no schedstat (%v)", pid, err)
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited
		}
		f := bytes.Fields(b)
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", t, err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// forwardBody is what the plain upstream answers.
var forwardBody = []byte(`{"ok":true,"items":[1,2,3],"note":"a small JSON answer from the loopback upstream"}`)

// plainUpstream is a loopback HTTP (not TLS) upstream; its URL uses example.com,
// mapped to 127.0.0.1 by both proxies.
func plainUpstream() (srv *httptest.Server, port string) {
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(forwardBody)
	}))
	srv.Config.ErrorLog = nil
	srv.Start()
	_, port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return srv, port
}

// proxyClient is the client both proxies are measured with: keep-alive, enough idle
// connections for conc senders.
func proxyClient(proxy *url.URL, dial func(ctx context.Context, network, addr string) (net.Conn, error), conc int) *http.Client {
	tr := &http.Transport{
		Proxy:               http.ProxyURL(proxy),
		DialContext:         dial,
		MaxIdleConns:        conc * 2,
		MaxIdleConnsPerHost: conc * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// benchDoor is what openDoor opens.
type benchDoor struct {
	sock  string // its Unix socket
	close func()
}

// dial connects to the door's socket, whatever address the client asks for.
func (d *benchDoor) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
}

// proxyURL is the door as a client's proxy; the token goes in proxyAuth.
func (d *benchDoor) proxyURL() *url.URL { return &url.URL{Scheme: "http", Host: "door"} }

// proxyAuth is the header the sandbox's bridge adds to every request it relays to
// the door (absolute-form and CONNECT alike): Proxy-Authorization: Bearer <token>.
func proxyAuth() http.Header {
	return http.Header{"Proxy-Authorization": {"Bearer " + forwardToken}}
}

// openForwardDoor opens a door in front of the plain upstream on port.
func openForwardDoor(dir, port string, conc int) (*forwardTarget, error) {
	d, err := openDoor(dir, []string{"http://example.com:" + port + "/"}, nil, "", port)
	if err != nil {
		return nil, err
	}
	hc := proxyClient(d.proxyURL(), d.dial, conc)
	return &forwardTarget{name: "clawbox door", client: hc, header: proxyAuth(), close: func() { hc.CloseIdleConnections(); d.close() }}, nil
}

// openDoor opens a sandbox door on a Unix socket in dir with allowlist and the
// sandbox CA ca (nil: no interception), the gateway configured as the server
// configures it: a credential store holding one credential for example.com:port, so
// leak scanning and redaction run, and upstreamCA (if set) trusted upstream.
func openDoor(dir string, allowlist []string, ca *tlsca.Authority, upstreamCA, port string) (*benchDoor, error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (*benchDoor, error) { closeAll(); return nil, err }
	key, err := secrets.GenerateKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		return fail(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := secrets.Open(secrets.Config{Path: filepath.Join(dir, "creds.enc"), Key: key, NoWatch: true, Logger: quiet})
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { st.Close() })
	if _, err := st.Put("BENCH", api.PutCredentialRequest{Value: benchCredential, Host: "example.com", Port: atoi(port), PathPrefix: "/api"}); err != nil {
		return fail(err)
	}
	g, err := egress.New(egress.Config{
		RatePerSecond:     1e9,
		RateBurst:         1 << 30,
		AllowPrivateCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Hosts:             map[string][]netip.Addr{"example.com": {netip.MustParseAddr("127.0.0.1")}},
		UpstreamCAFile:    upstreamCA,
		Secrets:           st,
		Logger:            quiet,
	})
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { g.Close() })
	sock := filepath.Join(dir, "door.sock")
	door, err := g.OpenDoor(egress.DoorSpec{
		SandboxID:  "bench-forward",
		SocketPath: sock,
		Allowlist:  allowlist,
		CA:         ca,
		Authenticate: func(tok string) bool {
			return subtle.ConstantTimeCompare([]byte(tok), []byte(forwardToken)) == 1
		},
	})
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { door.Close() })
	return &benchDoor{sock: sock, close: closeAll}, nil
}

// squidPath is Debian's squid binary, if installed.
func squidPath() (string, error) {
	for _, p := range []string{"/usr/sbin/squid"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("squid"); err == nil {
		return p, nil
	}
	return "", errors.New("squid is not installed: apt-get install squid (the bench starts its own instance on a loopback port)")
}

// squidConfig is squid's configuration: listen on 127.0.0.1:listen, resolve
// example.com to 127.0.0.1 from its own hosts file, allow only example.com:port (the
// door's allowlist), cache nothing, log only errors, everything under dir.
func squidConfig(dir string, listen int, port string) string {
	return fmt.Sprintf(`http_port 127.0.0.1:%d
pid_filename %[2]s/squid.pid
cache_log %[2]s/cache.log
access_log none
cache_store_log none
coredump_dir %[2]s
hosts_file %[2]s/hosts
dns_nameservers 127.0.0.1
acl upstream dstdomain example.com
acl upstream_port port %[3]s
http_access allow upstream upstream_port
http_access deny all
cache deny all
cache_mem 8 MB
shutdown_lifetime 0 seconds
visible_hostname clawbox-bench
forwarded_for delete
via off
`, listen, dir, port)
}

// startSquid runs squid in the foreground (-N) with squidConfig in dir and waits
// until it accepts connections. The release stops it (SIGTERM, then SIGKILL) and
// waits for it.
func startSquid(ctx context.Context, dir, port string, conc int) (*forwardTarget, error) {
	bin, err := squidPath()
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte("127.0.0.1 example.com\n"), 0o644); err != nil {
		return nil, err
	}
	listen, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "squid.conf")
	if err := os.WriteFile(conf, []byte(squidConfig(dir, listen, port)), 0o644); err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-N", "-f", conf)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start squid: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		})
	}
	addr := "127.0.0.1:" + strconv.Itoa(listen)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case werr := <-exited:
			exited <- werr
			stop()
			log, _ := os.ReadFile(filepath.Join(dir, "cache.log"))
			return nil, fmt.Errorf("squid exited before serving (%v): %s%s", werr, stderr.String(), log)
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("squid did not listen on %s within 30 s: %s", addr, stderr.String())
		}
	}
	hc := proxyClient(&url.URL{Scheme: "http", Host: addr}, (&net.Dialer{}).DialContext, conc)
	return &forwardTarget{name: "squid", client: hc, close: func() { hc.CloseIdleConnections(); stop() }, pid: cmd.Process.Pid}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// get sends one GET through the target and checks the answer.
func (f *forwardTarget) get(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	for k, v := range f.header {
		req.Header[k] = v
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, forwardBody) {
		return fmt.Errorf("%s: status %d, body %.200q (X-Clawbox-Error %q)", f.name, resp.StatusCode, b, resp.Header.Get("X-Clawbox-Error"))
	}
	return nil
}

// load sends n GETs from c concurrent senders and returns requests per second and
// each request's latency.
func (f *forwardTarget) load(ctx context.Context, u string, n, c int) (rps float64, lat []time.Duration, err error) {
	var mu sync.Mutex
	var first error
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	lat = make([]time.Duration, 0, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				s := time.Now()
				err := f.get(ctx, u)
				d := time.Since(s)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	if first != nil {
		return 0, nil, first
	}
	return float64(n) / el.Seconds(), lat, nil
}

// forwardTargets starts the upstream and both proxies; squid is left out, with the
// reason, when it cannot start.
func forwardTargets(ctx context.Context, e *env, conc int) (ts []*forwardTarget, target string, squidErr error, closeAll func(), err error) {
	var closers []func()
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	dir, err := os.MkdirTemp(e.dir, "fw")
	if err != nil {
		return nil, "", nil, closeAll, err
	}
	closers = append(closers, func() { os.RemoveAll(dir) })
	srv, port := plainUpstream()
	closers = append(closers, srv.Close)
	target = "http://example.com:" + port + "/api/x"
	// squid drops root for its cache_effective_user (proxy), which must reach its
	// directory: a world-writable one of its own under the system's temp dir.
	sqDir, err := os.MkdirTemp("", "cbb-squid")
	if err != nil {
		closeAll()
		return nil, "", nil, func() {}, err
	}
	closers = append(closers, func() { os.RemoveAll(sqDir) })
	sq, squidErr := startSquid(ctx, sqDir, port, conc)
	if squidErr == nil {
		closers = append(closers, sq.close)
		if err := sq.get(ctx, target); err != nil {
			closeAll()
			return nil, "", nil, func() {}, fmt.Errorf("squid: %w", err)
		}
		ts = append(ts, sq)
	}
	if err := os.Mkdir(filepath.Join(dir, "door"), 0o700); err != nil {
		closeAll()
		return nil, "", nil, func() {}, err
	}
	door, err := openForwardDoor(filepath.Join(dir, "door"), port, conc)
	if err != nil {
		closeAll()
		return nil, "", nil, func() {}, err
	}
	closers = append(closers, door.close)
	if err := door.get(ctx, target); err != nil {
		closeAll()
		return nil, "", nil, func() {}, fmt.Errorf("door: %w", err)
	}
	ts = append(ts, door)
	return ts, target, squidErr, closeAll, nil
}

// benchForward measures requests per second (c concurrent senders) and latency
// (one sender) through squid and through the door, repetitions interleaved, and
// reports the door's rate as a ratio of squid's.
func benchForward(ctx context.Context, e *env, reps int, loads []gatewayLoad, doorProfile string) ([]Row, error) {
	conc := 1
	for _, l := range loads {
		conc = max(conc, l.c)
	}
	ts, target, squidErr, closeAll, err := forwardTargets(ctx, e, conc)
	defer closeAll()
	if err != nil {
		return nil, err
	}
	if squidErr != nil {
		e.note("forward: squid left out: " + squidErr.Error())
	}
	if child, err := startDoorChild(ctx, e.dir, target, conc, doorProfile); err != nil {
		e.note("forward: the door in its own process left out: " + err.Error())
	} else {
		defer child.close()
		ts = append(ts, child)
	}
	var rows []Row
	for _, load := range loads {
		rates := make([][]float64, len(ts))
		lats := make([][]float64, len(ts))
		cpus := make([][]float64, len(ts)) // µs of the proxy process's CPU per request
		for r := 0; r < reps; r++ {
			for i, t := range ts {
				if err := ctx.Err(); err != nil {
					return rows, err
				}
				var cpu0 time.Duration
				if t.pid != 0 {
					if cpu0, err = processCPU(t.pid); err != nil {
						return rows, err
					}
				}
				rps, lat, err := t.load(ctx, target, load.n, load.c)
				if err != nil {
					return rows, fmt.Errorf("%s (c=%d): %w", t.name, load.c, err)
				}
				if t.pid != 0 {
					cpu1, err := processCPU(t.pid)
					if err != nil {
						return rows, err
					}
					cpus[i] = append(cpus[i], float64(cpu1-cpu0)/float64(time.Microsecond)/float64(load.n))
				}
				rates[i] = append(rates[i], rps)
				lats[i] = append(lats[i], msAll(lat)...)
			}
		}
		suffix := fmt.Sprintf(" (c=%d, %d requests)", load.c, load.n)
		for i, t := range ts {
			rpsRow := Row{Section: "forward proxy", Name: t.name + " throughput" + suffix, Unit: "req/s", Stat: summarize(rates[i])}
			latRow := Row{Section: "forward proxy", Name: t.name + " latency" + suffix, Unit: "ms", Stat: summarize(lats[i])}
			if t.name != "squid" && squidErr == nil {
				rpsRow.Baseline = "squid throughput" + suffix
				latRow.Baseline = "squid latency" + suffix
				rpsRow.Note = "goal: at least 1.5x squid's requests per second"
			}
			rows = append(rows, rpsRow, latRow)
			if t.pid != 0 {
				cpuRow := Row{Section: "forward proxy", Name: t.name + " CPU per request" + suffix, Unit: "µs", Stat: summarize(cpus[i])}
				if t.name != "squid" && squidErr == nil {
					cpuRow.Baseline = "squid CPU per request" + suffix
				}
				rows = append(rows, cpuRow)
			}
		}
	}
	return rows, nil
}
