package server

import (
	"net/http"

	"github.com/clawbox/clawbox/api"
)

// Credentials is what the credential routes need of the store. Values go in, never out.
type Credentials interface {
	List() []api.Credential
	Put(name string, req api.PutCredentialRequest) (api.Credential, error)
	Delete(name string) error
}

// RegisterCredentials adds GET /credentials, PUT and DELETE /credentials/{name}.
// A nil store (no master key) answers 503 unavailable with what to do.
func (s *Server) RegisterCredentials(store Credentials, whyUnavailable string) {
	get := func() (Credentials, error) {
		if store == nil {
			return nil, api.Errorf(api.CodeUnavailable, "the credential store is not available: %s", whyUnavailable)
		}
		return store, nil
	}
	s.Handle(Route{Method: http.MethodGet, Pattern: "/credentials", Handler: func(w http.ResponseWriter, r *http.Request) error {
		st, err := get()
		if err != nil {
			return err
		}
		list := st.List()
		if list == nil {
			list = []api.Credential{}
		}
		writeJSON(w, http.StatusOK, api.CredentialList{Credentials: list})
		return nil
	}, Doc: Doc{
		Summary:   "List credentials (names and bindings, never values)",
		Tags:      []string{"credentials"},
		Responses: []Response{{Status: 200, Body: api.CredentialList{}}},
	}})
	s.Handle(Route{Method: http.MethodPut, Pattern: "/credentials/{name}", Handler: func(w http.ResponseWriter, r *http.Request) error {
		st, err := get()
		if err != nil {
			return err
		}
		var req api.PutCredentialRequest
		if err := DecodeJSON(r, &req); err != nil {
			return err
		}
		c, err := st.Put(r.PathValue("name"), req)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, c)
		return nil
	}, Doc: Doc{
		Summary:   "Create or replace a credential (the value is write-only)",
		Describe:  "Takes effect at once for every sandbox and tool granted it; the store file is rewritten atomically.",
		Tags:      []string{"credentials"},
		Request:   api.PutCredentialRequest{},
		Responses: []Response{{Status: 200, Body: api.Credential{}}},
	}})
	s.Handle(Route{Method: http.MethodDelete, Pattern: "/credentials/{name}", Handler: func(w http.ResponseWriter, r *http.Request) error {
		st, err := get()
		if err != nil {
			return err
		}
		name := r.PathValue("name")
		if err := st.Delete(name); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]string{"name": name, "status": "deleted"})
		return nil
	}, Doc: Doc{
		Summary:   "Delete a credential",
		Tags:      []string{"credentials"},
		Responses: []Response{{Status: 200, Describe: "{\"name\", \"status\": \"deleted\"}", ContentType: "application/json"}},
	}})
}
