package server

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/clawbox/clawbox/api"
)

// Agents is what the agent routes need (internal/agents implements it).
type Agents interface {
	Create(ctx context.Context, cfg api.AgentConfig) (api.AgentInfo, error)
	List(ctx context.Context) ([]api.AgentInfo, error)
	Get(ctx context.Context, id string) (api.AgentInfo, error)
	Start(ctx context.Context, id string) (api.AgentInfo, error)
	Stop(ctx context.Context, id string) (api.AgentInfo, error)
	Pause(ctx context.Context, id string) (api.AgentInfo, error)
	Resume(ctx context.Context, id string) (api.AgentInfo, error)
	// Remove deletes the agent (and with workspace its workspace).
	Remove(ctx context.Context, id string, workspace bool) error
	// Sandbox returns the running sandbox that an exec (exec true) or a file
	// call through the agent goes to: 404 unknown agent, 409 not running.
	Sandbox(ctx context.Context, id string, exec bool) (string, error)
}

// RegisterAgents adds the agent routes. Call it after RegisterContainers: the
// exec and file routes of an agent are those of its current sandbox.
func (s *Server) RegisterAgents(ag Agents) {
	tags := []string{"agents"}
	idDoc := "404 not_found for an unknown agent; 409 conflict when the agent is not in a status that allows it."
	s.Handle(Route{Method: http.MethodPost, Pattern: "/agents", Handler: func(w http.ResponseWriter, r *http.Request) error {
		var cfg api.AgentConfig
		if err := DecodeJSON(r, &cfg); err != nil {
			return err
		}
		info, err := ag.Create(r.Context(), cfg)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, info)
		return nil
	}, Doc: Doc{
		Summary: "Register an agent: a named, long-lived sandbox (status idle)",
		Describe: "agent_id is 1 to 64 ASCII letters, digits and '-' (400 invalid_request otherwise); an existing id is " +
			"409 conflict. The configuration is checked against the server's policy exactly as a spawn is (image, policy, " +
			"env, credentials, network narrowing, resources): 403 image_not_allowed or policy_denied, 400 invalid_request.",
		Tags:      tags,
		Request:   api.AgentConfig{},
		Responses: []Response{{Status: 201, Body: api.AgentInfo{}}},
	}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/agents", Handler: func(w http.ResponseWriter, r *http.Request) error {
		list, err := ag.List(r.Context())
		if err != nil {
			return err
		}
		if list == nil {
			list = []api.AgentInfo{}
		}
		writeJSON(w, http.StatusOK, api.AgentList(list))
		return nil
	}, Doc: Doc{Summary: "List the agents (a JSON array, oldest first)", Tags: tags,
		Responses: []Response{{Status: 200, Body: api.AgentList{}}}}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/agents/{id}", Handler: func(w http.ResponseWriter, r *http.Request) error {
		info, err := ag.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, info)
		return nil
	}, Doc: Doc{Summary: "Get one agent", Describe: "404 not_found for an unknown agent.", Tags: tags,
		Responses: []Response{{Status: 200, Body: api.AgentInfo{}}}}})
	s.Handle(Route{Method: http.MethodDelete, Pattern: "/agents/{id}", Handler: func(w http.ResponseWriter, r *http.Request) error {
		ws, err := boolQuery(r, "workspace", false)
		if err != nil {
			return err
		}
		if err := ag.Remove(r.Context(), r.PathValue("id"), ws); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}, Doc: Doc{
		Summary:  "Remove an agent, ending its sandbox",
		Describe: "The workspace is kept on the host unless workspace=true. 404 not_found for an unknown agent.",
		Tags:     tags,
		Query: []Param{{Name: "workspace", Type: "boolean",
			Describe: "also delete the agent's workspace (default false: it is kept)"}},
		Responses: []Response{{Status: 204, Describe: "removed"}},
	}})
	for _, op := range []struct {
		name, summary string
		fn            func(context.Context, string) (api.AgentInfo, error)
	}{
		{"start", "Start an idle, failed or terminated agent (its sandbox is spawned like POST /containers/spawn)", func(ctx context.Context, id string) (api.AgentInfo, error) { return ag.Start(ctx, id) }},
		{"stop", "Stop a running, paused or restarting agent (status idle)", func(ctx context.Context, id string) (api.AgentInfo, error) { return ag.Stop(ctx, id) }},
		{"pause", "Pause a running agent: its processes freeze, its lifetime clock stops", func(ctx context.Context, id string) (api.AgentInfo, error) { return ag.Pause(ctx, id) }},
		{"resume", "Resume a paused agent", func(ctx context.Context, id string) (api.AgentInfo, error) { return ag.Resume(ctx, id) }},
	} {
		s.Handle(Route{Method: http.MethodPost, Pattern: "/agents/{id}/" + op.name, Handler: func(w http.ResponseWriter, r *http.Request) error {
			info, err := op.fn(r.Context(), r.PathValue("id"))
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, info)
			return nil
		}, Doc: Doc{Summary: op.summary, Describe: idDoc, Tags: tags,
			Responses: []Response{{Status: 200, Body: api.AgentInfo{}}}}})
	}
	s.registerAgentSandboxRoutes(ag)
}

// registerAgentSandboxRoutes serves an agent's exec and file routes with the
// container routes' own handlers, on the agent's current sandbox.
func (s *Server) registerAgentSandboxRoutes(ag Agents) {
	for _, p := range []struct {
		method, from, to string
		exec             bool
	}{
		{http.MethodPost, "/containers/{id}/exec", "/agents/{id}/exec", true},
		{http.MethodPut, "/containers/{id}/files", "/agents/{id}/files", false},
		{http.MethodGet, "/containers/{id}/files", "/agents/{id}/files", false},
		{http.MethodDelete, "/containers/{id}/files", "/agents/{id}/files", false},
	} {
		s.mu.Lock()
		var inner Route
		found := false
		if pr := s.patterns[p.from]; pr != nil {
			inner, found = pr.methods[p.method]
		}
		s.mu.Unlock()
		if !found {
			continue
		}
		rt := inner
		rt.Pattern = p.to
		rt.Doc.Tags = []string{"agents"}
		rt.Doc.Summary = inner.Doc.Summary + ", through an agent (its current sandbox)"
		rt.Doc.Describe = "As " + p.method + " " + p.from + " on the agent's current sandbox; 404 not_found for an " +
			"unknown agent, 409 conflict when it is not running (paused: resume it first). " + inner.Doc.Describe
		exec, h := p.exec, inner.Handler
		rt.Handler = func(w http.ResponseWriter, r *http.Request) error {
			if exec {
				// The body is judged before the agent is looked up, as on
				// /containers/{id}/exec: a malformed body is 400 for any id.
				var buf bytes.Buffer
				body := r.Body
				if body != nil {
					r.Body = io.NopCloser(io.TeeReader(body, &buf))
				}
				var req api.ExecRequest
				if err := DecodeJSON(r, &req); err != nil {
					return err
				}
				r.Body = io.NopCloser(&buf)
			}
			cid, err := ag.Sandbox(r.Context(), r.PathValue("id"), exec)
			if err != nil {
				return err
			}
			r.SetPathValue("id", cid)
			return h(w, r)
		}
		s.Handle(rt)
	}
}
