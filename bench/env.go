package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/daemon"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/home"
	"github.com/clawbox/clawbox/internal/wasm/exampletools"
)

// Label marks every container and image the harness creates; its value is the run id.
const Label = "clawbox.bench"

// imageRepo is the repository of the bench image (allowed by "clawbox-bench/").
const imageRepo = "clawbox-bench/agent"

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// pingDocker reports whether a Docker daemon answers.
func pingDocker(ctx context.Context, cli *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	return err
}

// buildAgent compiles ./bench/agent as a static linux binary into dir.
func buildAgent(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "agent")
	return out, dockertest.BuildStatic(ctx, "github.com/clawbox/clawbox/bench/agent", out)
}

// buildImage imports ref: Debian's static busybox (sh, sleep, …) and the agent at
// /agent, labelled Label=runID. The agent binary is at agentPath.
func buildImage(ctx context.Context, ref, agentPath, runID string) error {
	agent, err := os.ReadFile(agentPath)
	if err != nil {
		return err
	}
	return dockertest.ImportImage(ctx, ref, []dockertest.File{{Name: "agent", Mode: 0o755, Data: agent}}, Label+"="+runID)
}

// sweep removes every container labelled Label=runID or made from image (clawbox's
// own sandboxes carry clawbox's labels, not ours), then the image. It runs at the
// end even after a failure or an interrupt, so it uses its own context.
func sweep(cli *client.Client, runID, image string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var problems []string
	seen := map[string]bool{}
	for _, f := range []client.Filters{
		make(client.Filters).Add("label", Label+"="+runID),
		make(client.Filters).Add("ancestor", image),
	} {
		if image == "" && f["ancestor"] != nil {
			continue
		}
		list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			problems = append(problems, "list containers: "+err.Error())
			continue
		}
		for _, c := range list.Items {
			if seen[c.ID] {
				continue
			}
			seen[c.ID] = true
			if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !strings.Contains(err.Error(), "No such container") {
				problems = append(problems, "remove container "+c.ID[:12]+": "+err.Error())
			}
		}
	}
	if image != "" {
		if _, err := cli.ImageRemove(ctx, image, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !strings.Contains(err.Error(), "No such image") {
			problems = append(problems, "remove image: "+err.Error())
		}
	}
	return problems
}

// upstream is the loopback HTTPS server that stands for a real API.
type upstream struct {
	srv    *httptest.Server
	port   string
	caFile string
}

func newUpstream(dir string) (*upstream, error) {
	body := []byte(`{"ok":true,"items":[1,2,3],"note":"a small JSON answer from the loopback upstream"}`)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	ca := filepath.Join(dir, "upstream-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		srv.Close()
		return nil, err
	}
	return &upstream{srv: srv, port: port, caFile: ca}, nil
}

// URL is the upstream as the gateway sees it: example.com is mapped to 127.0.0.1 by
// proxy.hosts, so nothing leaves the machine.
func (u *upstream) URL(path string) string { return "https://example.com:" + u.port + path }

// DirectURL is the same upstream for a client on the host.
func (u *upstream) DirectURL(path string) string { return "https://127.0.0.1:" + u.port + path }

// newConfig initialises a clawbox directory under dir and returns its config with a
// free loopback port.
func newConfig(ctx context.Context, dir string) (*config.Config, error) {
	return newConfigWith(ctx, dir, nil)
}

// newConfigWith is newConfig with the tools an installer adds to the tool directory
// (exampletools.Install: what `clawbox init` installs).
func newConfigWith(ctx context.Context, dir string, tools home.Installer) (*config.Config, error) {
	res, err := home.Init(ctx, dir, tools)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(res.Config, func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg.Server.Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg.Logging.Level = "error"
	return cfg, nil
}

// installEcho copies the example echo tool into cfg's tool directory.
func installEcho(cfg *config.Config) error {
	mod, err := exampletools.Module("echo")
	if err != nil {
		return err
	}
	man, err := exampletools.Manifest("echo")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.Sandbox.ToolDir, "echo.wasm"), mod, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cfg.Sandbox.ToolDir, "echo.json"), man, 0o644)
}

// server is a clawbox server running in this process (daemon.Run).
type server struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// startServer runs daemon.Run with cfg and waits until it listens.
func startServer(ctx context.Context, cfg *config.Config, logw io.Writer) (*server, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ready := make(chan []string, 1)
	s := &server{cancel: cancel, done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelError}))
	go func() {
		s.done <- daemon.Run(sctx, cfg, daemon.Options{Logger: log, Ready: func(a []string) { ready <- a }})
	}()
	select {
	case a := <-ready:
		s.addr = a[0]
		return s, nil
	case err := <-s.done:
		cancel()
		return nil, fmt.Errorf("clawbox server did not start: %w", err)
	case <-time.After(60 * time.Second):
		cancel()
		<-s.done
		return nil, errors.New("clawbox server did not become ready in 60s")
	case <-ctx.Done():
		cancel()
		<-s.done
		return nil, ctx.Err()
	}
}

// Stop shuts the server down and waits. Idempotent.
func (s *server) Stop() error {
	if s == nil || s.cancel == nil {
		return nil
	}
	s.cancel()
	s.cancel = nil
	return <-s.done
}
