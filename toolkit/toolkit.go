// Package toolkit is for writing clawbox WASM tools in Go. A tool is a small program
// built with GOOS=wasip1 GOARCH=wasm: it receives its params as JSON on stdin, writes
// its result as JSON on stdout, and reaches the outside world only through the
// clawbox host calls (Log, HTTPRequest), which go through the server's egress policy.
//
//	func main() {
//		toolkit.Run(func(ctx context.Context, params json.RawMessage) (any, error) {
//			return map[string]any{"echo": params}, nil
//		})
//	}
//
// Built as a command (go build), the tool runs once per process: the host calls
// _start. Built with -buildmode=c-shared, the same source becomes a reactor: the host
// runs the Go runtime's start-up (_initialize) once, keeps the state it leaves as
// the tool's snapshot, and starts each call on a new instance set to that state,
// where it invokes the exported clawbox_run function, which runs main and therefore
// Run once. `clawbox build` uses the reactor form. In a reactor, package init
// functions therefore run once per snapshot, not once per call: work done there
// (the toolkit itself runs its call path once there, to warm encoding/json) is not
// paid by each call, and a value computed there (a random seed, the time) is the
// same in every call of one snapshot.
//
// On other platforms Run reads os.Stdin and writes os.Stdout as well, Log writes to
// stderr and HTTPRequest returns ErrUnavailable, so a tool can be tried with go run.
//
// The host ABI (import module "clawbox"):
//
//	host_call(req_ptr, req_len, resp_ptr, resp_cap i32) i32
//	host_call_result(resp_ptr, resp_cap i32) i32
//
// The request is {"method": ..., "params": ...}; the reply is {"ok": ...} or
// {"error": "...", "code": "..."}. host_call returns the reply's length when it fits
// in resp_cap, -1 when a pointer or length is invalid, and -N (N >= 2) when the reply
// needs N bytes: the reply is then kept and host_call_result fetches it whole into a
// buffer of at least N bytes (returning N, or again -N if the buffer is still short).
package toolkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Handler handles one call: params is the raw JSON the caller sent (null when it
// sent none). Its result is written to stdout as JSON; an error fails the call (the
// caller sees tool_failed with the error text in the stderr tail). An error that
// carries a code (a *HostError or an *Error, wrapped or not) fails it with that code:
// the caller sees tool_failed with details.code and details.message.
type Handler func(ctx context.Context, params json.RawMessage) (any, error)

// Error is a tool error with a stable code, for a tool that fails for a reason its
// caller may act on. Code is lower snake case (for example "invalid_input").
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// codedError finds the code and message of a coded error in err's chain.
func codedError(err error) (code, message string, ok bool) {
	var he *HostError
	if errors.As(err, &he) && he.Code != "" {
		return he.Code, he.Message, true
	}
	var te *Error
	if errors.As(err, &te) && te.Code != "" {
		return te.Code, te.Message, true
	}
	return "", "", false
}

// writeFailure reports a failed call: the error text on stderr and, for a coded
// error, the failure record {"error": {"code", "message"}} on stdout, which the host
// reads when the tool exits non-zero (stdout is otherwise unused on failure).
func writeFailure(out, errw io.Writer, err error) {
	fmt.Fprintln(errw, err.Error())
	if code, msg, ok := codedError(err); ok {
		type failure struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		b, _ := json.Marshal(struct {
			Error failure `json:"error"`
		}{failure{code, msg}})
		out.Write(b)
	}
}

// ErrUnavailable is returned by host calls outside a clawbox WASM host.
var ErrUnavailable = errors.New("toolkit: clawbox host calls are only available in a wasip1 build")

// HostError is an error reply of a host call, such as a request blocked by policy.
type HostError struct {
	// Code is the stable error code when the host gave one (for example
	// "blocked_by_policy"), else empty.
	Code    string
	Message string
}

func (e *HostError) Error() string {
	if e.Code == "" {
		return "host call: " + e.Message
	}
	return "host call: " + e.Code + ": " + e.Message
}

// Run reads the params from stdin, calls h and writes its result to stdout as JSON.
// In a command build it returns when the call is done (so main should just return);
// a handler error is written to stderr and the process exits with status 1.
func Run(h Handler) {
	if code := serve(context.Background(), stdin(), stdout(), stderr(), h); code != 0 {
		exit(code)
	}
}

// RunTyped is Run with params decoded into P (the zero P when params are null or
// absent) and the result R encoded as JSON.
func RunTyped[P, R any](h func(ctx context.Context, params P) (R, error)) {
	Run(typed(h))
}

func typed[P, R any](h func(ctx context.Context, params P) (R, error)) Handler {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var p P
		if len(raw) > 0 && string(raw) != "null" {
			if err := json.Unmarshal(raw, &p); err != nil {
				return nil, fmt.Errorf("invalid params: %w", err)
			}
		}
		return h(ctx, p)
	}
}

