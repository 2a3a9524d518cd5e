package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/clawbox/clawbox/api"
)

var pathParamRe = regexp.MustCompile(`\{([A-Za-z0-9_]+)(\.\.\.)?\}`)

// OpenAPIPath turns a route pattern into an OpenAPI path template ("{p...}" → "{p}").
func OpenAPIPath(pattern string) string {
	return pathParamRe.ReplaceAllString(pattern, "{$1}")
}

// OpenAPI builds the OpenAPI 3.1 document of every route, with JSON schemas derived
// from the wire types themselves, so the document cannot drift from the code.
func (s *Server) OpenAPI() (map[string]any, error) {
	schemas := map[string]any{}
	// json.RawMessage is documented as what it carries, any JSON value (by default it
	// would be described as its Go type, an array of integers).
	rawJSON := map[reflect.Type]*jsonschema.Schema{reflect.TypeFor[json.RawMessage](): {}}
	ref := func(v any) (map[string]any, error) {
		t := reflect.TypeOf(v)
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		name := t.Name()
		if name == "" {
			return nil, fmt.Errorf("openapi: unnamed type %s", t)
		}
		if _, ok := schemas[name]; !ok {
			sch, err := jsonschema.ForType(t, &jsonschema.ForOptions{IgnoreInvalidTypes: true, TypeSchemas: rawJSON})
			if err != nil {
				return nil, err
			}
			schemas[name] = sch
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}, nil
	}
	errRef, err := ref(api.Error{})
	if err != nil {
		return nil, err
	}
	errResp := map[string]any{
		"description": "Error: {\"error\", \"code\", \"details\"?} with a stable code",
		"content":     map[string]any{"application/json": map[string]any{"schema": errRef}},
	}

	paths := map[string]any{}
	for _, rt := range s.Routes() {
		p := OpenAPIPath(rt.Pattern)
		item, _ := paths[p].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[p] = item
		}
		op := map[string]any{
			"operationId": operationID(rt),
			"summary":     rt.Doc.Summary,
		}
		if rt.Doc.Describe != "" {
			op["description"] = rt.Doc.Describe
		}
		if len(rt.Doc.Tags) > 0 {
			op["tags"] = rt.Doc.Tags
		}
		var params []any
		for _, m := range pathParamRe.FindAllStringSubmatch(rt.Pattern, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.Doc.Query {
			typ := q.Type
			if typ == "" {
				typ = "string"
			}
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Describe, "schema": map[string]any{"type": typ}})
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if rt.Doc.Request != nil {
			r, err := ref(rt.Doc.Request)
			if err != nil {
				return nil, err
			}
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": r}}}
		} else if rt.Doc.RawRequest != "" {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				rt.Doc.RawRequest: map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}}
		}
		responses := map[string]any{"default": errResp}
		for _, resp := range rt.Doc.Responses {
			desc := resp.Describe
			if desc == "" {
				desc = http.StatusText(resp.Status)
			}
			out := map[string]any{"description": desc}
			switch {
			case resp.Body != nil:
				r, err := ref(resp.Body)
				if err != nil {
					return nil, err
				}
				ct := resp.ContentType
				if ct == "" {
					ct = "application/json"
				}
				out["content"] = map[string]any{ct: map[string]any{"schema": r}}
			case resp.ContentType != "":
				out["content"] = map[string]any{resp.ContentType: map[string]any{}}
			}
			responses[strconv.Itoa(resp.Status)] = out
		}
		switch rt.Auth {
		case AuthRequired:
			op["security"] = []any{map[string]any{"bearer": []any{}}}
			responses["401"] = errResp
		case AuthOptional:
			op["security"] = []any{map[string]any{}, map[string]any{"bearer": []any{}}}
		default:
			op["security"] = []any{}
		}
		if rt.Limited {
			responses["503"] = errResp
		}
		op["responses"] = responses
		item[strings.ToLower(rt.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "clawbox API",
			"version":     s.cfg.Version,
			"description": "Run untrusted agent code in WASM or hardened containers, with every byte of egress through clawbox's gateway.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas":         schemas,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
		"security": []any{map[string]any{"bearer": []any{}}},
	}, nil
}

func operationID(rt Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	for _, part := range strings.Split(rt.Pattern, "/") {
		part = strings.Trim(part, "{}.")
		part = strings.NewReplacer("-", "_", ".", "_").Replace(part)
		if part == "" {
			continue
		}
		b.WriteString("_" + part)
	}
	return b.String()
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	doc, err := s.OpenAPI()
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
	return nil
}
