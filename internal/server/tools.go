package server

import (
	"context"
	"net/http"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/wasm"
)

// Tools is what the tool routes need. Execute returns output already redacted.
type Tools interface {
	List() []api.ToolInfo
	Get(name string) (api.ToolInfo, bool)
	Status(ctx context.Context, name string) (api.ToolStatus, error)
	Register(ctx context.Context, m *api.ToolManifest) (created bool, err error)
	Reload(ctx context.Context) (api.ToolReloadResponse, error)
	Execute(ctx context.Context, req api.ExecuteRequest, requestID string) (*api.ExecuteResponse, error)
}

// RegisterTools adds POST /execute and the /tools routes.
func (s *Server) RegisterTools(t Tools) {
	s.Handle(Route{Method: http.MethodPost, Pattern: "/execute", Limited: true, Handler: func(w http.ResponseWriter, r *http.Request) error {
		var req api.ExecuteRequest
		if err := DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.Tool == "" {
			return fieldError("tool", "tool is required")
		}
		// The tool's next instance is prepared once the answer is sent, not while
		// it is being written.
		ctx, after := wasm.DeferWork(r.Context())
		defer after()
		resp, err := t.Execute(ctx, req, RequestID(r.Context()))
		if err != nil {
			return err
		}
		writeJSONNow(w, http.StatusOK, resp)
		return nil
	}, Doc: Doc{
		Summary: "Execute a WASM tool",
		Describe: "Runs the tool in a fresh wazero instance with its manifest's limits: 404 tool_not_found, 408 timeout, " +
			"413 output_too_large, 422 tool_failed (exit code or trap, stderr tail; details.code and details.message when the tool reported a code, such as the gateway's blocked_by_policy for a refused request), 503 busy when the execution queue is full. " +
			"Output is redacted of known secrets. metadata.fuel_consumed is always 0: wazero has no fuel; wall time and memory are the limits.",
		Tags:      []string{"tools"},
		Request:   api.ExecuteRequest{},
		Responses: []Response{{Status: 200, Body: api.ExecuteResponse{}}},
	}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/tools", Handler: func(w http.ResponseWriter, r *http.Request) error {
		list := t.List()
		if list == nil {
			list = []api.ToolInfo{}
		}
		writeJSON(w, http.StatusOK, list)
		return nil
	}, Doc: Doc{
		Summary:   "List the loaded tools with their manifests",
		Tags:      []string{"tools"},
		Responses: []Response{{Status: 200, Body: api.ToolInfo{}, Describe: "an array of ToolInfo"}},
	}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/tools/{name}", Handler: func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		if err := wasm.ValidateName(name); err != nil {
			return api.Errorf(api.CodeToolNotFound, "tool %q not found", name)
		}
		info, ok := t.Get(name)
		if !ok {
			return api.Errorf(api.CodeToolNotFound, "tool %q not found", name)
		}
		writeJSON(w, http.StatusOK, info)
		return nil
	}, Doc: Doc{
		Summary:   "One tool and its manifest",
		Tags:      []string{"tools"},
		Responses: []Response{{Status: 200, Body: api.ToolInfo{}}},
	}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/tools/{name}/status", Handler: func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		if err := wasm.ValidateName(name); err != nil {
			return fieldError("name", "invalid tool name: must be 1-64 chars, [a-zA-Z0-9_-] only")
		}
		st, err := t.Status(r.Context(), name)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, st)
		return nil
	}, Doc: Doc{
		Summary: "Whether the module now in the tool directory is loaded, or why not",
		Describe: "Answers at once, also for a tool that is not loaded: loading (the initial load, a reload running or a change seen and not yet reloaded), " +
			"watching (sandbox.watch_tools), file_sha256 (the digest of <name>.wasm in the tool directory), sha256 (of the loaded module) and load_error " +
			"(the last failure to load the tool, with the digest of the module that failed). clawbox build polls it until the module it installed is loaded or failed.",
		Tags:      []string{"tools"},
		Responses: []Response{{Status: 200, Body: api.ToolStatus{}}},
	}})
	s.Handle(Route{Method: http.MethodPost, Pattern: "/tools/register", Handler: func(w http.ResponseWriter, r *http.Request) error {
		var m api.ToolManifest
		if err := DecodeJSON(r, &m); err != nil {
			return err
		}
		created, err := t.Register(r.Context(), &m)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		writeJSON(w, status, api.ToolRegisterResponse{Status: "registered", Tool: m.Tool.Name})
		return nil
	}, Doc: Doc{
		Summary:   "Register (or replace) a tool's manifest; it is persisted and overrides <name>.json",
		Tags:      []string{"tools"},
		Request:   api.ToolManifest{},
		Responses: []Response{{Status: 201, Body: api.ToolRegisterResponse{}}, {Status: 200, Body: api.ToolRegisterResponse{}, Describe: "replaced"}},
	}})
	s.Handle(Route{Method: http.MethodPost, Pattern: "/tools/reload", Handler: func(w http.ResponseWriter, r *http.Request) error {
		res, err := t.Reload(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	}, Doc: Doc{
		Summary:   "Reload the tool directory now; bad modules are reported and skipped",
		Tags:      []string{"tools"},
		Responses: []Response{{Status: 200, Body: api.ToolReloadResponse{}}},
	}})
}
