package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/egress"
	"github.com/clawbox/clawbox/internal/secrets"
)

// benchCredential is a throwaway value for the credential-injection variants.
const benchCredential = "sk-bench0123456789abcdefghijklmnopqrst"

// gatewayLoad is one load shape: n requests from c concurrent senders.
type gatewayLoad struct{ n, c int }

// benchGateway compares, from the agent's point of view, POST /proxy through a
// sandbox's door with the same agent sending the same requests straight to the
// upstream from the host, at concurrency 1 (latency) and c (throughput); the door
// runs without and with a granted, injected credential. Repetitions are
// interleaved; each repetition is one agent run of n requests.
func benchGateway(ctx context.Context, e *env, reps int, loads []gatewayLoad) ([]Row, error) {
	if _, err := e.api.PutCredential(ctx, "BENCH", api.PutCredentialRequest{
		Value: benchCredential, Host: "example.com", Port: atoi(e.up.port), PathPrefix: "/api",
	}); err != nil {
		return nil, fmt.Errorf("put credential: %w", err)
	}
	tr, err := floorTransport(e.up.caFile)
	if err != nil {
		return nil, err
	}
	defer tr.CloseIdleConnections()
	var rows []Row
	for _, load := range loads {
		type variant struct {
			name string
			run  func() (*agentResult, error)
		}
		args := []string{"-n", strconv.Itoa(load.n), "-c", strconv.Itoa(load.c)}
		direct := func() (*agentResult, error) {
			out, err := exec.CommandContext(ctx, e.agentPath, append([]string{"-direct", "-ca", e.up.caFile, "-url", e.up.DirectURL("/api/x")}, args...)...).Output()
			if err != nil {
				return nil, fmt.Errorf("direct agent: %w", err)
			}
			var r agentResult
			return &r, json.Unmarshal(out, &r)
		}
		viaDoor := func(grant bool) func() (*agentResult, error) {
			return func() (*agentResult, error) {
				req := api.ContainerSpawnRequest{Task: "bench gateway", Command: append([]string{"/agent", "-url", e.up.URL("/api/x")}, args...)}
				if grant {
					req.Capabilities = &api.ContainerCapabilities{Credentials: []string{"BENCH"}}
				}
				info, err := e.api.Spawn(ctx, req)
				if err != nil {
					return nil, err
				}
				return e.agentReport(ctx, info.ContainerID)
			}
		}
		viaFloor := func(credential bool) func() (*agentResult, error) {
			return func() (*agentResult, error) {
				req := api.ContainerSpawnRequest{Task: "bench gateway floor", Command: append([]string{"/agent", "-floor", floorContainerSocket, "-url", e.up.URL("/api/x")}, args...)}
				info, err := e.api.Spawn(ctx, req)
				if err != nil {
					return nil, err
				}
				f, err := startFloor(filepath.Join(e.cfg.Containers.ProxiesDir, info.ContainerID), e.up.upstreamBase(), tr, credential)
				if err != nil {
					_, _ = e.api.Kill(ctx, info.ContainerID)
					return nil, err
				}
				defer f.close()
				return e.agentReport(ctx, info.ContainerID)
			}
		}
		suffix := fmt.Sprintf(" (c=%d)", load.c)
		const (
			iDirect = iota
			iDoor
			iDoorCred
			iFloor
			iFloorCred
		)
		vs := []variant{
			iDirect:    {"direct from the host" + suffix, direct},
			iDoor:      {"POST /proxy from a sandbox" + suffix, viaDoor(false)},
			iDoorCred:  {"POST /proxy + credential injected" + suffix, viaDoor(true)},
			iFloor:     {"floor proxy from a sandbox" + suffix, viaFloor(false)},
			iFloorCred: {"floor proxy + credential header set" + suffix, viaFloor(true)},
		}
		res := make([][]*agentResult, len(vs))
		for r := 0; r < reps; r++ {
			for i, v := range vs {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				ar, err := v.run()
				if err != nil {
					return nil, fmt.Errorf("%s: %w", v.name, err)
				}
				if ar.Errors > 0 {
					return nil, fmt.Errorf("%s: %d of %d requests failed: %s", v.name, ar.Errors, ar.N, ar.FirstErr)
				}
				res[i] = append(res[i], ar)
			}
		}
		base := vs[iDirect].name
		for i, v := range vs {
			lat, rps := combine(res[i])
			latRow := Row{Section: "gateway", Name: v.name + " latency", Unit: "ms", Stat: lat}
			rpsRow := Row{Section: "gateway", Name: v.name + " throughput", Unit: "req/s", Stat: rps}
			if i > 0 {
				latRow.Baseline, rpsRow.Baseline = base+" latency", base+" throughput"
				latRow.Note = fmt.Sprintf("added median latency %.3f ms", lat.Median-summarizeLat(res[iDirect]).Median)
			}
			rows = append(rows, latRow, rpsRow)
		}
		// The door beside the floor: added latency (each repetition's p50 less the
		// direct run's of the same repetition) and throughput.
		added := func(i int) Stat {
			xs := make([]float64, len(res[i]))
			for r, ar := range res[i] {
				xs[r] = (ar.P50US - res[iDirect][r].P50US) / 1e3
			}
			return summarize(xs)
		}
		for _, pair := range [][2]int{{iDoor, iFloor}, {iDoorCred, iFloorCred}} {
			door, floor := vs[pair[0]].name, vs[pair[1]].name
			_, doorRPS := combine(res[pair[0]])
			rows = append(rows,
				Row{Section: "gateway vs floor", Name: "added p50 latency, " + floor, Unit: "ms", Stat: added(pair[1])},
				Row{Section: "gateway vs floor", Name: "added p50 latency, " + door, Unit: "ms", Stat: added(pair[0]),
					Baseline: "added p50 latency, " + floor, Note: "goal: at most 1.3x the floor's"},
			)
			if load.c > 1 {
				_, floorRPS := combine(res[pair[1]])
				rows = append(rows,
					Row{Section: "gateway vs floor", Name: "throughput, " + floor, Unit: "req/s", Stat: floorRPS},
					Row{Section: "gateway vs floor", Name: "throughput, " + door, Unit: "req/s", Stat: doorRPS,
						Baseline: "throughput, " + floor, Note: "goal: at least 0.9x the floor's"},
				)
			}
		}
	}
	return rows, nil
}

