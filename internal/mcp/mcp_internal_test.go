package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/config"
)

// The Go client is the Backend of both the stdio bridge and the server's /mcp.
var _ Backend = (*client.Client)(nil)

func TestInputSchema(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"absent", ``, string(permissiveSchema)},
		{"null", `null`, string(permissiveSchema)},
		{"not json", `{`, string(permissiveSchema)},
		{"array", `[1]`, string(permissiveSchema)},
		{"string type", `{"type":"string"}`, string(permissiveSchema)},
		{"type list", `{"type":["object","null"]}`, string(permissiveSchema)},
		{"type added", `{"properties":{"a":{"type":"string"}}}`, `{"properties":{"a":{"type":"string"}},"type":"object"}`},
		{"kept", `{"type":"object","required":["a"]}`, `{"required":["a"],"type":"object"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(inputSchema(json.RawMessage(tc.in))); got != tc.want {
				t.Errorf("inputSchema(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		hc   hintContext
		code string
		next string // a substring of the hint
	}{
		{"tool not found", api.Errorf(api.CodeToolNotFound, "tool %q not found", "x"), hintContext{tool: "x"}, api.CodeToolNotFound, "tools/list"},
		{"image not found", api.Errorf(api.CodeImageNotFound, "no such image"), hintContext{image: "python:3.12"}, api.CodeImageNotFound, "clawbox image pull python:3.12"},
		{"image not allowed", api.Errorf(api.CodeImageNotAllowed, "image not allowed"), hintContext{image: "evil"}, api.CodeImageNotAllowed, "containers.allowed_images"},
		{"policy", api.Errorf(api.CodePolicyDenied, "credential X is not allowed"), hintContext{}, api.CodePolicyDenied, "allowed_credentials"},
		{"blocked", api.Errorf(api.CodeBlockedByPolicy, "blocked"), hintContext{tool: "http_request"}, api.CodeBlockedByPolicy, "clawbox policy check"},
		{"sandbox gone", api.Errorf(api.CodeNotFound, "no sandbox"), hintContext{container: "clawbox-1"}, api.CodeNotFound, "sandbox_list"},
		{"capacity", api.Errorf(api.CodeResourceExhausted, "max_containers reached"), hintContext{}, api.CodeResourceExhausted, "sandbox_kill"},
		{"docker down", api.Errorf(api.CodeUnavailable, "Docker is not available"), hintContext{}, api.CodeUnavailable, "WASM tools still work"},
		{"wrapped", fmt.Errorf("list tools: %w", api.Errorf(api.CodeAuthRequired, "bad token")), hintContext{}, api.CodeAuthRequired, "CLAWBOX_AUTH_TOKEN"},
		{"unreachable", &client.UnreachableError{URL: "http://127.0.0.1:1", Err: errors.New("connection refused")}, hintContext{}, codeUnreachable, "clawbox serve"},
		{"deadline", context.DeadlineExceeded, hintContext{}, api.CodeTimeout, "retry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := describe(tc.err, tc.hc)
			if r.Code != tc.code || !strings.Contains(r.Next, tc.next) {
				t.Errorf("describe = %+v, want code %s and a hint with %q", r, tc.code, tc.next)
			}
			res := errorResult(tc.err, tc.hc)
			if !res.IsError || !strings.Contains(res.Content[0].(*sdk.TextContent).Text, tc.next) {
				t.Errorf("result = %+v", res)
			}
		})
	}
}

func TestSpawnRequest(t *testing.T) {
	s := &Server{cfg: Config{Templates: map[string]config.Template{
		"py": {Image: "python:3.12", Description: "python", Command: []string{"python3"}, Env: map[string]string{"A": "1"},
			NetworkAllowlist: []string{"pypi.org"}, MaxLifetimeMS: 1000, MemoryMB: 64},
		"ws": {Image: "alpine", Workspace: true},
	}}}
	for _, tc := range []struct {
		name string
		in   SpawnArgs
		want api.ContainerSpawnRequest
		hint string
	}{
		{"image only", SpawnArgs{Image: "alpine", Command: []string{"true"}},
			api.ContainerSpawnRequest{Image: "alpine", Command: []string{"true"}, Task: "mcp: alpine true"}, ""},
		{"template", SpawnArgs{Template: "py"},
			api.ContainerSpawnRequest{Image: "python:3.12", Task: "python", Command: []string{"python3"}, Env: map[string]string{"A": "1"},
				Capabilities: &api.ContainerCapabilities{Network: &api.ContainerNetwork{Allowlist: []string{"pypi.org"}},
					Resources: &api.ContainerResources{TimeoutMS: ptr[int64](1000), MemoryMB: ptr[int64](64)}}}, ""},
		{"template overridden", SpawnArgs{Template: "py", Command: []string{"sh"}, Env: map[string]string{"B": "2"}, NetworkAllowlist: []string{}, TimeoutMS: 5},
			api.ContainerSpawnRequest{Image: "python:3.12", Task: "python", Command: []string{"sh"}, Env: map[string]string{"A": "1", "B": "2"},
				Capabilities: &api.ContainerCapabilities{Network: &api.ContainerNetwork{Allowlist: []string{}},
					Resources: &api.ContainerResources{TimeoutMS: ptr[int64](5), MemoryMB: ptr[int64](64)}}}, ""},
		{"workspace", SpawnArgs{Image: "alpine", Workspace: true},
			api.ContainerSpawnRequest{Image: "alpine", Task: "mcp: alpine", Capabilities: &api.ContainerCapabilities{Workspace: true}}, ""},
		{"template workspace", SpawnArgs{Template: "ws"},
			api.ContainerSpawnRequest{Image: "alpine", Task: "mcp: alpine", Env: map[string]string{}, Capabilities: &api.ContainerCapabilities{Workspace: true}}, ""},
		{"unknown template", SpawnArgs{Template: "rust"}, api.ContainerSpawnRequest{}, "use one of: py"},
		{"negative", SpawnArgs{Image: "alpine", MemoryMB: -1}, api.ContainerSpawnRequest{}, "must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, hint := s.spawnRequest(tc.in)
			if tc.hint != "" {
				if !strings.Contains(hint, tc.hint) {
					t.Errorf("hint = %q, want %q", hint, tc.hint)
				}
				return
			}
			if hint != "" || !reflect.DeepEqual(got, tc.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tc.want)
				t.Errorf("spawnRequest = %s (hint %q), want %s", g, hint, w)
			}
		})
	}
}

// listBackend serves a settable tool list; it fails every other call.
type listBackend struct {
	Backend // nil: the other methods are not called here
	mu      sync.Mutex
	tools   []api.ToolInfo
}

func (b *listBackend) Tools(context.Context) ([]api.ToolInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]api.ToolInfo(nil), b.tools...), nil
}

func (b *listBackend) set(tools ...api.ToolInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tools = tools
}

func tool(name, desc string) api.ToolInfo {
	return api.ToolInfo{ToolManifest: api.ToolManifest{Tool: api.ToolMeta{Name: name, Description: desc}}}
}

// TestRefresh: Refresh adds, replaces and removes tools, reports whether anything
// changed, hides WASM tools named like a sandbox tool, and connected clients hear of
// each change.
func TestRefresh(t *testing.T) {
	b := &listBackend{}
	s, err := New(Config{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, ct := sdk.NewInMemoryTransports()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, st, 0) }()
	defer func() { cancel(); <-done }()
	changed := make(chan struct{}, 16)
	// The 2025-11-25 protocol (that of today's MCP clients) delivers list_changed to
	// every session from the moment it connects; the newer one only after the
	// client's subscription is registered, which Connect does not wait for.
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "t", Version: "1"}, &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { changed <- struct{}{} },
	}).Connect(ctx, ct, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	list := func() string {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tl := range res.Tools {
			out = append(out, tl.Name+"="+tl.Description)
		}
		return strings.Join(out, " ")
	}
	wait := func(step string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no tools/list_changed", step)
		}
	}
	refresh := func(step string, want bool) {
		t.Helper()
		got, err := s.Refresh(ctx)
		if err != nil || got != want {
			t.Fatalf("%s: Refresh = %v, %v; want %v", step, got, err, want)
		}
	}
	sandbox := "sandbox_kill=" + "Stop"

	b.set(tool("a", "A"), tool("sandbox_list", "shadow"))
	refresh("add", true)
	wait("add")
	if l := list(); !strings.HasPrefix(l, "a=A ") || strings.Contains(l, "shadow") || !strings.Contains(l, sandbox) {
		t.Errorf("after add: %s", l)
	}
	refresh("unchanged", false)

	b.set(tool("a", "A2"), tool("b", "B"))
	refresh("replace", true)
	wait("replace")
	if l := list(); !strings.Contains(l, "a=A2") || !strings.Contains(l, "b=B") {
		t.Errorf("after replace: %s", l)
	}

	b.set(tool("b", "B"))
	refresh("remove", true)
	wait("remove")
	if l := list(); strings.Contains(l, "a=") || !strings.Contains(l, "b=B") {
		t.Errorf("after remove: %s", l)
	}
}

// TestMissingRequiredArgument: a call without a required argument, of a sandbox tool
// or a WASM tool, gets clawbox's hint (what is missing, an example call), not the
// SDK's raw schema-validation error, and never reaches the backend.
func TestMissingRequiredArgument(t *testing.T) {
	b := &listBackend{}
	greet := tool("greet", "Greets")
	greet.InputSchema = json.RawMessage(`{"type":"object","required":["name","times"],"properties":{"name":{"type":"string"},"times":{"type":"integer"}}}`)
	b.set(greet)
	s, err := New(Config{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	st, ct := sdk.NewInMemoryTransports()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, st, 0) }()
	defer func() { cancel(); <-done }()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	cases := []struct {
		name, tool string
		args       map[string]any
		want       []string
	}{
		{"sandbox tool", "sandbox_logs", map[string]any{}, []string{`missing required argument "container_id"`, `{"arguments":{"container_id":`, `"name":"sandbox_logs"`}},
		{"wasm tool", "greet", map[string]any{"name": "you"}, []string{`missing required argument "times"`, `"arguments":{"name":"you","times":1}`}},
		{"wasm tool, nothing given", "greet", nil, []string{`missing required arguments "name", "times"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tc.tool, Arguments: tc.args})
			if err != nil {
				t.Fatal(err)
			}
			text := res.Content[0].(*sdk.TextContent).Text
			if !res.IsError || !strings.Contains(text, "Error (invalid_request)") {
				t.Fatalf("result %v: %s", res.IsError, text)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("result lacks %q:\n%s", w, text)
				}
			}
			if strings.Contains(text, "validating") {
				t.Errorf("raw schema error leaked:\n%s", text)
			}
		})
	}
}