// serve is one call: the testable core of Run. It returns the exit status.
func serve(ctx context.Context, in io.Reader, out, errw io.Writer, h Handler) int {
	raw, err := io.ReadAll(in)
	if err != nil {
		fmt.Fprintf(errw, "read params: %v\n", err)
		return 1
	}
	if len(raw) == 0 {
		raw = json.RawMessage("null")
	}
	if !json.Valid(raw) {
		fmt.Fprintln(errw, "params are not valid JSON")
		return 1
	}
	res, err := h(ctx, raw)
	if err != nil {
		writeFailure(out, errw, err)
		return 1
	}
	b, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintf(errw, "encode result: %v\n", err)
		return 1
	}
	if _, err := out.Write(b); err != nil {
		fmt.Fprintf(errw, "write result: %v\n", err)
		return 1
	}
	return 0
}

// Log sends one log entry to the host (it appears in the call's metadata.logs).
// Level is one of trace, debug, info, warn, error.
func Log(level, message string) error {
	_, err := call("log", map[string]string{"level": level, "message": message})
	return err
}

// Logf is Log at level info with a formatted message.
func Logf(format string, args ...any) error {
	return Log("info", fmt.Sprintf(format, args...))
}

// Request is an HTTP request made through the host (and its egress policy).
type Request struct {
	URL     string            `json:"url"`
	Method  string            `json:"method,omitempty"` // default GET
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

// Response is the host's answer to a Request. Redirects are not followed.
type Response struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	// Body is the response body; when it is not valid UTF-8 it is empty and
	// BodyBase64 holds it instead.
	Body       string `json:"body"`
	BodyBase64 string `json:"body_base64,omitempty"`
	// Truncated is true when the body was cut at the server's size limit.
	Truncated bool `json:"truncated"`
}

// HTTPRequest sends req through the host. A request the gateway refuses or cannot
// complete returns a *HostError with the gateway's code ("blocked_by_policy",
// "leak_detected", "rate_limited", "upstream_error", …). Returned from a Handler
// (wrapped or not), it fails the call with that code.
func HTTPRequest(ctx context.Context, req Request) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	raw, err := call("http_request", req)
	if err != nil {
		return nil, err
	}
	var resp Response
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("host call: decode http_request reply: %w", err)
	}
	return &resp, nil
}

// call performs one host call and returns the "ok" value.
func call(method string, params any) (json.RawMessage, error) {
	req, err := json.Marshal(struct {
		Method string `json:"method"`
		Params any    `json:"params"`
	}{method, params})
	if err != nil {
		return nil, err
	}
	reply, err := hostCall(req)
	if err != nil {
		return nil, err
	}
	return decodeReply(reply)
}

func decodeReply(reply []byte) (json.RawMessage, error) {
	var r struct {
		OK    json.RawMessage `json:"ok"`
		Error *string         `json:"error"`
		Code  string          `json:"code"`
	}
	if err := json.Unmarshal(reply, &r); err != nil {
		return nil, fmt.Errorf("host call: malformed reply: %w", err)
	}
	if r.Error != nil {
		return nil, &HostError{Code: r.Code, Message: *r.Error}
	}
	return r.OK, nil
}
