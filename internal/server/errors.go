package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/clawbox/clawbox/api"
)

// apiError is an error with an explicit status, for the few statuses that are about
// HTTP itself (405) rather than a domain outcome.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

var errAuth = api.Errorf(api.CodeAuthRequired, "missing or invalid bearer token")

// writeError is the one mapping from an error to an HTTP response. An *api.Error
// chooses its code and message; anything else is our own fault: the client sees a
// generic 500 with the request id, and the details go to the log only.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		status int
		body   api.Error
		ae     *apiError
	)
	if e, ok := api.AsError(err); ok {
		status, body = e.Status(), *e
	} else if errors.As(err, &ae) {
		status, body = ae.status, api.Error{Code: ae.code, Message: ae.msg}
	} else if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody will read the answer.
		s.log.Debug("request canceled by client", "request_id", RequestID(r.Context()), "path", r.URL.Path)
		status, body = 499, api.Error{Code: api.CodeInternal, Message: "request canceled"}
	} else {
		status = http.StatusInternalServerError
		body = api.Error{Code: api.CodeInternal, Message: "internal error (request id " + RequestID(r.Context()) + "); details are in the server log"}
		s.log.Error("internal error", "request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, body)
}

// writeJSON writes v as the JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"cannot encode response","code":"internal_error"}`)
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// writeJSONNow is writeJSON with the response flushed at once, for a
// handler that has work to do after answering.
func writeJSONNow(w http.ResponseWriter, status int, v any) {
	writeJSON(w, status, v)
	http.NewResponseController(w).Flush()
}

// WriteJSON writes v as a JSON response with status (for handlers in this package
// and in route files).
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }
