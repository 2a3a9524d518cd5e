package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/clawbox/clawbox/api"
)

// Sandboxes is what the container routes need. Logs it returns are already redacted.
type Sandboxes interface {
	Spawn(ctx context.Context, req api.ContainerSpawnRequest) (api.ContainerInfo, error)
	Get(ctx context.Context, id string) (api.ContainerInfo, error)
	// List returns the sandboxes in status (all when "") carrying every label of
	// the selectors ("k=v" each; a bad one is 400 invalid_request naming label).
	List(ctx context.Context, status string, labels []string) ([]api.ContainerInfo, error)
	// Extend sets a running sandbox's deadline to timeoutMS from now.
	Extend(ctx context.Context, id string, timeoutMS int64) (api.ContainerInfo, error)
	Kill(ctx context.Context, id string) (api.KillResponse, error)
	Logs(ctx context.Context, id string) (api.ContainerLogs, error)
	// FollowLogs writes a sandbox's output as it comes until it stops or ctx ends.
	FollowLogs(ctx context.Context, id string, stdout, stderr io.Writer) error
	// Wait returns the sandbox once it has reached a final status (or ctx ends).
	Wait(ctx context.Context, id string) (api.ContainerInfo, error)

	// Exec starts req in the running sandbox id, writing its output to stdout and
	// stderr (from one goroutine) until the session's Wait returns.
	Exec(ctx context.Context, id string, req api.ExecRequest, opts ExecOptions, stdout, stderr io.Writer) (ExecSession, error)
	// WriteFile streams r to path as the sandbox user (mode 0: 0644).
	WriteFile(ctx context.Context, id, path string, mode uint32, r io.Reader) (api.FileWritten, error)
	// ReadFile opens path for streaming; every error comes before any byte.
	ReadFile(ctx context.Context, id, path string) (io.ReadCloser, api.FileEntry, error)
	ListFiles(ctx context.Context, id, path string) (api.FileList, error)
	RemoveFile(ctx context.Context, id, path string, recursive bool) error
	// RemoveWorkspace deletes an ended sandbox's kept workspace.
	RemoveWorkspace(ctx context.Context, id string) error
}

