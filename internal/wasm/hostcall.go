package wasm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/clawbox/clawbox/api"
	"github.com/tetratelabs/wazero"
	wapi "github.com/tetratelabs/wazero/api"
)

// HTTPDoer performs a tool's http_request host call: the egress gateway with the
// tool's policy. An *api.Error it returns reaches the guest as {"error", "code"}; any
// other error is logged and the guest gets a generic message.
type HTTPDoer interface {
	Do(ctx context.Context, call CallInfo, req HTTPRequest) (HTTPResponse, error)
}

// CallInfo identifies the call a host request belongs to.
type CallInfo struct {
	Tool      string
	RequestID string
	// Manifest is the tool's effective manifest (never nil: a tool without one gets
	// a deny-all default).
	Manifest *api.ToolManifest
	// Capabilities are what the request asked for (nil when it asked nothing); they
	// may only narrow the manifest.
	Capabilities *api.ExecuteCapabilities
}

// HTTPRequest is a guest's http_request.
type HTTPRequest struct {
	URL     string
	Method  string // upper case, default GET
	Headers map[string]string
	Body    []byte
}

// HTTPResponse is the answer to an HTTPRequest.
type HTTPResponse struct {
	Status    int
	Headers   map[string]string
	Body      []byte
	Truncated bool // the body was cut at the gateway's size limit
}

// ctxKey carries the *callState of the call running in a guest.
type ctxKey struct{}

// callState is one call's host-side state. Only the goroutine running the call
// touches it.
type callState struct {
	info      CallInfo
	http      HTTPDoer
	logger    *slog.Logger
	maxCalls  int
	maxReq    int
	maxLogs   int
	maxLogLen int

	calls       int
	logs        []api.LogEntry
	logBytes    int
	logsDropped int
	pending     []byte // a reply that did not fit the guest's buffer
}

// hostModuleName is the import module of the clawbox host ABI.
const hostModuleName = "clawbox"

// instantiateHostModule adds the "clawbox" host module to r.
func instantiateHostModule(ctx context.Context, r wazero.Runtime) error {
	i32 := wapi.ValueTypeI32
	_, err := r.NewHostModuleBuilder(hostModuleName).
		NewFunctionBuilder().
		WithGoModuleFunction(wapi.GoModuleFunc(hostCall), []wapi.ValueType{i32, i32, i32, i32}, []wapi.ValueType{i32}).
		WithParameterNames("req_ptr", "req_len", "resp_ptr", "resp_cap").
		Export("host_call").
		NewFunctionBuilder().
		WithGoModuleFunction(wapi.GoModuleFunc(hostCallResult), []wapi.ValueType{i32, i32}, []wapi.ValueType{i32}).
		WithParameterNames("resp_ptr", "resp_cap").
		Export("host_call_result").
		Instantiate(ctx)
	return err
}

// hostFuncs lists the functions of the host module, to check a tool's imports.
var hostFuncs = map[string]bool{"host_call": true, "host_call_result": true}

const hostCallFault = -1

func setResult(stack []uint64, v int32) { stack[0] = wapi.EncodeI32(v) }

// hostCall implements clawbox.host_call. Pointers and lengths come from the guest and
// are never trusted: any region outside its memory gives -1.
func hostCall(ctx context.Context, mod wapi.Module, stack []uint64) {
	reqPtr, reqLen := wapi.DecodeU32(stack[0]), wapi.DecodeU32(stack[1])
	respPtr, respCap := wapi.DecodeU32(stack[2]), wapi.DecodeU32(stack[3])
	st, _ := ctx.Value(ctxKey{}).(*callState)
	if st != nil {
		st.calls++ // every call counts, malformed ones included
	}
	mem := mod.Memory()
	if mem == nil {
		setResult(stack, hostCallFault)
		return
	}
	req, ok := mem.Read(reqPtr, reqLen)
	if !ok {
		setResult(stack, hostCallFault)
		return
	}
	if _, ok := mem.Read(respPtr, respCap); !ok {
		setResult(stack, hostCallFault)
		return
	}
	reply := st.dispatch(ctx, req)
	// Re-read the memory: nothing in dispatch runs guest code, but stay defensive.
	mem = mod.Memory()
	setResult(stack, deliver(st, mem, reply, respPtr, respCap))
}

// hostCallResult implements clawbox.host_call_result: fetch a reply that did not fit.
func hostCallResult(ctx context.Context, mod wapi.Module, stack []uint64) {
	respPtr, respCap := wapi.DecodeU32(stack[0]), wapi.DecodeU32(stack[1])
	st, _ := ctx.Value(ctxKey{}).(*callState)
	mem := mod.Memory()
	if st == nil || st.pending == nil || mem == nil {
		setResult(stack, hostCallFault)
		return
	}
	if _, ok := mem.Read(respPtr, respCap); !ok {
		setResult(stack, hostCallFault)
		return
	}
	setResult(stack, deliver(st, mem, st.pending, respPtr, respCap))
}

// deliver writes reply at ptr if it fits in capacity and returns its length, or keeps
// it pending and returns minus its length.
func deliver(st *callState, mem wapi.Memory, reply []byte, ptr, capacity uint32) int32 {
	if len(reply) > math.MaxInt32 {
		return hostCallFault
	}
	if uint64(len(reply)) > uint64(capacity) {
		if st != nil {
			st.pending = reply
		}
		return -int32(len(reply))
	}
	if !mem.Write(ptr, reply) {
		return hostCallFault
	}
	if st != nil {
		st.pending = nil
	}
	return int32(len(reply))
}

