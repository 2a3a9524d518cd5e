package server

import (
	"net/http"
	"path"

	"github.com/clawbox/clawbox/internal/ui"
)

// canonicalPaths answers a request whose path is not in canonical form ("." or ".."
// segments, doubled or trailing slashes, including their percent-encoded forms) with
// 404 not_found in the API error shape. net/http's mux would redirect it to the
// cleaned path instead: the API has no such paths, its error shape is JSON, and a
// client that follows a redirect could replay a PUT or DELETE on another resource.
func (s *Server) canonicalPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The dashboard's index is the one path with a trailing slash (ui.Prefix).
		if p := r.URL.Path; len(p) > 1 && p[0] == '/' && path.Clean(p) != p && p != ui.Prefix {
			s.noRoute(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
