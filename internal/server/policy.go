package server

import (
	"context"
	"net/http"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/egress"
)

// PolicySource finds the effective egress policy of a container sandbox, of a tool,
// or (both empty) of the server's container policy, with a label saying whose it is.
type PolicySource interface {
	EffectivePolicy(ctx context.Context, containerID, tool string) (p *egress.Policy, label string, err error)
}

// RegisterPolicy adds POST /policy/check.
func (s *Server) RegisterPolicy(src PolicySource) {
	s.Handle(Route{Method: http.MethodPost, Pattern: "/policy/check", Handler: func(w http.ResponseWriter, r *http.Request) error {
		var req api.PolicyCheckRequest
		if err := DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.ContainerID != "" && req.Tool != "" {
			return fieldError("tool", "name a container_id or a tool, not both")
		}
		if req.Tool != "" && req.Door != "" && req.Door != egress.DoorProxy {
			return fieldError("door", "a tool reaches the network only through the gateway's own requests: door \"proxy\"")
		}
		method := req.Method
		if method == "" {
			method = http.MethodGet
		}
		p, label, err := src.EffectivePolicy(r.Context(), req.ContainerID, req.Tool)
		if err != nil {
			return err
		}
		d, err := egress.ExplainDoor(p, req.Door, method, req.URL)
		if err != nil {
			return err
		}
		rules := p.Rules()
		if rules == nil {
			rules = []string{}
		}
		writeJSON(w, http.StatusOK, api.PolicyCheckResponse{
			Allowed: d.Allowed, Rule: d.Rule, Reason: d.Reason, Policy: label, Rules: rules,
			Door: d.Door, Tunnel: d.Tunnel,
		})
		return nil
	}, Doc: Doc{
		Summary: "Explain what the egress gateway would decide for a request, without sending it",
		Describe: "door picks the way the request would come (proxy, the default; forward; connect). For connect the " +
			"tunnel to the URL's host and port is decided first, and tunnel says whether it would be intercepted or passed through.",
		Tags:      []string{"egress"},
		Request:   api.PolicyCheckRequest{},
		Responses: []Response{{Status: 200, Body: api.PolicyCheckResponse{}}},
	}})
}
