package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/clawbox/clawbox/internal/cli"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/daemon"
	"github.com/clawbox/clawbox/internal/home"
	"github.com/clawbox/clawbox/internal/wasm/exampletools"

	"github.com/clawbox/clawbox/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer initialises a clawbox directory with the echo tool and serves it.
func startServer(t *testing.T) (dir string, port int, cfg *config.Config) {
	t.Helper()
	base, err := os.MkdirTemp("", "cbmcp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	dir = filepath.Join(base, "cb")
	res, err := home.Init(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	cfg, err = config.Load(res.Config, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg.Server.Port = port
	cfg.Logging.Level = "error"
	// Write the port into the config too, so that `clawbox mcp --dir` finds it.
	b, err := os.ReadFile(res.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(res.Config, []byte(strings.Replace(string(b), "port = 9800", "port = "+strconv.Itoa(port), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	writeTool(t, cfg, "echo", "echo", true)

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, cfg, daemon.Options{Stderr: io.Discard, Ready: func([]string) { close(ready) }})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	return dir, port, cfg
}

// writeTool installs the example tool src as name, with its manifest when manifest.
func writeTool(t *testing.T, cfg *config.Config, src, name string, manifest bool) {
	t.Helper()
	mod, err := exampletools.Module(src)
	if err != nil {
		t.Fatal(err)
	}
	if manifest {
		man, err := exampletools.Manifest(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Sandbox.ToolDir, name+".json"), man, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(cfg.Sandbox.ToolDir, name+".wasm"), mod, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestStdioCommand runs the real `clawbox mcp` command in process, with pipes for
// stdin and stdout, and drives it with the SDK's client.
func TestStdioCommand(t *testing.T) {
	dir, _, cfg := startServer(t)

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr testkit.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- cli.Run(ctx, []string{"--dir", dir, "mcp", "--poll", "50ms"}, inR, outW, &stderr)
		outW.Close()
	}()
	t.Cleanup(func() {
		cancel()
		inW.Close()
		io.Copy(io.Discard, outR)
		if c := <-code; c != 0 {
			t.Errorf("clawbox mcp exited %d; stderr:\n%s", c, stderr.String())
		}
	})

	changed := make(chan struct{}, 16)
	client := sdk.NewClient(&sdk.Implementation{Name: "stdio-test", Version: "1"}, &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	})
	cctx, ccancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer ccancel()
	// The protocol version Claude Code and Cursor speak today.
	cs, err := client.Connect(cctx, &sdk.IOTransport{Reader: outR, Writer: inW}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connect: %v; stderr:\n%s", err, stderr.String())
	}
	defer cs.Close()

	// toolsWith lists the tools until they include want, waiting for a
	// tools/list_changed notification between tries: the server may still be loading
	// its tools, and the command polls for changes.
	toolsWith := func(want ...string) map[string]*sdk.Tool {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			res, err := cs.ListTools(cctx, nil)
			if err != nil {
				t.Fatalf("list tools: %v", err)
			}
			m := map[string]*sdk.Tool{}
			for _, tl := range res.Tools {
				m[tl.Name] = tl
			}
			missing := false
			for _, n := range want {
				missing = missing || m[n] == nil
			}
			if !missing {
				return m
			}
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("no tools/list_changed bringing %v (have %d tools); stderr:\n%s", want, len(m), stderr.String())
			}
		}
	}
	toolsWith("echo", "sandbox_spawn", "sandbox_logs", "sandbox_kill", "sandbox_list")

	res, err := cs.CallTool(cctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"via": "stdio"}})
	if err != nil || res.IsError {
		t.Fatalf("echo: %v %+v", err, res)
	}
	if b, _ := json.Marshal(res.StructuredContent); !strings.Contains(string(b), `"via":"stdio"`) {
		t.Errorf("echo structured content = %s", b)
	}
	res, err = cs.CallTool(cctx, &sdk.CallToolParams{Name: "missing", Arguments: map[string]any{}})
	if err != nil || !res.IsError {
		t.Fatalf("unknown tool: %v %+v", err, res)
	}

	// A tool added on the server reaches the client through the poll.
	writeTool(t, cfg, "echo", "echo_again", false)
	toolsWith("echo_again")
}

// TestStdioCommandUnreachable: without a server, the command fails at once with the
// exit code for an unreachable server, and writes nothing on stdout.
func TestStdioCommandUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), []string{"--dir", t.TempDir(), "--token", "x", "--port", strconv.Itoa(port), "mcp"},
		strings.NewReader(""), &stdout, &stderr)
	if code != cli.ExitUnreachable || stdout.Len() != 0 || !strings.Contains(stderr.String(), "clawbox serve") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