// hostRequest is the envelope of a host_call request.
type hostRequest struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// parseHostRequest decodes a host_call request envelope.
func parseHostRequest(b []byte) (hostRequest, error) {
	var r hostRequest
	if err := json.Unmarshal(b, &r); err != nil {
		return r, errors.New("invalid host_call request: not a JSON object with a method")
	}
	if r.Method == "" {
		return r, errors.New("invalid host_call request: missing method")
	}
	return r, nil
}

// dispatch handles one request, already counted in st.calls, and returns the reply.
// st is nil outside a call (a reactor's _initialize).
func (st *callState) dispatch(ctx context.Context, req []byte) []byte {
	if st == nil {
		return errorReply("", "host calls are not available during initialisation")
	}
	if st.calls > st.maxCalls {
		return errorReply(api.CodeResourceExhausted, fmt.Sprintf("host_call limit exceeded (max %d)", st.maxCalls))
	}
	if len(req) > st.maxReq {
		return errorReply(api.CodeTooLarge, fmt.Sprintf("host_call request too large (max %d bytes)", st.maxReq))
	}
	r, err := parseHostRequest(req)
	if err != nil {
		return errorReply(api.CodeInvalidRequest, err.Error())
	}
	switch r.Method {
	case "log":
		return st.log(r.Params)
	case "http_request":
		return st.httpRequest(ctx, r.Params)
	default:
		return errorReply(api.CodeInvalidRequest, "unknown host call method: "+truncate(r.Method, 64))
	}
}

var logLevels = map[string]bool{"trace": true, "debug": true, "info": true, "warn": true, "error": true}

func (st *callState) log(params json.RawMessage) []byte {
	var p struct {
		Level   string `json:"level"`
		Message string `json:"message"`
	}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &p); err != nil {
			return errorReply(api.CodeInvalidRequest, "log: params must be {level, message} strings")
		}
	}
	level := strings.ToLower(p.Level)
	if level == "warning" {
		level = "warn"
	}
	if !logLevels[level] {
		level = "info"
	}
	if len(st.logs) >= st.maxLogs || st.logBytes+len(p.Message) > st.maxLogLen {
		st.logsDropped++
		return okReply(nil)
	}
	st.logBytes += len(p.Message)
	st.logs = append(st.logs, api.LogEntry{Level: level, Message: p.Message})
	return okReply(nil)
}

// finalLogs returns the kept logs, with a note when some were dropped.
func (st *callState) finalLogs() []api.LogEntry {
	logs := st.logs
	if logs == nil {
		logs = []api.LogEntry{}
	}
	if st.logsDropped > 0 {
		logs = append(logs, api.LogEntry{Level: "warn", Message: fmt.Sprintf("log limit reached: %d entries dropped", st.logsDropped)})
	}
	return logs
}

// httpRequestParams are the params of an http_request host call.
type httpRequestParams struct {
	URL        string            `json:"url"`
	Method     string            `json:"method"`
	Headers    map[string]string `json:"headers"`
	Body       *string           `json:"body"`
	BodyBase64 *string           `json:"body_base64"`
}

func parseHTTPRequest(params json.RawMessage) (HTTPRequest, error) {
	var p httpRequestParams
	if err := json.Unmarshal(params, &p); err != nil {
		return HTTPRequest{}, errors.New("http_request: params must be {url, method?, headers? (strings), body? (string) | body_base64?}")
	}
	if p.URL == "" {
		return HTTPRequest{}, errors.New("missing 'url' parameter")
	}
	req := HTTPRequest{URL: p.URL, Method: strings.ToUpper(p.Method), Headers: p.Headers}
	if req.Method == "" {
		req.Method = "GET"
	}
	switch {
	case p.Body != nil && p.BodyBase64 != nil:
		return HTTPRequest{}, errors.New("http_request: give body or body_base64, not both")
	case p.Body != nil:
		req.Body = []byte(*p.Body)
	case p.BodyBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*p.BodyBase64)
		if err != nil {
			return HTTPRequest{}, errors.New("http_request: body_base64 is not valid base64")
		}
		req.Body = b
	}
	return req, nil
}

func (st *callState) httpRequest(ctx context.Context, params json.RawMessage) []byte {
	req, err := parseHTTPRequest(params)
	if err != nil {
		return errorReply(api.CodeInvalidRequest, err.Error())
	}
	if st.http == nil {
		return errorReply(api.CodeUnavailable, "network is not available to tools on this server")
	}
	resp, err := st.http.Do(ctx, st.info, req)
	if err != nil {
		if ae, ok := api.AsError(err); ok {
			return errorReply(ae.Code, ae.Message)
		}
		if ctx.Err() != nil {
			return errorReply(api.CodeTimeout, "the call's deadline passed")
		}
		st.logger.Warn("wasm: http_request failed", "tool", st.info.Tool, "request_id", st.info.RequestID, "err", err)
		return errorReply(api.CodeUpstreamError, "http request failed")
	}
	out := struct {
		Status     int               `json:"status"`
		Headers    map[string]string `json:"headers"`
		Body       string            `json:"body"`
		BodyBase64 string            `json:"body_base64,omitempty"`
		Truncated  bool              `json:"truncated"`
	}{Status: resp.Status, Headers: resp.Headers, Truncated: resp.Truncated}
	if out.Headers == nil {
		out.Headers = map[string]string{}
	}
	if utf8.Valid(resp.Body) {
		out.Body = string(resp.Body)
	} else {
		out.BodyBase64 = base64.StdEncoding.EncodeToString(resp.Body)
	}
	return okReply(out)
}

func okReply(v any) []byte {
	b, err := json.Marshal(struct {
		OK any `json:"ok"`
	}{v})
	if err != nil {
		return errorReply(api.CodeInternal, "serialization failed")
	}
	return b
}

func errorReply(code, msg string) []byte {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
		Code  string `json:"code,omitempty"`
	}{msg, code})
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
