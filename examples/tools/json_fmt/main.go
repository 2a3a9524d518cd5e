// Command json_fmt formats, validates, minifies and queries JSON.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/clawbox/clawbox/toolkit"
)

type input struct {
	// Action is format (default), validate, minify, keys or extract.
	Action string `json:"action"`
	// Data is the JSON: a string holding JSON text, or any JSON value.
	Data json.RawMessage `json:"data"`
	// Indent is the number of spaces for format (default 2, at most 8).
	Indent *int `json:"indent"`
	// Path selects a value for extract: dot-separated keys and array indexes (a.b.0).
	Path string `json:"path"`
}

// text returns the JSON text the input designates.
func (in input) text() []byte {
	var s string
	if err := json.Unmarshal(in.Data, &s); err == nil {
		return []byte(s)
	}
	return in.Data
}

func run(in input) (any, error) {
	doc := in.text()
	action := in.Action
	if action == "" {
		action = "format"
	}
	if action == "validate" {
		var v any
		err := json.Unmarshal(doc, &v)
		if err != nil {
			return map[string]any{"valid": false, "error": err.Error()}, nil
		}
		return map[string]any{"valid": true}, nil
	}
	if !json.Valid(doc) {
		return nil, fmt.Errorf("data is not valid JSON")
	}
	switch action {
	case "format":
		indent := 2
		if in.Indent != nil {
			indent = min(max(*in.Indent, 0), 8)
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, doc, "", strings.Repeat(" ", indent)); err != nil {
			return nil, err
		}
		return map[string]string{"result": buf.String()}, nil
	case "minify":
		var buf bytes.Buffer
		if err := json.Compact(&buf, doc); err != nil {
			return nil, err
		}
		return map[string]string{"result": buf.String()}, nil
	case "keys":
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(doc, &obj); err != nil {
			return nil, fmt.Errorf("keys needs a JSON object")
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return map[string]any{"keys": keys}, nil
	case "extract":
		v, err := extract(doc, in.Path)
		if err != nil {
			return nil, err
		}
		return map[string]any{"path": in.Path, "value": v}, nil
	}
	return nil, fmt.Errorf("unknown action %q (want format, validate, minify, keys or extract)", action)
}

func extract(doc []byte, path string) (json.RawMessage, error) {
	cur := json.RawMessage(doc)
	if path == "" {
		return cur, nil
	}
	for _, part := range strings.Split(path, ".") {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(cur, &obj); err == nil {
			next, ok := obj[part]
			if !ok {
				return nil, fmt.Errorf("path %q: no key %q", path, part)
			}
			cur = next
			continue
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(cur, &arr); err == nil {
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(arr) {
				return nil, fmt.Errorf("path %q: no index %q", path, part)
			}
			cur = arr[i]
			continue
		}
		return nil, fmt.Errorf("path %q: %q is not inside an object or array", path, part)
	}
	return cur, nil
}

func main() {
	toolkit.RunTyped(func(ctx context.Context, in input) (any, error) { return run(in) })
}
