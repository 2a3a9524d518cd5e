package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawbox/clawbox/api"
)

// ErrorResult is the structured content of a failed tool call.
type ErrorResult struct {
	// Code is the clawbox API's stable error code (or "unreachable").
	Code string `json:"code"`
	// Error is the server's message.
	Error string `json:"error"`
	// Next says what to do about it.
	Next string `json:"next,omitempty"`
	// Details are the API error's details, if any.
	Details any `json:"details,omitempty"`
}

// codeUnreachable is the code of a result when the clawbox server did not answer.
const codeUnreachable = "unreachable"

// hintContext is what the failed call was about, for a precise hint.
type hintContext struct {
	tool      string // a WASM tool call
	image     string // a spawn
	container string // a call about one sandbox
}

// success is a tool result with a short text and a structured value.
func success(text string, v any) *sdk.CallToolResult {
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: text}}, StructuredContent: v}
}

// failure is an error result with the code and message chosen here.
func failure(code, msg string, details any) *sdk.CallToolResult {
	return resultFor(ErrorResult{Code: code, Error: msg, Details: details})
}

func resultFor(e ErrorResult) *sdk.CallToolResult {
	text := fmt.Sprintf("Error (%s): %s", e.Code, e.Error)
	if e.Next != "" {
		text += "\nNext: " + e.Next
	}
	if e.Details != nil {
		if b, err := json.Marshal(e.Details); err == nil && string(b) != "null" {
			text += "\nDetails: " + string(b)
		}
	}
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: text}}, StructuredContent: e, IsError: true}
}

// errorResult turns an error from the backend into a tool result that tells the
// model what happened and what to do next.
func errorResult(err error, hc hintContext) *sdk.CallToolResult {
	return resultFor(describe(err, hc))
}

// describe classifies err by its API code; the message is the server's, which is
// chosen to be safe to show.
func describe(err error, hc hintContext) ErrorResult {
	ae, ok := api.AsError(err)
	if !ok {
		switch {
		case errors.Is(err, context.Canceled):
			return ErrorResult{Code: "canceled", Error: "the call was canceled"}
		case errors.Is(err, context.DeadlineExceeded):
			return ErrorResult{Code: api.CodeTimeout, Error: "the call did not finish in time", Next: "retry; if it keeps timing out, check the clawbox server's load (clawbox status)"}
		default:
			// Transport failures from the Go client (client.ErrUnreachable) and
			// anything else: the text is the client's, which names the server.
			return ErrorResult{Code: codeUnreachable, Error: err.Error(),
				Next: "the clawbox server did not answer: ask the user to start it (clawbox serve) and check `clawbox status`; then retry"}
		}
	}
	r := ErrorResult{Code: ae.Code, Error: ae.Message, Details: ae.Details}
	switch ae.Code {
	case api.CodeToolNotFound:
		r.Next = fmt.Sprintf("tool %q is not loaded on the clawbox server (it may have been removed): list the tools again (tools/list) and use one that exists", hc.tool)
	case api.CodeImageNotFound:
		img := orDefault(hc.image, "the server's containers.default_image")
		r.Next = fmt.Sprintf("image %s is not on the Docker host and clawbox never pulls implicitly: ask the user to run `clawbox image pull %s` (or use an image that is present), then spawn again", img, orDefault(hc.image, "IMAGE"))
	case api.CodeImageNotAllowed:
		r.Next = "the image is outside containers.allowed_images of the server's config: use an allowed image (for example one under clawbox/), or ask the user to add it to containers.allowed_images"
	case api.CodePolicyDenied:
		r.Next = "the request asks for more than the server's [container_policy] grants (network allowlist, credentials in allowed_credentials): ask for less, or ask the user to change the policy; `clawbox policy check URL` shows which rule decides"
	case api.CodeBlockedByPolicy, api.CodePrivateAddress:
		r.Next = "the egress gateway refused the destination under the network allowlist (a rule starting with ! denies and wins; loopback and private addresses are always refused): use an allowed URL; `clawbox policy check URL` shows which rule decides"
	case api.CodeLeakDetected:
		r.Next = "the request carried what looks like a secret and was blocked: never put credentials in requests; the gateway injects configured credentials itself"
	case api.CodeInvalidRequest, api.CodeInvalidJSON:
		r.Next = "fix the arguments (details name the field, if any) and call again"
		if hc.tool != "" {
			r.Next = "fix the arguments to match the tool's input schema (details name the field, if any) and call again"
		}
	case api.CodeToolFailed:
		r.Next = "the tool ran and failed (the message has its exit status and stderr): check the arguments against its input schema and retry with corrected input"
	case api.CodeTimeout:
		r.Next = "the call hit its time limit: retry with less work per call"
	case api.CodeOutputTooLarge:
		r.Next = "the output exceeded the server's limit: ask for less output (narrower input, pagination) and retry"
	case api.CodeNotFound:
		if hc.container != "" {
			r.Next = fmt.Sprintf("there is no sandbox %q (finished records expire): call sandbox_list to see the current ids", hc.container)
		}
	case api.CodeConflict:
		if hc.container != "" {
			r.Next = fmt.Sprintf("sandbox %s is not running (commands and files need a running sandbox): check it with sandbox_logs, or start a new one with sandbox_spawn", hc.container)
		}
	case api.CodePermissionDenied:
		r.Next = "the sandbox user may not touch that path: use /workspace (when the sandbox has one) or /tmp, or a path the image makes writable"
	case api.CodeQuotaExceeded:
		r.Next = "the sandbox's workspace is full: delete files you no longer need (sandbox_exec with rm) and retry"
	case api.CodeTooLarge:
		r.Next = "the file is over the server's containers.max_file_bytes: write it in parts, or produce it inside the sandbox with sandbox_exec"
	case api.CodeUnavailable:
		if hc.container != "" && strings.Contains(strings.ToLower(ae.Message), "supervisor") {
			r.Next = "the sandbox's supervisor is not answering (the workload may have killed it): check the sandbox with sandbox_logs; spawn a new one if it has ended"
			break
		}
		r.Next = "a backend of the clawbox server is unavailable (for container tools: Docker); WASM tools still work. Ask the user to check `clawbox status`"
	case api.CodeBusy, api.CodeRateLimited:
		r.Next = "the server is busy: wait a little and retry"
	case api.CodeResourceExhausted:
		r.Next = "a capacity limit was reached (such as containers.max_containers): kill sandboxes you no longer need (sandbox_list, sandbox_kill) and retry"
	case api.CodeAuthRequired:
		r.Next = "the MCP bridge's API token is wrong: ask the user to check CLAWBOX_AUTH_TOKEN or --token of `clawbox mcp` (the token is in ~/.clawbox/token)"
	case api.CodeInternal:
		r.Next = "the clawbox server failed internally (its log has the details under the request id); retry once, then report it to the user"
	}
	return r
}

