package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/clawbox/clawbox/api"
)

// DecodeJSON reads the request body into v strictly: the content type must be JSON
// (415), the body must fit the limit (413), be one valid JSON value (400
// invalid_json) of the right shape with no unknown fields (400 invalid_request
// naming the field).
func DecodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &apiError{status: http.StatusUnsupportedMediaType, code: api.CodeUnsupportedMedia,
				msg: fmt.Sprintf("content type %q is not supported: send application/json", ct)}
		}
	} else {
		return &apiError{status: http.StatusUnsupportedMediaType, code: api.CodeUnsupportedMedia,
			msg: "missing Content-Type: send application/json"}
	}
	if r.Body == nil {
		return api.Errorf(api.CodeInvalidJSON, "request body is empty")
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return api.Errorf(api.CodeTooLarge, "request body is larger than %d bytes", mbe.Limit)
		}
		return api.Errorf(api.CodeInvalidJSON, "cannot read request body")
	}
	return decodeStrict(data, v)
}

func decodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return api.Errorf(api.CodeInvalidJSON, "request body is empty")
	}
	if !json.Valid(data) {
		return api.Errorf(api.CodeInvalidJSON, "request body is not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				return api.Errorf(api.CodeInvalidRequest, "request body must be %s, not %s", jsonKind(reflect.TypeOf(v)), te.Value)
			}
			e := api.Errorf(api.CodeInvalidRequest, "field %q must be %s, not %s", field, jsonKind(te.Type), te.Value)
			e.Details = map[string]string{"field": field}
			return e
		default:
			// encoding/json reports unknown fields only as text: `json: unknown field "x"`.
			if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
				name = strings.Trim(name, `"`)
				e := api.Errorf(api.CodeInvalidRequest, "unknown field %q", name)
				e.Details = map[string]string{"field": name}
				return e
			}
			return api.Errorf(api.CodeInvalidRequest, "request body has the wrong shape")
		}
	}
	return nil
}

// jsonKind names the JSON kind of a Go type, for error messages.
func jsonKind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a JSON value"
}
