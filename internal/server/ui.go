package server

import (
	"fmt"
	"net/http"

	"github.com/clawbox/clawbox/internal/ui"
)

// mountUI serves the dashboard (internal/ui) at /ui/ behind the same middleware as
// the API: request ids, metrics, and the Host and Origin checks of origin.go. Its
// files hold nothing secret and are served without a token; every API call the page
// makes carries the token its user enters. The dashboard is not part of the API and
// is not in the OpenAPI document.
func (s *Server) mountUI() {
	s.mux.Handle(ui.Prefix, http.HandlerFunc(s.serveUI))
	s.mux.Handle("/ui", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setRoutePattern(r.Context(), ui.Prefix)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.uiMethodNotAllowed(w, r)
			return
		}
		http.Redirect(w, r, ui.Prefix, http.StatusMovedPermanently)
	}))
}

func (s *Server) serveUI(w http.ResponseWriter, r *http.Request) {
	setRoutePattern(r.Context(), ui.Prefix)
	f, ok := ui.Lookup(r.URL.Path)
	if !ok {
		s.noRoute(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.uiMethodNotAllowed(w, r)
		return
	}
	ui.Serve(w, r, f)
}

func (s *Server) uiMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD")
	s.writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
		msg: fmt.Sprintf("method %s is not allowed on %s (allowed: GET, HEAD)", r.Method, r.URL.Path)})
}
