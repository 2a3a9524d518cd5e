package mcp_test

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	gomcp "github.com/mark3labs/mcp-go/mcp"

	"github.com/clawbox/clawbox/internal/cli"

	"github.com/clawbox/clawbox/internal/testkit"
)

// TestThirdPartyClientBothTransports drives `clawbox mcp` (stdio) and the real
// server's /mcp (streamable HTTP) with a third-party client, mcp-go: both must
// negotiate the same protocol version, the newest the client offers, and serve
// tools/list and tools/call alike.
func TestThirdPartyClientBothTransports(t *testing.T) {
	dir, port, cfg := startServer(t)
	tok, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// stdio: the real command, in process.
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr testkit.Buffer
	cmdCtx, cmdCancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- cli.Run(cmdCtx, []string{"--dir", dir, "mcp", "--poll", "50ms"}, inR, outW, &stderr)
		outW.Close()
	}()
	t.Cleanup(func() {
		cmdCancel()
		inW.Close()
		io.Copy(io.Discard, outR)
		if c := <-code; c != 0 {
			t.Errorf("clawbox mcp exited %d; stderr:\n%s", c, stderr.String())
		}
	})
	stdio := mcpgo.NewClient(transport.NewIO(outR, inW, nil))
	if err := stdio.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer stdio.Close()

	// streamable HTTP: the real server's /mcp, with the token.
	httpc, err := mcpgo.NewStreamableHttpClient("http://127.0.0.1:"+strconv.Itoa(port)+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
	if err != nil {
		t.Fatal(err)
	}
	if err := httpc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer httpc.Close()

	versions := map[string]string{}
	for _, tc := range []struct {
		name string
		c    *mcpgo.Client
	}{{"stdio", stdio}, {"http", httpc}} {
		var req gomcp.InitializeRequest
		req.Params.ClientInfo = gomcp.Implementation{Name: "mcp-go-test", Version: "1"}
		res, err := tc.c.Initialize(ctx, req)
		if err != nil {
			t.Fatalf("%s: initialize: %v; stderr:\n%s", tc.name, err, stderr.String())
		}
		if res.ProtocolVersion != tc.c.ProtocolVersion() {
			t.Errorf("%s: initialize result says %q, client uses %q", tc.name, res.ProtocolVersion, tc.c.ProtocolVersion())
		}
		versions[tc.name] = tc.c.ProtocolVersion()

		// The echo tool may still be loading: list until it is there.
		deadline := time.Now().Add(150 * time.Second)
		for {
			lr, err := tc.c.ListTools(ctx, gomcp.ListToolsRequest{})
			if err != nil {
				t.Fatalf("%s: tools/list: %v", tc.name, err)
			}
			names := map[string]bool{}
			for _, tl := range lr.Tools {
				names[tl.Name] = true
			}
			if names["echo"] && names["sandbox_spawn"] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: tools/list lacks echo or sandbox_spawn: %v", tc.name, names)
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}

		var call gomcp.CallToolRequest
		call.Params.Name = "echo"
		call.Params.Arguments = map[string]any{"via": tc.name}
		cr, err := tc.c.CallTool(ctx, call)
		if err != nil {
			t.Fatalf("%s: tools/call echo: %v", tc.name, err)
		}
		if cr.IsError {
			t.Fatalf("%s: tools/call echo is an error: %+v", tc.name, cr.Content)
		}
		b, _ := json.Marshal(cr.StructuredContent)
		if !strings.Contains(string(b), `"via":"`+tc.name+`"`) {
			t.Errorf("%s: echo structured content = %s", tc.name, b)
		}
	}
	if versions["stdio"] != gomcp.LATEST_PROTOCOL_VERSION || versions["http"] != versions["stdio"] {
		t.Errorf("negotiated %v, want %q on both transports", versions, gomcp.LATEST_PROTOCOL_VERSION)
	}
}
