package mcp

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawbox/clawbox/api"
)

// The exec and file tools.
const (
	toolExec      = "sandbox_exec"
	toolReadFile  = "sandbox_read_file"
	toolWriteFile = "sandbox_write_file"
	toolListFiles = "sandbox_list_files"
)

// Caps on what a tool result puts into the model's context.
const (
	maxExecOutput   = 64 << 10  // per stream
	maxReadDefault  = 64 << 10  // sandbox_read_file without max_bytes
	maxReadCeiling  = 512 << 10 // sandbox_read_file's largest max_bytes
	maxWriteContent = 8 << 20   // decoded content of sandbox_write_file
)

// ExecArgs are the arguments of sandbox_exec.
type ExecArgs struct {
	ContainerID string            `json:"container_id" jsonschema:"the running sandbox's id (clawbox-...), from sandbox_spawn or sandbox_list"`
	Cmd         []string          `json:"cmd" jsonschema:"program and arguments, no shell: use [\"sh\", \"-c\", \"...\"] for pipes and redirection"`
	Stdin       string            `json:"stdin,omitempty" jsonschema:"text written to the command's standard input (then closed)"`
	Workdir     string            `json:"workdir,omitempty" jsonschema:"absolute working directory inside the sandbox (default the image's)"`
	Env         map[string]string `json:"env,omitempty" jsonschema:"extra environment variables for this command"`
	TimeoutMS   int64             `json:"timeout_ms,omitempty" jsonschema:"end the command after this many milliseconds (default the server's containers.exec_timeout_ms)"`
}

// ExecResult is the structured result of sandbox_exec.
type ExecResult struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	// StdoutBase64 / StderrBase64 replace Stdout / Stderr for output that is not text.
	StdoutBase64 string `json:"stdout_base64,omitempty"`
	StderrBase64 string `json:"stderr_base64,omitempty"`
	ExitCode     int    `json:"exit_code"`
	Signal       int    `json:"signal,omitempty"`
	TimedOut     bool   `json:"timed_out"`
	EndedBy      string `json:"ended_by"`
	// Truncated says that output was cut (at the server's cap or this tool's).
	Truncated  bool  `json:"truncated"`
	DurationMS int64 `json:"duration_ms"`
}

// PathArgs name a path in a sandbox.
type PathArgs struct {
	ContainerID string `json:"container_id" jsonschema:"the running sandbox's id (clawbox-...)"`
	Path        string `json:"path" jsonschema:"absolute path inside the sandbox, such as /workspace/main.py"`
}

// ReadFileArgs are the arguments of sandbox_read_file.
type ReadFileArgs struct {
	ContainerID string `json:"container_id" jsonschema:"the running sandbox's id (clawbox-...)"`
	Path        string `json:"path" jsonschema:"absolute path of the file inside the sandbox"`
	MaxBytes    int64  `json:"max_bytes,omitempty" jsonschema:"read at most this many bytes (default 65536, at most 524288)"`
}

// ReadFileResult is the structured result of sandbox_read_file.
type ReadFileResult struct {
	Path string `json:"path"`
	// Content is the file's text; ContentBase64 replaces it when the bytes are not UTF-8.
	Content       string `json:"content,omitempty"`
	ContentBase64 string `json:"content_base64,omitempty"`
	// Bytes is how many bytes are in the result.
	Bytes int64 `json:"bytes"`
	// Truncated says the file is longer than what is shown.
	Truncated bool `json:"truncated"`
}

// WriteFileArgs are the arguments of sandbox_write_file.
type WriteFileArgs struct {
	ContainerID   string `json:"container_id" jsonschema:"the running sandbox's id (clawbox-...)"`
	Path          string `json:"path" jsonschema:"absolute path of the file inside the sandbox; parent directories are created"`
	Content       string `json:"content,omitempty" jsonschema:"the file's text (give content or content_base64)"`
	ContentBase64 string `json:"content_base64,omitempty" jsonschema:"the file's bytes in base64, for binary files"`
	Mode          string `json:"mode,omitempty" jsonschema:"permission bits in octal, such as 0644 or 0755 (default 0644)"`
}

// ListFilesResult is the structured result of sandbox_list_files.
type ListFilesResult struct {
	Path    string          `json:"path"`
	Entries []api.FileEntry `json:"entries"`
}

// cappedWriter keeps the first max bytes and fails the copy once more arrives.
type cappedWriter struct {
	buf bytes.Buffer
	max int
	cut bool
}

var errCapped = errors.New("capped")

func (c *cappedWriter) Write(p []byte) (int, error) {
	room := c.max - c.buf.Len()
	if len(p) > room {
		c.buf.Write(p[:max(room, 0)])
		c.cut = true
		return max(room, 0), errCapped
	}
	return c.buf.Write(p)
}

// clip cuts text to at most n bytes on a rune boundary.
func clip(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}

