// Package toolexec is the policy around running WASM tools: which credentials a
// call may use and which egress policy applies (its manifest narrowed by the
// request), the tools' HTTP through the egress gateway, and, for the tool routes,
// an audit record, metrics and secret redaction for every execution. It joins
// internal/wasm (which runs modules and knows nothing of credentials or audit) to
// the gateway, the credential scanner and the audit log.
package toolexec

import (
	"context"
	"net/http"
	"slices"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/egress"
	"github.com/clawbox/clawbox/internal/wasm"
)

// Grants are the credentials a tool call may use: those its manifest makes
// available and, when the request names credentials, only those it requested.
func Grants(m *api.ToolManifest, caps *api.ExecuteCapabilities) []string {
	if m == nil || m.Credentials == nil {
		return nil
	}
	avail := m.Credentials.Available
	if caps == nil || caps.Credentials == nil {
		return avail
	}
	var out []string
	for _, c := range caps.Credentials {
		if slices.Contains(avail, c) {
			out = append(out, c)
		}
	}
	return out
}

// Policy is a tool's effective egress policy: its manifest's allowlist, narrowed
// by the request's when it gives one.
func Policy(m *api.ToolManifest, caps *api.ExecuteCapabilities) (*egress.Policy, error) {
	var allow []string
	if m != nil && m.Network != nil {
		allow = m.Network.Allowlist
	}
	var narrow []string
	if caps != nil && caps.Network != nil {
		narrow = caps.Network.Allowlist
		if narrow == nil {
			narrow = []string{}
		}
	}
	return egress.Effective(allow, narrow)
}

// HTTP sends the tools' http_request host calls through the egress pipeline with
// the tool's own policy and credentials: the engine's wasm.Config.HTTP.
type HTTP struct{ Gateway *egress.Gateway }

var _ wasm.HTTPDoer = HTTP{}

// Do sends one http_request host call.
func (t HTTP) Do(ctx context.Context, call wasm.CallInfo, req wasm.HTTPRequest) (wasm.HTTPResponse, error) {
	p, err := Policy(call.Manifest, call.Capabilities)
	if err != nil {
		return wasm.HTTPResponse{}, err
	}
	resp, err := t.Gateway.Do(ctx, egress.Call{
		Tool:      call.Tool,
		Policy:    p,
		Grants:    Grants(call.Manifest, call.Capabilities),
		RequestID: call.RequestID,
		Method:    req.Method,
		URL:       req.URL,
		Headers:   req.Headers, // as the tool wrote them: the gateway scans the raw names
		Body:      req.Body,
	})
	if err != nil {
		return wasm.HTTPResponse{}, err
	}
	out := wasm.HTTPResponse{Status: resp.Status, Headers: map[string]string{}, Body: resp.Body, Truncated: resp.Truncated}
	for k, vs := range resp.Header {
		if len(vs) > 0 {
			out.Headers[http.CanonicalHeaderKey(k)] = vs[0]
			for _, v := range vs[1:] {
				out.Headers[http.CanonicalHeaderKey(k)] += ", " + v
			}
		}
	}
	return out, nil
}
