package mcp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/server"
	"github.com/clawbox/clawbox/internal/server/servertest"
)

// execSession connects an MCP client to a server whose backend is the Go client of
// the real API routes over the scripted sandbox service.
func execSession(t *testing.T) (*servertest.Sandboxes, *sdk.ClientSession) {
	t.Helper()
	srv, err := server.New(server.Config{Token: "mcp-exec-token"})
	if err != nil {
		t.Fatal(err)
	}
	fake := servertest.New()
	srv.RegisterContainers(fake)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL, client.Options{Token: "mcp-exec-token"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Backend: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, ct := sdk.NewInMemoryTransports()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, st, 0) }()
	t.Cleanup(func() { cancel(); <-done })
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return fake, cs
}

// call calls a tool and decodes its structured result into out (when not nil).
func call(t *testing.T, cs *sdk.ClientSession, name string, args map[string]any, out any) (text string, isError bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if out != nil {
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: structured content %s: %v", name, b, err)
		}
	}
	return res.Content[0].(*sdk.TextContent).Text, res.IsError
}

func TestExecTools(t *testing.T) {
	fake, cs := execSession(t)
	id := servertest.Running

	var ex ExecResult
	text, isErr := call(t, cs, toolExec, map[string]any{"container_id": id, "cmd": []string{"exit", "5"}}, &ex)
	if isErr || ex.ExitCode != 5 || ex.EndedBy != "exit" || !strings.Contains(text, "exit_code 5") {
		t.Fatalf("exec exit 5: %v %+v %s", isErr, ex, text)
	}
	text, _ = call(t, cs, toolExec, map[string]any{"container_id": id, "cmd": []string{"cat"}, "stdin": "in"}, &ex)
	if ex.Stdout != "in" || !strings.Contains(text, "--- stdout ---\nin") {
		t.Fatalf("exec stdin: %+v %s", ex, text)
	}
	ex = ExecResult{}
	call(t, cs, toolExec, map[string]any{"container_id": id, "cmd": []string{"hex", "00ff"}}, &ex)
	if ex.StdoutBase64 != "AP8=" || ex.Stdout != "" {
		t.Fatalf("exec binary: %+v", ex)
	}
	text, _ = call(t, cs, toolExec, map[string]any{"container_id": id, "cmd": []string{"sleep"}, "timeout_ms": 1}, &ex)
	if !ex.TimedOut || !strings.Contains(text, "larger timeout_ms") {
		t.Fatalf("exec timeout: %+v %s", ex, text)
	}

	var fw map[string]any
	text, isErr = call(t, cs, toolWriteFile, map[string]any{"container_id": id, "path": "/w/run.sh", "content": "#!/bin/sh\necho hi\n", "mode": "0755"}, &fw)
	if data, mode, ok := fake.File("/w/run.sh"); isErr || !ok || string(data) != "#!/bin/sh\necho hi\n" || mode != 0o755 {
		t.Fatalf("write: %v %s, stored %q %o", isErr, text, data, mode)
	}
	call(t, cs, toolWriteFile, map[string]any{"container_id": id, "path": "/w/b.bin", "content_base64": base64.StdEncoding.EncodeToString([]byte{0, 0xff, 1})}, nil)
	if data, _, _ := fake.File("/w/b.bin"); string(data) != "\x00\xff\x01" {
		t.Fatalf("write base64: %q", data)
	}

	var rf ReadFileResult
	call(t, cs, toolReadFile, map[string]any{"container_id": id, "path": "/w/run.sh"}, &rf)
	if rf.Content != "#!/bin/sh\necho hi\n" || rf.Truncated || rf.Bytes != 18 {
		t.Fatalf("read: %+v", rf)
	}
	rf = ReadFileResult{}
	call(t, cs, toolReadFile, map[string]any{"container_id": id, "path": "/w/b.bin"}, &rf)
	if rf.ContentBase64 != "AP8B" || rf.Content != "" {
		t.Fatalf("read binary: %+v", rf)
	}
	// Cut for the model's context, without splitting "é" in two.
	call(t, cs, toolWriteFile, map[string]any{"container_id": id, "path": "/w/long.txt", "content": "abcé" + strings.Repeat("x", 100)}, nil)
	rf = ReadFileResult{}
	text, _ = call(t, cs, toolReadFile, map[string]any{"container_id": id, "path": "/w/long.txt", "max_bytes": 4}, &rf)
	if rf.Content != "abc" || !rf.Truncated || !strings.Contains(text, "truncated") {
		t.Fatalf("read capped: %+v %s", rf, text)
	}

	var lf ListFilesResult
	text, _ = call(t, cs, toolListFiles, map[string]any{"container_id": id, "path": "/w"}, &lf)
	if len(lf.Entries) != 3 || lf.Entries[2].Name != "run.sh" || !strings.Contains(text, "file 0755 18 run.sh") {
		t.Fatalf("list: %+v %s", lf, text)
	}
}

func TestExecToolErrors(t *testing.T) {
	_, cs := execSession(t)
	for _, tc := range []struct {
		name, tool string
		args       map[string]any
		want       []string
	}{
		{"missing cmd", toolExec, map[string]any{"container_id": servertest.Running}, []string{`missing required argument "cmd"`}},
		{"empty cmd", toolExec, map[string]any{"container_id": servertest.Running, "cmd": []string{}}, []string{"cmd must name a program"}},
		{"not running", toolExec, map[string]any{"container_id": servertest.Stopped, "cmd": []string{"echo"}}, []string{"Error (conflict)", "not running", "sandbox_spawn"}},
		{"unknown", toolExec, map[string]any{"container_id": "nope", "cmd": []string{"echo"}}, []string{"Error (not_found)", "sandbox_list"}},
		{"supervisor lost", toolExec, map[string]any{"container_id": servertest.Running, "cmd": []string{"lose"}}, []string{"Error (unavailable)", "supervisor is not answering"}},
		{"missing path", toolReadFile, map[string]any{"container_id": servertest.Running}, []string{`missing required argument "path"`}},
		{"no such file", toolReadFile, map[string]any{"container_id": servertest.Running, "path": "/nope"}, []string{"Error (not_found)"}},
		{"denied", toolWriteFile, map[string]any{"container_id": servertest.Running, "path": "/proc/x", "content": "x"}, []string{"Error (permission_denied)", "/workspace"}},
		{"both contents", toolWriteFile, map[string]any{"container_id": servertest.Running, "path": "/a", "content": "x", "content_base64": "eA=="}, []string{"not both"}},
		{"bad base64", toolWriteFile, map[string]any{"container_id": servertest.Running, "path": "/a", "content_base64": "!!"}, []string{"not valid standard base64"}},
		{"bad mode", toolWriteFile, map[string]any{"container_id": servertest.Running, "path": "/a", "content": "x", "mode": "rwx"}, []string{"octal"}},
		{"setuid mode", toolWriteFile, map[string]any{"container_id": servertest.Running, "path": "/a", "content": "x", "mode": "4755"}, []string{"at most 0777"}},
		{"relative path", toolListFiles, map[string]any{"container_id": servertest.Running, "path": "w"}, []string{"Error (invalid_request)", "absolute"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, isErr := call(t, cs, tc.tool, tc.args, nil)
			if !isErr {
				t.Fatalf("not an error: %s", text)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("result lacks %q:\n%s", w, text)
				}
			}
		})
	}
}
