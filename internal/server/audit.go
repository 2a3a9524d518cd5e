package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
)

// AuditLog is what the audit routes need: queries of the index and live records.
type AuditLog interface {
	QueryAudit(ctx context.Context, f audit.Filter) ([]audit.Record, error)
	Subscribe(ctx context.Context, f audit.Filter) (<-chan audit.Record, func())
}

var auditQuery = []Param{
	{Name: "container_id", Describe: "only records about this sandbox"},
	{Name: "tool", Describe: "only records about this tool"},
	{Name: "decision", Describe: "allowed, blocked, leak, rate_limited or error"},
	{Name: "kind", Describe: "request, lifecycle, execution or gap"},
	{Name: "since", Describe: "RFC 3339 time, or a duration such as 15m meaning that long ago"},
}

// RegisterAudit adds GET /audit and GET /audit/stream.
func (s *Server) RegisterAudit(log AuditLog) {
	s.Handle(Route{Method: http.MethodGet, Pattern: "/audit", Handler: func(w http.ResponseWriter, r *http.Request) error {
		f, err := s.auditFilter(r, true)
		if err != nil {
			return err
		}
		recs, err := log.QueryAudit(r.Context(), f)
		if err != nil {
			return err
		}
		if recs == nil {
			recs = []audit.Record{}
		}
		writeJSON(w, http.StatusOK, api.AuditList{Records: recs})
		return nil
	}, Doc: Doc{
		Summary:   "Query the audit log",
		Describe:  "Newest first. Every egress decision, sandbox lifecycle event and tool execution.",
		Tags:      []string{"audit"},
		Query:     append(auditQuery, Param{Name: "limit", Type: "integer", Describe: "at most this many records (default 100, max 1000)"}),
		Responses: []Response{{Status: 200, Body: api.AuditList{}}},
	}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/audit/stream", Handler: func(w http.ResponseWriter, r *http.Request) error {
		f, err := s.auditFilter(r, false)
		if err != nil {
			return err
		}
		return s.streamAudit(w, r, log, f)
	}, Doc: Doc{
		Summary:   "Stream audit records as they are written (Server-Sent Events)",
		Describe:  "Each event is `data: <AuditRecord JSON>`. A gap record says how many records this stream missed.",
		Tags:      []string{"audit"},
		Query:     auditQuery,
		Responses: []Response{{Status: 200, ContentType: "text/event-stream", Describe: "one AuditRecord per event"}},
	}})
}

func (s *Server) auditFilter(r *http.Request, withLimit bool) (audit.Filter, error) {
	q := r.URL.Query()
	f := audit.Filter{
		ContainerID: q.Get("container_id"),
		Tool:        q.Get("tool"),
		Decision:    audit.Decision(q.Get("decision")),
		Kind:        audit.Kind(q.Get("kind")),
	}
	if v := q.Get("since"); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			f.Since = t
		} else if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			f.Since = s.cfg.Now().Add(-d)
		} else {
			return f, fieldError("since", "since must be an RFC 3339 time or a duration such as 15m, got %q", v)
		}
	}
	if v := q.Get("limit"); v != "" {
		if !withLimit {
			return f, fieldError("limit", "limit does not apply to a stream")
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, fieldError("limit", "limit must be a positive integer, got %q", v)
		}
		f.Limit = n
	}
	return f, f.Validate()
}

// fieldError is an invalid_request naming the offending field.
func fieldError(field, format string, args ...any) error {
	e := api.Errorf(api.CodeInvalidRequest, format, args...)
	e.Details = map[string]string{"field": field}
	return e
}

// streamAudit writes matching records as Server-Sent Events until the client goes
// away or the server shuts down, with a comment every 15 s to keep proxies from
// closing an idle stream.
func (s *Server) streamAudit(w http.ResponseWriter, r *http.Request, log AuditLog, f audit.Filter) error {
	rc := http.NewResponseController(w)
	ch, cancel := log.Subscribe(r.Context(), f)
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case rec, ok := <-ch:
			if !ok {
				return nil // the audit log closed: the server is stopping
			}
			b, err := json.Marshal(rec)
			if err != nil {
				return nil
			}
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return nil
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return nil
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
		case <-r.Context().Done():
			return nil
		case <-s.stopping:
			return nil
		}
	}
}
