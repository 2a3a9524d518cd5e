package wasm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/clawbox/clawbox/api"
)

// ValidateName checks a tool name: 1 to 64 characters of [A-Za-z0-9_-]. The error is
// an *api.Error (invalid_request).
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return api.Errorf(api.CodeInvalidRequest, "invalid tool name: must be 1-64 chars, [a-zA-Z0-9_-] only")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return api.Errorf(api.CodeInvalidRequest, "invalid tool name: must be 1-64 chars, [a-zA-Z0-9_-] only")
		}
	}
	return nil
}

// DefaultManifest is the manifest of a tool that has none: no network, no
// credentials, the server's default limits.
func DefaultManifest(name string) *api.ToolManifest {
	return &api.ToolManifest{Tool: api.ToolMeta{Name: name, Description: "WASM tool without a manifest", Version: "0.0.0"}}
}

// ParseManifest decodes and validates a manifest strictly: unknown fields are errors.
// Errors are *api.Error (invalid_json or invalid_request naming the field).
func ParseManifest(b []byte) (*api.ToolManifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m api.ToolManifest
	if err := dec.Decode(&m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, api.Errorf(api.CodeInvalidJSON, "manifest is not valid JSON: %v", err)
		}
		return nil, &api.Error{Code: api.CodeInvalidRequest, Message: fmt.Sprintf("invalid manifest: %v", err)}
	}
	if dec.More() {
		return nil, api.Errorf(api.CodeInvalidJSON, "manifest has trailing data")
	}
	if err := ValidateManifest(&m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ValidateManifest checks a manifest's fields and fills defaults (version "0.1.0").
func ValidateManifest(m *api.ToolManifest) error {
	field := func(name, msg string) error {
		return &api.Error{Code: api.CodeInvalidRequest, Message: name + ": " + msg, Details: map[string]string{"field": name}}
	}
	if err := ValidateName(m.Tool.Name); err != nil {
		return field("tool.name", "must be 1-64 chars, [a-zA-Z0-9_-] only")
	}
	if m.Tool.Description == "" {
		return field("tool.description", "is required")
	}
	if m.Tool.Version == "" {
		m.Tool.Version = "0.1.0"
	}
	if m.Network != nil {
		for _, r := range m.Network.Allowlist {
			if r == "" {
				return field("network.allowlist", "entries must not be empty")
			}
		}
		if m.Network.MaxConcurrent < 0 {
			return field("network.max_concurrent", "must not be negative")
		}
	}
	if m.Credentials != nil {
		for _, c := range m.Credentials.Available {
			if c == "" {
				return field("credentials.available", "entries must not be empty")
			}
		}
	}
	if r := m.Resources; r != nil {
		switch {
		case r.DefaultTimeoutMS < 0:
			return field("resources.default_timeout_ms", "must not be negative")
		case r.MaxTimeoutMS < 0:
			return field("resources.max_timeout_ms", "must not be negative")
		case r.DefaultMemoryMB < 0:
			return field("resources.default_memory_mb", "must not be negative")
		case r.MaxMemoryMB < 0:
			return field("resources.max_memory_mb", "must not be negative")
		}
	}
	for name, s := range map[string]json.RawMessage{"input_schema": m.InputSchema, "output_schema": m.OutputSchema} {
		if len(s) == 0 || string(s) == "null" {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal(s, &obj); err != nil {
			return field(name, "must be a JSON Schema object")
		}
	}
	return nil
}
