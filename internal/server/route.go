package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// AuthMode says who may call a route.
type AuthMode int

const (
	// AuthRequired: a valid bearer token is required (401 auth_required otherwise).
	AuthRequired AuthMode = iota
	// AuthOptional: anyone may call; the handler can tell whether the token was valid
	// with Authenticated.
	AuthOptional
	// AuthPublic: no token is looked at.
	AuthPublic
)

// HandlerFunc handles a request. A returned error is written with WriteError, so a
// handler that fails returns instead of writing.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Route is one method on one path pattern (net/http pattern syntax, e.g.
// "/containers/{id}"), with its documentation.
type Route struct {
	Method  string
	Pattern string
	Auth    AuthMode
	// Limited routes take a slot of the execution limiter (after auth).
	Limited bool
	// RawBody routes stream their body themselves and bound it by their own limit
	// (file uploads): Config.MaxBodyBytes does not apply.
	RawBody bool
	Handler HandlerFunc
	Doc     Doc
}

// Doc documents a route in the OpenAPI document.
type Doc struct {
	Summary  string
	Describe string
	Tags     []string
	// Request is a zero value of the JSON request body type (nil: no body).
	Request any
	// RawRequest, with Request nil, documents a raw body of this content type.
	RawRequest string
	// Query lists the query parameters.
	Query []Param
	// Responses lists the success responses; error responses are added for every route.
	Responses []Response
}

// Param is a documented query parameter.
type Param struct {
	Name     string
	Describe string
	Type     string // "string", "integer", "boolean"
}

// Response is a documented success response.
type Response struct {
	Status int
	// Body is a zero value of the JSON body type (nil with ContentType for non-JSON).
	Body        any
	ContentType string
	Describe    string
}

// patternRoutes dispatches the methods registered on one pattern.
type patternRoutes struct {
	s       *Server
	pattern string
	methods map[string]Route
}

// Handle adds a route. It panics on a duplicate method and pattern: routes are
// fixed at start-up, and a duplicate is a programming error.
func (s *Server) Handle(rt Route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pr, ok := s.patterns[rt.Pattern]
	if !ok {
		pr = &patternRoutes{s: s, pattern: rt.Pattern, methods: map[string]Route{}}
		s.patterns[rt.Pattern] = pr
		s.mux.Handle(rt.Pattern, pr)
	}
	if _, dup := pr.methods[rt.Method]; dup {
		panic(fmt.Sprintf("server: duplicate route %s %s", rt.Method, rt.Pattern))
	}
	pr.methods[rt.Method] = rt
	s.routes = append(s.routes, rt)
}

func (pr *patternRoutes) allow() string {
	var ms []string
	for m := range pr.methods {
		ms = append(ms, m)
		if m == http.MethodGet {
			ms = append(ms, http.MethodHead)
		}
	}
	sort.Strings(ms)
	return strings.Join(ms, ", ")
}

func (pr *patternRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := pr.s
	setRoutePattern(r.Context(), pr.pattern)
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	rt, ok := pr.methods[method]
	if !ok {
		w.Header().Set("Allow", pr.allow())
		s.writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
			msg: fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, pr.pattern, pr.allow())})
		return
	}
	authed := s.validToken(r)
	switch rt.Auth {
	case AuthRequired:
		if !authed {
			w.Header().Set("WWW-Authenticate", `Bearer realm="clawbox"`)
			s.writeError(w, r, errAuth)
			return
		}
	}
	if rt.Auth != AuthPublic {
		r = r.WithContext(context.WithValue(r.Context(), authedKey{}, authed))
	}
	if r.Body != nil && !rt.RawBody {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	}
	if rt.Limited {
		release, err := s.limiter.Acquire(r.Context())
		if err != nil {
			if isBusy(err) {
				w.Header().Set("Retry-After", "1")
			}
			s.writeError(w, r, err)
			return
		}
		defer release()
	}
	if err := rt.Handler(w, r); err != nil {
		s.writeError(w, r, err)
	}
}

type authedKey struct{}

// Authenticated reports whether the request carried the valid token (for AuthOptional routes).
func Authenticated(r *http.Request) bool {
	v, _ := r.Context().Value(authedKey{}).(bool)
	return v
}

// validToken checks "Authorization: Bearer <token>" in constant time. Both sides are
// hashed first so that the comparison does not reveal the token's length either.
func (s *Server) validToken(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return false
	}
	got := sha256.Sum256([]byte(tok))
	want := sha256.Sum256([]byte(s.cfg.Token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	setRoutePattern(r.Context(), "unmatched")
	s.writeError(w, r, &apiError{status: http.StatusNotFound, code: "not_found",
		msg: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)})
}
