// Command echo returns its params: the smallest clawbox tool.
package main

import (
	"context"
	"encoding/json"

	"github.com/clawbox/clawbox/toolkit"
)

type output struct {
	Tool    string          `json:"tool"`
	Version string          `json:"version"`
	Echo    json.RawMessage `json:"echo"`
	Message string          `json:"message"`
}

func main() {
	toolkit.Run(func(ctx context.Context, params json.RawMessage) (any, error) {
		return output{Tool: "echo", Version: "0.1.0", Echo: params, Message: "Hello from clawbox WASM sandbox!"}, nil
	})
}