func needID(id string) *sdk.CallToolResult {
	if id == "" {
		return failure(api.CodeInvalidRequest, "container_id is required: take it from sandbox_spawn or sandbox_list", nil)
	}
	return nil
}

func (s *Server) addExecTools() {
	b := s.cfg.Backend
	sdk.AddTool(s.srv, &sdk.Tool{
		Name: toolExec,
		Description: "Run a command in a running container sandbox (as the sandbox user) and return its stdout, stderr and exit code once it ends. " +
			"Commands run one after another in the same sandbox, so files and installed packages persist between calls. " +
			"cmd is an array without a shell: use [\"sh\", \"-c\", \"cd /workspace && make\"] for shell syntax. " +
			"A non-zero exit_code is the command's own failure, not a tool error; ended_by says whether it exited, hit its timeout_ms (exec_timeout) or the sandbox's deadline. " +
			"Output is capped (truncated: true) and secrets are redacted.",
		Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(true), OpenWorldHint: ptr(true)},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in ExecArgs) (*sdk.CallToolResult, any, error) {
		if r := needID(in.ContainerID); r != nil {
			return r, nil, nil
		}
		if len(in.Cmd) == 0 {
			return failure(api.CodeInvalidRequest, `cmd must name a program, for example ["ls", "-la", "/workspace"] or ["sh", "-c", "echo hi"]`, nil), nil, nil
		}
		if in.TimeoutMS < 0 {
			return failure(api.CodeInvalidRequest, "timeout_ms must be positive (or left out for the server's default)", nil), nil, nil
		}
		res, err := b.Exec(ctx, in.ContainerID, api.ExecRequest{Cmd: in.Cmd, Stdin: in.Stdin, Workdir: in.Workdir, Env: in.Env, TimeoutMS: in.TimeoutMS})
		if err != nil {
			return errorResult(err, hintContext{container: in.ContainerID}), nil, nil
		}
		return execToolResult(res), nil, nil
	})
	sdk.AddTool(s.srv, &sdk.Tool{
		Name: toolReadFile,
		Description: "Read a file of a running container sandbox. Text comes back as content, other bytes as content_base64. " +
			"Only the first max_bytes (default 64 KiB) are returned; truncated: true says the file is longer (read parts with sandbox_exec and head, tail or sed).",
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in ReadFileArgs) (*sdk.CallToolResult, any, error) {
		if r := needID(in.ContainerID); r != nil {
			return r, nil, nil
		}
		limit := in.MaxBytes
		switch {
		case limit < 0:
			return failure(api.CodeInvalidRequest, "max_bytes must be positive", nil), nil, nil
		case limit == 0:
			limit = maxReadDefault
		case limit > maxReadCeiling:
			limit = maxReadCeiling
		}
		w := &cappedWriter{max: int(limit)}
		if _, err := b.ReadFile(ctx, in.ContainerID, in.Path, w); err != nil && !errors.Is(err, errCapped) {
			return errorResult(err, hintContext{container: in.ContainerID}), nil, nil
		}
		data := w.buf.Bytes()
		if w.cut && !utf8.Valid(data) {
			// Text cut inside a character stays text.
			for k := 1; k <= 3 && k < len(data); k++ {
				if utf8.Valid(data[:len(data)-k]) {
					data = data[:len(data)-k]
					break
				}
			}
		}
		out := ReadFileResult{Path: in.Path, Bytes: int64(len(data)), Truncated: w.cut}
		text := ""
		if utf8.Valid(data) {
			out.Content = string(data)
			text = fmt.Sprintf("%s (%d bytes):\n%s", in.Path, len(data), out.Content)
		} else {
			out.ContentBase64 = base64.StdEncoding.EncodeToString(data)
			text = fmt.Sprintf("%s (%d bytes, binary, base64):\n%s", in.Path, len(data), out.ContentBase64)
		}
		if out.Truncated {
			text += fmt.Sprintf("\n(truncated after %d bytes: the file is longer)", len(data))
		}
		return success(text, out), nil, nil
	})
	sdk.AddTool(s.srv, &sdk.Tool{
		Name: toolWriteFile,
		Description: "Write a file in a running container sandbox as the sandbox user, creating parent directories and replacing an existing file. " +
			"Give content (text) or content_base64 (bytes); mode is octal such as 0755 for a script. Writable places are /workspace (when the sandbox has one), /tmp and what the image lets the sandbox user write.",
		Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in WriteFileArgs) (*sdk.CallToolResult, any, error) {
		if r := needID(in.ContainerID); r != nil {
			return r, nil, nil
		}
		if in.Content != "" && in.ContentBase64 != "" {
			return failure(api.CodeInvalidRequest, "give content or content_base64, not both", nil), nil, nil
		}
		data := []byte(in.Content)
		if in.ContentBase64 != "" {
			var err error
			if data, err = base64.StdEncoding.DecodeString(in.ContentBase64); err != nil {
				return failure(api.CodeInvalidRequest, "content_base64 is not valid standard base64: "+err.Error(), nil), nil, nil
			}
		}
		if len(data) > maxWriteContent {
			return failure(api.CodeTooLarge, fmt.Sprintf("content is larger than %d bytes: write it in parts, or have a command in the sandbox produce it", maxWriteContent), nil), nil, nil
		}
		mode, hint := parseMode(in.Mode)
		if hint != "" {
			return failure(api.CodeInvalidRequest, hint, map[string]string{"field": "mode"}), nil, nil
		}
		res, err := b.WriteFile(ctx, in.ContainerID, in.Path, bytes.NewReader(data), mode)
		if err != nil {
			return errorResult(err, hintContext{container: in.ContainerID}), nil, nil
		}
		return success(fmt.Sprintf("Wrote %d bytes to %s (mode %04o).", res.Size, res.Path, res.Mode), res), nil, nil
	})
	sdk.AddTool(s.srv, &sdk.Tool{
		Name:        toolListFiles,
		Description: "List a directory of a running container sandbox: each entry's name, size, permission bits (mode, decimal), is_dir, is_symlink and mtime.",
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true},
	}, func(ctx context.Context, _ *sdk.CallToolRequest, in PathArgs) (*sdk.CallToolResult, any, error) {
		if r := needID(in.ContainerID); r != nil {
			return r, nil, nil
		}
		list, err := b.ListFiles(ctx, in.ContainerID, in.Path)
		if err != nil {
			return errorResult(err, hintContext{container: in.ContainerID}), nil, nil
		}
		out := ListFilesResult{Path: list.Path, Entries: list.Entries}
		if out.Entries == nil {
			out.Entries = []api.FileEntry{}
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "%s: %d entries", orDefault(out.Path, in.Path), len(out.Entries))
		for _, e := range out.Entries {
			kind := "file"
			switch {
			case e.IsSymlink:
				kind = "symlink"
			case e.IsSpecial:
				kind = "special"
			case e.IsDir:
				kind = "dir"
			}
			fmt.Fprintf(&sb, "\n%s %04o %d %s", kind, e.Mode&0o7777, e.Size, e.Name)
		}
		return success(sb.String(), out), nil, nil
	})
}