// RegisterContainers adds the container sandbox routes. When no sandboxes can run
// (no Docker), svc answers 503 unavailable with the reason.
func (s *Server) RegisterContainers(svc Sandboxes) {
	s.Handle(Route{Method: http.MethodPost, Pattern: "/containers/spawn", Handler: func(w http.ResponseWriter, r *http.Request) error {
		var req api.ContainerSpawnRequest
		if err := DecodeJSON(r, &req); err != nil {
			return err
		}
		info, err := svc.Spawn(r.Context(), req)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, info)
		return nil
	}, Doc: Doc{
		Summary: "Spawn a hardened container sandbox",
		Describe: "All or nothing: on any failure nothing is left behind. Images are never pulled implicitly " +
			"(400 image_not_found says how to pull). Resources above the server's maxima are refused, never lowered.",
		Tags:      []string{"containers"},
		Request:   api.ContainerSpawnRequest{},
		Responses: []Response{{Status: 201, Body: api.ContainerInfo{}}},
	}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/containers", Handler: func(w http.ResponseWriter, r *http.Request) error {
		status := r.URL.Query().Get("status")
		switch status {
		case "", api.ContainerStatusCreating, api.ContainerStatusRunning, api.ContainerStatusCompleted, api.ContainerStatusFailed,
			api.ContainerStatusTimedOut, api.ContainerStatusKilled, api.ContainerStatusLost:
		default:
			return fieldError("status", "status must be one of creating, running, completed, failed, timed_out, killed, lost; got %q", status)
		}
		list, err := svc.List(r.Context(), status, r.URL.Query()["label"])
		if err != nil {
			return err
		}
		if list == nil {
			list = []api.ContainerInfo{}
		}
		writeJSON(w, http.StatusOK, api.ContainerList{Containers: list})
		return nil
	}, Doc: Doc{
		Summary: "List container sandboxes, newest first",
		Tags:    []string{"containers"},
		Query: []Param{
			{Name: "status", Describe: "only sandboxes in this status"},
			{Name: "label", Describe: "only sandboxes carrying this label, as key=value; repeatable (all must match)"},
		},
		Responses: []Response{{Status: 200, Body: api.ContainerList{}}},
	}})
	s.Handle(Route{Method: http.MethodPatch, Pattern: "/containers/{id}", Handler: func(w http.ResponseWriter, r *http.Request) error {
		var req api.ContainerUpdateRequest
		if err := DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.TimeoutMS == nil {
			return fieldError("timeout_ms", "timeout_ms is required, e.g. {\"timeout_ms\": 600000}")
		}
		info, err := svc.Extend(r.Context(), r.PathValue("id"), *req.TimeoutMS)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, info)
		return nil
	}, Doc: Doc{
		Summary: "Set a running sandbox's deadline",
		Describe: "timeout_ms from now, shorter or longer than before, at most containers.max_timeout_ms (400 naming " +
			"timeout_ms above it). 409 conflict when the sandbox is no longer running. Audited as deadline_set.",
		Tags:      []string{"containers"},
		Request:   api.ContainerUpdateRequest{},
		Responses: []Response{{Status: 200, Body: api.ContainerInfo{}}},
	}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/containers/{id}", Handler: func(w http.ResponseWriter, r *http.Request) error {
		info, err := svc.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, info)
		return nil
	}, Doc: Doc{
		Summary:   "Get a container sandbox",
		Tags:      []string{"containers"},
		Responses: []Response{{Status: 200, Body: api.ContainerInfo{}}},
	}})
	s.Handle(Route{Method: http.MethodDelete, Pattern: "/containers/{id}", Handler: func(w http.ResponseWriter, r *http.Request) error {
		workspace, err := boolQuery(r, "workspace", false)
		if err != nil {
			return err
		}
		id := r.PathValue("id")
		res, err := svc.Kill(r.Context(), id)
		if err != nil {
			return err
		}
		if workspace {
			// A sandbox without a kept workspace has nothing more to remove.
			if err := svc.RemoveWorkspace(r.Context(), id); err != nil && !isCode(err, api.CodeNotFound) {
				return err
			}
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	}, Doc: Doc{
		Summary: "Kill a container sandbox (idempotent: a finished one returns its final record)",
		Describe: "With workspace=true the sandbox's kept workspace (capabilities.workspace) is deleted too, after the " +
			"kill; without it the workspace stays until retention removes it.",
		Tags:      []string{"containers"},
		Query:     []Param{{Name: "workspace", Type: "boolean", Describe: "also delete the sandbox's kept workspace"}},
		Responses: []Response{{Status: 200, Body: api.KillResponse{}}},
	}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/containers/{id}/logs", Handler: func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		switch r.URL.Query().Get("follow") {
		case "", "false", "0":
			logs, err := svc.Logs(r.Context(), id)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, logs)
			return nil
		case "true", "1":
			return s.followLogs(w, r, svc, id)
		default:
			return fieldError("follow", "follow must be true or false")
		}
	}, Doc: Doc{
		Summary: "A sandbox's stdout and stderr",
		Describe: "Kept after the sandbox stops until its record expires. With follow=true the output of a " +
			"running sandbox streams as newline-delimited LogFrame JSON, ending with a status frame. Secrets are redacted.",
		Tags:  []string{"containers"},
		Query: []Param{{Name: "follow", Type: "boolean", Describe: "stream while the sandbox runs"}},
		Responses: []Response{
			{Status: 200, Body: api.ContainerLogs{}},
			{Status: 200, Body: api.LogFrame{}, ContentType: "application/x-ndjson", Describe: "with follow=true"},
		},
	}})
	s.registerExec(svc)
}

// isCode reports whether err is an *api.Error with code.
func isCode(err error, code string) bool {
	e, ok := api.AsError(err)
	return ok && e.Code == code
}

// frameWriter writes LogFrames as NDJSON, one per Write, flushing each.
type frameWriter struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

func (f *frameWriter) frame(fr api.LogFrame) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	b, err := json.Marshal(fr)
	if err != nil {
		return err
	}
	if _, err := f.w.Write(append(b, '\n')); err != nil {
		f.err = err
		return err
	}
	f.err = f.rc.Flush()
	return f.err
}

type streamWriter struct {
	f      *frameWriter
	stream string
}

func (s streamWriter) Write(b []byte) (int, error) {
	if err := s.f.frame(api.LogFrame{Stream: s.stream, Data: string(b)}); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (s *Server) followLogs(w http.ResponseWriter, r *http.Request, sb Sandboxes, id string) error {
	// Check the sandbox exists before committing to a 200 stream.
	if _, err := sb.Get(r.Context(), id); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fw := &frameWriter{w: w, rc: http.NewResponseController(w)}
	if err := fw.rc.Flush(); err != nil {
		return nil
	}
	err := sb.FollowLogs(ctx, id, streamWriter{fw, "stdout"}, streamWriter{fw, "stderr"})
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		msg := "log stream failed"
		if e, ok := api.AsError(err); ok {
			msg = e.Message
		} else {
			s.log.Warn("follow logs", "request_id", RequestID(r.Context()), "sandbox", id, "err", err)
		}
		fw.frame(api.LogFrame{Stream: "error", Error: msg})
		return nil
	}
	// The output ended: report the final status once the lifecycle has recorded it.
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	info, err := sb.Wait(wctx, id)
	if err != nil {
		info, err = sb.Get(ctx, id)
	}
	if err == nil {
		fw.frame(api.LogFrame{Stream: "status", Status: info.Status, ExitCode: info.ExitCode})
	}
	return nil
}
