package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"
)

// Error is the body of every error response of the clawbox API and of a sandbox's
// egress door: {"error": "...", "code": "...", "details": ...}.
//
// It is also a Go error. Inside the server a domain package returns one (usually with
// [Errorf]) to choose the stable code and the message a client may see; the server
// turns it into an HTTP status with [Status]. The Go client decodes it back, so callers
// can use errors.Is with the containerd errdefs classes (errdefs.ErrNotFound, …) or
// compare Code.
type Error struct {
	// Message is a human-readable description, safe to show to the caller.
	Message string `json:"error"`
	// Code is a stable machine-readable code from the catalogue below.
	Code string `json:"code"`
	// Details carries optional structured context (for example the offending field).
	Details any `json:"details,omitempty"`
}

// Error implements error.
func (e *Error) Error() string {
	if e.Code == "" {
		return e.Message
	}
	return e.Code + ": " + e.Message
}

// Is reports whether the error belongs to target's class, so that
// errors.Is(err, errdefs.ErrNotFound) holds for a "not_found" or "tool_not_found" error.
func (e *Error) Is(target error) bool {
	c, ok := catalogue[e.Code]
	if !ok {
		return false
	}
	return c.class == target
}

// Status returns the HTTP status of the error's code (500 for an unknown code).
func (e *Error) Status() int {
	if c, ok := catalogue[e.Code]; ok {
		return c.status
	}
	return http.StatusInternalServerError
}

// Errorf returns an *Error with the given code and a formatted message. The code must
// be one of the constants of this package.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Stable error codes. Each has exactly one HTTP status and one errdefs class.
const (
	CodeInvalidJSON         = "invalid_json"           // 400: the body is not valid JSON
	CodeInvalidRequest      = "invalid_request"        // 400: valid JSON of the wrong shape or value; details name the field
	CodeAuthRequired        = "auth_required"          // 401: missing or wrong bearer token on the main API
	CodeUnauthorized        = "unauthorized"           // 401: missing or wrong sandbox token at an egress door
	CodeNotFound            = "not_found"              // 404: unknown route or object
	CodeMethodNotAllowed    = "method_not_allowed"     // 405
	CodeConflict            = "conflict"               // 409: the object already exists
	CodeTooLarge            = "request_too_large"      // 413: request body over the limit
	CodeUnsupportedMedia    = "unsupported_media_type" // 415: body is not application/json
	CodeInternal            = "internal_error"         // 500: our own fault; details are in the server log
	CodeBusy                = "busy"                   // 503: concurrency queue full, see Retry-After
	CodeUnavailable         = "unavailable"            // 503: a backend (Docker, the credential store) is not available
	CodeImageNotAllowed     = "image_not_allowed"      // 403
	CodePolicyDenied        = "policy_denied"          // 403
	CodeImageNotFound       = "image_not_found"        // 400
	CodeResourceExhausted   = "resource_exhausted"     // 429: a capacity limit (max_containers) is reached
	CodeToolNotFound        = "tool_not_found"         // 404
	CodeTimeout             = "timeout"                // 408
	CodeOutputTooLarge      = "output_too_large"       // 413
	CodeToolFailed          = "tool_failed"            // 422
	CodeInvalidModule       = "invalid_module"         // 422: a tool's .wasm is not a module clawbox can load
	CodeModuleLimitExceeded = "module_limit_exceeded"  // 422: a tool's module is over a structural limit (details name it)
	CodeBlockedByPolicy     = "blocked_by_policy"      // 403
	CodeLeakDetected        = "leak_detected"          // 403
	CodePrivateAddress      = "private_address"        // 403
	CodeRateLimited         = "rate_limited"           // 429
	CodeUpstreamError       = "upstream_error"         // 502
	CodeUpstreamTimeout     = "upstream_timeout"       // 504
	CodeHostNotAllowed      = "host_not_allowed"       // 421: the Host header does not name this server (server.allowed_hosts)
	CodeOriginNotAllowed    = "origin_not_allowed"     // 403: a browser Origin that is not the server's own (server.allowed_origins)
	CodePermissionDenied    = "permission_denied"      // 403: the sandbox user may not do this (files)
	CodeQuotaExceeded       = "quota_exceeded"         // 507: the sandbox's workspace is full (containers.max_workspace_mb)
	CodeProxyAuthRequired   = "proxy_auth_required"    // 407: missing or wrong sandbox token on a forward or CONNECT request at an egress door
	CodeHostMismatch        = "host_mismatch"          // 421: a request inside a CONNECT tunnel names another host than the tunnel
	CodeProtocolUnsupported = "protocol_not_supported" // 400: a CONNECT tunnel that is not TLS or not HTTP, or an Upgrade no rule allows
)