// checkRequired answers a call of a listed tool that lacks required arguments with
// clawbox's own hint (which are missing, and an example call) instead of the SDK's
// raw schema-validation error or a round trip to the server. It reads the tool's
// input schema from the tool list the client sees, so sandbox and WASM tools are
// checked alike. It returns nil when the call may go on.
func (s *Server) checkRequired(ctx context.Context, next sdk.MethodHandler, r *sdk.CallToolRequest) *sdk.CallToolResult {
	schema, ok := listedSchema(ctx, next, r)
	if !ok || len(schema.Required) == 0 {
		return nil
	}
	var args map[string]json.RawMessage
	if raw := bytes.TrimSpace(r.Params.Arguments); len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil // not an object: the schema validation says so
		}
	}
	var missing []string
	for _, name := range schema.Required {
		if _, ok := args[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	example := map[string]any{}
	for _, name := range schema.Required {
		if v, ok := args[name]; ok {
			example[name] = v
			continue
		}
		example[name] = exampleValue(name, schema.Properties[name])
	}
	call, _ := json.Marshal(map[string]any{"name": r.Params.Name, "arguments": example})
	plural := "argument"
	if len(missing) > 1 {
		plural = "arguments"
	}
	return resultFor(ErrorResult{
		Code:    api.CodeInvalidRequest,
		Error:   fmt.Sprintf("%s: missing required %s %s", r.Params.Name, plural, strings.Join(quoteAll(missing), ", ")),
		Next:    "call again with every required argument (see the tool's input schema in tools/list), for example: " + string(call),
		Details: map[string]any{"missing": missing, "example": json.RawMessage(call)},
	})
}

// toolSchema is the part of a JSON Schema the required-argument hint reads.
type toolSchema struct {
	Required   []string                   `json:"required"`
	Properties map[string]json.RawMessage `json:"properties"`
}

// listedSchema returns the input schema of the called tool as tools/list shows it.
func listedSchema(ctx context.Context, next sdk.MethodHandler, r *sdk.CallToolRequest) (toolSchema, bool) {
	var cursor string
	for range 100 { // pages; bounded
		res, err := next(ctx, "tools/list", &sdk.ListToolsRequest{Session: r.Session, Params: &sdk.ListToolsParams{Cursor: cursor}})
		if err != nil {
			return toolSchema{}, false
		}
		lr, ok := res.(*sdk.ListToolsResult)
		if !ok {
			return toolSchema{}, false
		}
		for _, t := range lr.Tools {
			if t.Name != r.Params.Name {
				continue
			}
			b, err := json.Marshal(t.InputSchema)
			var ts toolSchema
			if err != nil || json.Unmarshal(b, &ts) != nil {
				return toolSchema{}, false
			}
			return ts, true
		}
		if lr.NextCursor == "" {
			break
		}
		cursor = lr.NextCursor
	}
	return toolSchema{}, false
}

// exampleValue is a placeholder for a required property, from its schema: the
// first of its examples or enum, its default, or a value of its type.
func exampleValue(name string, raw json.RawMessage) any {
	var p struct {
		Type     any               `json:"type"`
		Enum     []json.RawMessage `json:"enum"`
		Examples []json.RawMessage `json:"examples"`
		Default  json.RawMessage   `json:"default"`
	}
	_ = json.Unmarshal(raw, &p)
	switch {
	case len(p.Examples) > 0:
		return p.Examples[0]
	case len(p.Enum) > 0:
		return p.Enum[0]
	case len(p.Default) > 0:
		return p.Default
	}
	typ, _ := p.Type.(string)
	if ts, ok := p.Type.([]any); ok && len(ts) > 0 {
		typ, _ = ts[0].(string)
	}
	switch typ {
	case "integer", "number":
		return 1
	case "boolean":
		return true
	case "array":
		return []any{}
	case "object":
		return map[string]any{}
	default:
		return "<" + name + ">"
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
