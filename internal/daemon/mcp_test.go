package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/mcp"
	"github.com/clawbox/clawbox/internal/wasm/exampletools"
)

// mcpConfig is a server config with the echo tool and, when Docker answers, the
// package's test image allowed.
func mcpConfig(t *testing.T) *config.Config {
	cfg := dockerConfig(t)
	installTools(t, cfg, "echo")
	return cfg
}

// bearer adds the API token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// mcpSession is an SDK client session that records tools/list_changed notifications.
type mcpSession struct {
	*sdk.ClientSession
	changed chan struct{}
}

// connectMCP connects the SDK's client; protocol "" is the SDK's newest (where
// list_changed needs a subscription), "2025-11-25" the one Claude Code and Cursor
// speak today.
func connectMCP(t *testing.T, tr sdk.Transport, protocol string) *mcpSession {
	t.Helper()
	changed := make(chan struct{}, 16)
	c := sdk.NewClient(&sdk.Implementation{Name: "clawbox-test", Version: "1"}, &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: protocol})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return &mcpSession{ClientSession: cs, changed: changed}
}

// toolsWhen lists the tools until ok accepts them, waiting for a list_changed
// notification between tries. With poll, it also lists again every poll: for the
// initial load, which may finish while the client subscribes, before its
// notifications are delivered.
func (s *mcpSession) toolsWhen(t *testing.T, what string, poll time.Duration, ok func(map[string]*sdk.Tool) bool) map[string]*sdk.Tool {
	t.Helper()
	deadline := time.After(90 * time.Second)
	var tick <-chan time.Time
	if poll > 0 {
		tk := time.NewTicker(poll)
		defer tk.Stop()
		tick = tk.C
	}
	for {
		res, err := s.ListTools(context.Background(), nil)
		if err != nil {
			t.Fatalf("list tools: %v", err)
		}
		tools := map[string]*sdk.Tool{}
		for _, tl := range res.Tools {
			tools[tl.Name] = tl
		}
		if ok(tools) {
			return tools
		}
		select {
		case <-s.changed:
		case <-tick:
		case <-deadline:
			t.Fatalf("no tools/list_changed notification bringing %s; tools: %v", what, keys(tools))
		}
	}
}

func keys(m map[string]*sdk.Tool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func has(names ...string) func(map[string]*sdk.Tool) bool {
	return func(m map[string]*sdk.Tool) bool {
		for _, n := range names {
			if m[n] == nil {
				return false
			}
		}
		return true
	}
}

func callTool(t *testing.T, s *mcpSession, name string, args any) (*sdk.CallToolResult, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := s.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	var structured map[string]any
	if res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, &structured); err != nil {
			t.Fatalf("%s: structured content %s is not an object", name, b)
		}
	}
	return res, structured
}

func text(res *sdk.CallToolResult) string {
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			sb.WriteString(tc.Text)
		}
	}
	return sb.String()
}