// clipBase64 cuts base64 text so that it decodes to at most n bytes.
func clipBase64(s string, n int) (string, bool) {
	limit := (n / 3) * 4
	if len(s) <= limit {
		return s, false
	}
	return s[:limit], true
}

func writeStream(sb *strings.Builder, name, text, b64 string) {
	switch {
	case b64 != "":
		fmt.Fprintf(sb, "\n--- %s (binary, base64) ---\n%s", name, b64)
	case text != "":
		fmt.Fprintf(sb, "\n--- %s ---\n%s", name, text)
	}
}

// parseMode reads an octal mode such as "0644"; a non-empty hint says what is wrong.
func parseMode(s string) (uint32, string) {
	if s == "" {
		return 0, ""
	}
	var m uint32
	for _, c := range s {
		if c < '0' || c > '7' || m > 0o777 {
			return 0, fmt.Sprintf("mode %q must be octal permission bits such as 0644 or 0755", s)
		}
		m = m*8 + uint32(c-'0')
	}
	if m > 0o777 {
		return 0, fmt.Sprintf("mode %q must be at most 0777 (no setuid, setgid or sticky bits)", s)
	}
	return m, ""
}

// execToolResult is an exec's answer as sandbox_exec and agent_exec give it.
func execToolResult(res api.ExecResult) *sdk.CallToolResult {
	out := ExecResult{ExitCode: res.ExitCode, Signal: res.Signal, TimedOut: res.TimedOut, EndedBy: res.EndedBy,
		Truncated: res.Truncated, DurationMS: res.DurationMS, StdoutBase64: res.StdoutBase64, StderrBase64: res.StderrBase64}
	var cut1, cut2, cut3, cut4 bool
	out.Stdout, cut1 = clip(res.Stdout, maxExecOutput)
	out.Stderr, cut2 = clip(res.Stderr, maxExecOutput)
	out.StdoutBase64, cut3 = clipBase64(res.StdoutBase64, maxExecOutput)
	out.StderrBase64, cut4 = clipBase64(res.StderrBase64, maxExecOutput)
	out.Truncated = out.Truncated || cut1 || cut2 || cut3 || cut4
	var sb strings.Builder
	fmt.Fprintf(&sb, "exit_code %d (ended_by %s", out.ExitCode, out.EndedBy)
	if out.TimedOut {
		sb.WriteString(", timed out: retry with a larger timeout_ms or less work")
	}
	fmt.Fprintf(&sb, ", %d ms)", out.DurationMS)
	writeStream(&sb, "stdout", out.Stdout, out.StdoutBase64)
	writeStream(&sb, "stderr", out.Stderr, out.StderrBase64)
	if out.Truncated {
		sb.WriteString("\n(output was truncated: redirect it to a file and read parts with head, tail or sed)")
	}
	return success(sb.String(), out)
}
