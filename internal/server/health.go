package server

import (
	"net/http"

	"github.com/clawbox/clawbox/api"
)

// health answers GET /health: {"status"} for anyone, the details for a valid token.
func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	resp := api.HealthResponse{Status: api.StatusOK}
	comps := map[string]api.ComponentHealth{}
	s.mu.Lock()
	checks := append([]HealthCheck(nil), s.cfg.Health...)
	s.mu.Unlock()
	for _, hc := range checks {
		c := hc.Check(r.Context())
		comps[hc.Name] = c
		if c.Status != api.StatusOK {
			resp.Status = api.StatusDegraded
		}
	}
	if Authenticated(r) {
		resp.Version = s.cfg.Version
		resp.UptimeSeconds = int64(s.cfg.Now().Sub(s.started).Seconds())
		if len(comps) > 0 {
			resp.Components = comps
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