// checkMCP runs the checks every transport must pass against a server with the echo
// tool; addTool installs another tool on the server.
func checkMCP(t *testing.T, s *mcpSession, cfg *config.Config, c *client.Client) {
	tools := s.toolsWhen(t, "echo", 200*time.Millisecond, has("echo", "sandbox_spawn", "sandbox_logs", "sandbox_kill", "sandbox_list"))

	t.Run("schemas", func(t *testing.T) {
		man, err := exampletools.Manifest("echo")
		if err != nil {
			t.Fatal(err)
		}
		var m api.ToolManifest
		if err := json.Unmarshal(man, &m); err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := json.Unmarshal(m.InputSchema, &want); err != nil || want == nil {
			t.Fatalf("example echo manifest has no input_schema: %s", man)
		}
		if want["type"] == nil {
			want["type"] = "object"
		}
		got, _ := json.Marshal(tools["echo"].InputSchema)
		wantb, _ := json.Marshal(want)
		if string(got) != string(wantb) {
			t.Errorf("echo input schema = %s, want the manifest's %s", got, wantb)
		}
		if tools["echo"].Description != m.Tool.Description {
			t.Errorf("echo description = %q, want %q", tools["echo"].Description, m.Tool.Description)
		}
		spawn, _ := json.Marshal(tools["sandbox_spawn"].InputSchema)
		for _, p := range []string{`"image"`, `"command"`, `"template"`, `"timeout_ms"`} {
			if !strings.Contains(string(spawn), p) {
				t.Errorf("sandbox_spawn schema lacks %s: %s", p, spawn)
			}
		}
		kill, _ := json.Marshal(tools["sandbox_kill"].InputSchema)
		if !strings.Contains(string(kill), `"required":["container_id"]`) {
			t.Errorf("sandbox_kill schema does not require container_id: %s", kill)
		}
	})

	t.Run("call echo", func(t *testing.T) {
		res, st := callTool(t, s, "echo", map[string]any{"hello": "world"})
		if res.IsError {
			t.Fatalf("echo failed: %s", text(res))
		}
		out, _ := json.Marshal(st["output"])
		if !strings.Contains(string(out), `"hello":"world"`) || !strings.Contains(text(res), `"hello":"world"`) {
			t.Errorf("echo: structured %v, text %q", st, text(res))
		}
	})

	t.Run("unknown tool", func(t *testing.T) {
		res, st := callTool(t, s, "no_such_tool", map[string]any{})
		if !res.IsError || st["code"] != api.CodeToolNotFound || !strings.Contains(text(res), "tools/list") {
			t.Errorf("unknown tool: isError %v, structured %v, text %q", res.IsError, st, text(res))
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		res, _ := callTool(t, s, "sandbox_kill", map[string]any{"id": "x"})
		if !res.IsError {
			t.Errorf("sandbox_kill with an unknown field succeeded: %s", text(res))
		}
		res, st := callTool(t, s, "sandbox_logs", map[string]any{"container_id": "clawbox-00000000-0000-0000-0000-000000000000"})
		if !res.IsError || !strings.Contains(text(res), "sandbox_list") {
			t.Errorf("logs of an unknown sandbox: %v %q", st, text(res))
		}
	})

	t.Run("containers", func(t *testing.T) {
		requireDocker(t)
		res, st := callTool(t, s, "sandbox_spawn", map[string]any{"image": testImage, "command": []string{"sh", "-c", "echo from-mcp; sleep 600"}, "task": "mcp test", "labels": map[string]string{"via": "mcp"}})
		if res.IsError {
			t.Fatalf("spawn: %s", text(res))
		}
		id, _ := st["container_id"].(string)
		if id == "" || st["status"] != api.ContainerStatusRunning {
			t.Fatalf("spawn: %v", st)
		}
		t.Cleanup(func() { c.Kill(context.Background(), id) })

		res, st = callTool(t, s, "sandbox_list", map[string]any{"status": "running"})
		if res.IsError || !strings.Contains(text(res), id) {
			t.Errorf("list: %v %q", st, text(res))
		}
		res, st = callTool(t, s, "sandbox_list", map[string]any{"label": map[string]string{"via": "mcp"}})
		if res.IsError || !strings.Contains(text(res), id) {
			t.Errorf("list label via=mcp: %v %q", st, text(res))
		}
		res, st = callTool(t, s, "sandbox_list", map[string]any{"label": map[string]string{"via": "cli"}})
		if res.IsError || strings.Contains(text(res), id) {
			t.Errorf("list label via=cli: %v %q", st, text(res))
		}
		// Logs of the running sandbox show what it has printed so far (issue 12 item 1).
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
			res, st = callTool(t, s, "sandbox_logs", map[string]any{"container_id": id})
			if !res.IsError && st["status"] == api.ContainerStatusRunning && st["stdout"] == "from-mcp\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("logs while running: %v %q", st, text(res))
			}
		}
		res, st = callTool(t, s, "sandbox_kill", map[string]any{"container_id": id})
		if res.IsError || st["status"] != api.ContainerStatusKilled {
			t.Errorf("kill: %v %q", st, text(res))
		}
		res, st = callTool(t, s, "sandbox_logs", map[string]any{"container_id": id})
		if res.IsError || st["status"] != api.ContainerStatusKilled || !strings.Contains(st["stdout"].(string), "from-mcp") {
			t.Errorf("logs: %v %q", st, text(res))
		}

		for _, tc := range []struct {
			name, image, code, next string
		}{
			{"not allowed", "alpine:3", api.CodeImageNotAllowed, "containers.allowed_images"},
			{"not present", "clawbox-test/absent:none", api.CodeImageNotFound, "clawbox image pull clawbox-test/absent:none"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res, st := callTool(t, s, "sandbox_spawn", map[string]any{"image": tc.image})
				if !res.IsError || st["code"] != tc.code || !strings.Contains(text(res), tc.next) {
					t.Errorf("spawn %s: %v %q", tc.image, st, text(res))
				}
			})
		}
	})

	t.Run("list changed", func(t *testing.T) {
		// The echo module under another name and without a manifest: a new tool (with
		// the permissive schema), and no new compilation.
		mod, err := exampletools.Module("echo")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Sandbox.ToolDir, "echo_copy.wasm"), mod, 0o644); err != nil {
			t.Fatal(err)
		}
		tools := s.toolsWhen(t, "echo_copy", 0, has("echo_copy", "echo"))
		schema, _ := json.Marshal(tools["echo_copy"].InputSchema)
		if string(schema) != `{"additionalProperties":true,"type":"object"}` {
			t.Errorf("echo_copy has schema %s, want the permissive object schema", schema)
		}
		res, _ := callTool(t, s, "echo_copy", map[string]any{"n": 42})
		if res.IsError || !strings.Contains(text(res), `"n":42`) {
			t.Errorf("echo_copy: %q", text(res))
		}

		if err := os.Remove(filepath.Join(cfg.Sandbox.ToolDir, "echo_copy.wasm")); err != nil {
			t.Fatal(err)
		}
		s.toolsWhen(t, "echo_copy's removal", 0, func(m map[string]*sdk.Tool) bool { return m["echo_copy"] == nil && m["echo"] != nil })
	})
}