type codeInfo struct {
	status int
	class  error
}

var catalogue = map[string]codeInfo{
	CodeInvalidJSON:         {http.StatusBadRequest, errdefs.ErrInvalidArgument},
	CodeInvalidRequest:      {http.StatusBadRequest, errdefs.ErrInvalidArgument},
	CodeAuthRequired:        {http.StatusUnauthorized, errdefs.ErrUnauthenticated},
	CodeUnauthorized:        {http.StatusUnauthorized, errdefs.ErrUnauthenticated},
	CodeNotFound:            {http.StatusNotFound, errdefs.ErrNotFound},
	CodeMethodNotAllowed:    {http.StatusMethodNotAllowed, errdefs.ErrNotImplemented},
	CodeConflict:            {http.StatusConflict, errdefs.ErrAlreadyExists},
	CodeTooLarge:            {http.StatusRequestEntityTooLarge, errdefs.ErrInvalidArgument},
	CodeUnsupportedMedia:    {http.StatusUnsupportedMediaType, errdefs.ErrInvalidArgument},
	CodeInternal:            {http.StatusInternalServerError, errdefs.ErrInternal},
	CodeBusy:                {http.StatusServiceUnavailable, errdefs.ErrUnavailable},
	CodeUnavailable:         {http.StatusServiceUnavailable, errdefs.ErrUnavailable},
	CodeImageNotAllowed:     {http.StatusForbidden, errdefs.ErrPermissionDenied},
	CodePolicyDenied:        {http.StatusForbidden, errdefs.ErrPermissionDenied},
	CodeImageNotFound:       {http.StatusBadRequest, errdefs.ErrNotFound},
	CodeResourceExhausted:   {http.StatusTooManyRequests, errdefs.ErrResourceExhausted},
	CodeToolNotFound:        {http.StatusNotFound, errdefs.ErrNotFound},
	CodeTimeout:             {http.StatusRequestTimeout, context.DeadlineExceeded},
	CodeOutputTooLarge:      {http.StatusRequestEntityTooLarge, errdefs.ErrResourceExhausted},
	CodeToolFailed:          {http.StatusUnprocessableEntity, errdefs.ErrFailedPrecondition},
	CodeInvalidModule:       {http.StatusUnprocessableEntity, errdefs.ErrInvalidArgument},
	CodeModuleLimitExceeded: {http.StatusUnprocessableEntity, errdefs.ErrInvalidArgument},
	CodeBlockedByPolicy:     {http.StatusForbidden, errdefs.ErrPermissionDenied},
	CodeLeakDetected:        {http.StatusForbidden, errdefs.ErrPermissionDenied},
	CodePrivateAddress:      {http.StatusForbidden, errdefs.ErrPermissionDenied},
	CodeRateLimited:         {http.StatusTooManyRequests, errdefs.ErrResourceExhausted},
	CodeUpstreamError:       {http.StatusBadGateway, errdefs.ErrUnavailable},
	CodeUpstreamTimeout:     {http.StatusGatewayTimeout, context.DeadlineExceeded},
	CodeHostNotAllowed:      {http.StatusMisdirectedRequest, errdefs.ErrPermissionDenied},
	CodeOriginNotAllowed:    {http.StatusForbidden, errdefs.ErrPermissionDenied},
	CodePermissionDenied:    {http.StatusForbidden, errdefs.ErrPermissionDenied},
	CodeQuotaExceeded:       {http.StatusInsufficientStorage, errdefs.ErrResourceExhausted},
	CodeProxyAuthRequired:   {http.StatusProxyAuthRequired, errdefs.ErrUnauthenticated},
	CodeHostMismatch:        {http.StatusMisdirectedRequest, errdefs.ErrPermissionDenied},
	CodeProtocolUnsupported: {http.StatusBadRequest, errdefs.ErrNotImplemented},
}

// Codes returns every stable error code (for documentation and tests).
func Codes() []string {
	out := make([]string, 0, len(catalogue))
	for c := range catalogue {
		out = append(out, c)
	}
	return out
}