func summarizeLat(rs []*agentResult) Stat { s, _ := combine(rs); return s }

// combine merges agent runs: min of the minima, median of the medians, median of the
// p90s, max of the maxima (in ms), and the sample of each run's requests/s.
func combine(rs []*agentResult) (lat, rps Stat) {
	var mins, p50s, p90s, maxs, rates []float64
	for _, r := range rs {
		mins = append(mins, r.MinUS/1e3)
		p50s = append(p50s, r.P50US/1e3)
		p90s = append(p90s, r.P90US/1e3)
		maxs = append(maxs, r.MaxUS/1e3)
		rates = append(rates, r.RPS)
	}
	n := 0
	for _, r := range rs {
		n += r.N
	}
	lat = Stat{N: n, Min: summarize(mins).Min, Median: summarize(p50s).Median, P90: summarize(p90s).Median, Max: summarize(maxs).Max}
	return lat, summarize(rates)
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// gatewayVariants isolate the gateway's own cost inside this process, where a
// variant without any secret scanning is possible: the same GET sent by a Go client
// straight to the upstream (the baseline), and through egress.Gateway.Do with no
// credential store (no leak scan, no injection), with a store holding one credential
// (leak scan and redaction, nothing granted) and with that credential granted (scan,
// injection, redaction).
func gatewayVariants(ctx context.Context, e *env) (vs []variant, closeAll func(), err error) {
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
	dir, err := os.MkdirTemp(e.dir, "gw")
	if err != nil {
		return nil, closeAll, err
	}
	key, err := secrets.GenerateKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		return nil, closeAll, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := secrets.Open(secrets.Config{Path: filepath.Join(dir, "creds.enc"), Key: key, NoWatch: true, Logger: quiet})
	if err != nil {
		return nil, closeAll, err
	}
	closers = append(closers, func() { st.Close() })
	if _, err := st.Put("BENCH", api.PutCredentialRequest{Value: benchCredential, Host: "example.com", Port: atoi(e.up.port), PathPrefix: "/api"}); err != nil {
		return nil, closeAll, err
	}
	policy, err := egress.ParsePolicy([]string{"https://example.com:" + e.up.port + "/"})
	if err != nil {
		return nil, closeAll, err
	}
	gw := func(s egress.Secrets) (*egress.Gateway, error) {
		g, err := egress.New(egress.Config{
			RatePerSecond:     1e9,
			RateBurst:         1 << 30,
			AllowPrivateCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			Hosts:             map[string][]netip.Addr{"example.com": {netip.MustParseAddr("127.0.0.1")}},
			UpstreamCAFile:    e.up.caFile,
			Secrets:           s,
			Logger:            quiet,
		})
		if err == nil {
			closers = append(closers, func() { g.Close() })
		}
		return g, err
	}
	plain, err := gw(nil)
	if err != nil {
		return nil, closeAll, err
	}
	scanned, err := gw(st)
	if err != nil {
		return nil, closeAll, err
	}
	pem, err := os.ReadFile(e.up.caFile)
	if err != nil {
		return nil, closeAll, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	closers = append(closers, tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	call := func(g *egress.Gateway, grants []string) func() error {
		return func() error {
			r, err := g.Do(ctx, egress.Call{ContainerID: "bench", Policy: policy, Grants: grants, Method: "GET", URL: e.up.URL("/api/x")})
			if err != nil {
				return err
			}
			if r.Status != 200 {
				return fmt.Errorf("status %d", r.Status)
			}
			if len(grants) > 0 && len(r.Credentials) != 1 {
				return fmt.Errorf("credential not injected")
			}
			return nil
		}
	}
	return []variant{
		{name: "Go client direct", fn: func() error {
			resp, err := hc.Get(e.up.DirectURL("/api/x"))
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}},
		{name: "Gateway.Do, no credential store", fn: call(plain, nil)},
		{name: "Gateway.Do, leak scan (1 credential stored)", fn: call(scanned, nil)},
		{name: "Gateway.Do, leak scan + injection (granted)", fn: call(scanned, []string{"BENCH"})},
	}, closeAll, nil
}

// benchGatewayInProcess times gatewayVariants, sequentially.
func benchGatewayInProcess(ctx context.Context, e *env, n int) ([]Row, error) {
	vs, closeAll, err := gatewayVariants(ctx, e)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	const rounds = 10
	return timeInterleaved(ctx, "gateway (in-process)", vs, rounds, max(1, n/rounds))
}