// TestMCPStreamableHTTP drives /mcp of a real server with the SDK's client.
func TestMCPStreamableHTTP(t *testing.T) {
	cfg := mcpConfig(t)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	tok, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("token required", func(t *testing.T) {
		body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
		// The sessionless protocol is served by another handler: it needs the token too.
		discover := `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}`
		for _, version := range []string{"", "2026-07-28"} {
			for _, auth := range []string{"", "Bearer wrong"} {
				b := body
				if version != "" {
					b = discover
				}
				req, _ := http.NewRequest(http.MethodPost, addrs[0]+"/mcp", strings.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				if version != "" {
					req.Header.Set("Mcp-Protocol-Version", version)
					req.Header.Set("Mcp-Method", "server/discover")
				}
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("POST /mcp (protocol %q) with %q: %d, want 401", version, auth, resp.StatusCode)
				}
			}
		}
		cl := sdk.NewClient(&sdk.Implementation{Name: "x", Version: "1"}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if cs, err := cl.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: addrs[0] + "/mcp", MaxRetries: -1}, nil); err == nil {
			cs.Close()
			t.Error("an MCP client without the token connected")
		}
	})

	t.Run("documented", func(t *testing.T) {
		resp, err := http.Get(addrs[0] + "/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct {
			Paths map[string]map[string]any `json:"paths"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"get", "post", "delete"} {
			if doc.Paths["/mcp"][m] == nil {
				t.Errorf("OpenAPI lacks %s /mcp: %v", m, doc.Paths["/mcp"])
			}
		}
	})

	hc := &http.Client{Transport: bearer{token: tok, next: http.DefaultTransport}}
	s := connectMCP(t, &sdk.StreamableClientTransport{Endpoint: addrs[0] + "/mcp", HTTPClient: hc}, "")
	if v := s.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Errorf("the SDK's client negotiated %q over HTTP, want 2026-07-28", v)
	}
	checkMCP(t, s, cfg, c)

	// An older client still gets a session (and the GET stream for list_changed).
	old := connectMCP(t, &sdk.StreamableClientTransport{Endpoint: addrs[0] + "/mcp", HTTPClient: hc}, "2025-11-25")
	if v := old.InitializeResult().ProtocolVersion; v != "2025-11-25" || old.ID() == "" {
		t.Errorf("a 2025-11-25 client negotiated %q with session %q, want 2025-11-25 with a session", v, old.ID())
	}
	old.toolsWhen(t, "echo for a 2025-11-25 client", 200*time.Millisecond, has("echo", "sandbox_spawn"))
}

// TestMCPInMemory serves the MCP server of internal/mcp, backed by the Go client of a
// real server, over the SDK's in-memory transport; the tool list is polled.
func TestMCPInMemory(t *testing.T) {
	cfg := mcpConfig(t)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	srv, err := mcp.New(mcp.Config{Backend: c, Templates: map[string]config.Template{"tiny": {Image: testImage}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, ct := sdk.NewInMemoryTransports()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, st, 20*time.Millisecond) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	s := connectMCP(t, ct, "2025-11-25")
	checkMCP(t, s, cfg, c)

	t.Run("unknown template", func(t *testing.T) {
		res, st := callTool(t, s, "sandbox_spawn", map[string]any{"template": "huge"})
		if !res.IsError || st["code"] != api.CodeInvalidRequest || !strings.Contains(text(res), "tiny") {
			t.Errorf("unknown template: %v %q", st, text(res))
		}
	})
}

// TestMCPToolsListWaitsForInitialLoad: a tools/list sent as soon as the server
// answers lists the WASM tools (it waits for the initial load, here slow: an empty
// compilation cache), and detailed /health then says the tools are no longer loading.
func TestMCPToolsListWaitsForInitialLoad(t *testing.T) {
	cfg := testConfig(t)
	installTools(t, cfg, "echo")
	cfg.Sandbox.CacheDir = t.TempDir() // nothing cached: the compile takes seconds
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	tok, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: bearer{token: tok, next: http.DefaultTransport}}
	s := connectMCP(t, &sdk.StreamableClientTransport{Endpoint: addrs[0] + "/mcp", HTTPClient: hc}, "2025-11-25")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := s.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	if !slices.Contains(names, "echo") || !slices.Contains(names, "sandbox_spawn") {
		t.Fatalf("first tools/list = %v, want echo and the sandbox tools", names)
	}
	h, err := c.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := h.Components["wasm_engine"].Detail.(map[string]any)
	if d["loading"] != false || d["tools_loaded"] != float64(1) {
		t.Errorf("wasm_engine health after the load = %#v, want loading=false, tools_loaded=1", h.Components["wasm_engine"])
	}
}
