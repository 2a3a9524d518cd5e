// Command http_request sends one HTTP request through the clawbox egress gateway
// (subject to the tool's network allowlist) and returns the response.
package main

import (
	"context"
	"errors"

	"github.com/clawbox/clawbox/toolkit"
)

type input struct {
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func main() {
	toolkit.RunTyped(func(ctx context.Context, in input) (any, error) {
		if in.URL == "" {
			return nil, errors.New("missing url")
		}
		method := in.Method
		if method == "" {
			method = "GET"
		}
		toolkit.Log("info", "HTTP "+method+" "+in.URL)
		resp, err := toolkit.HTTPRequest(ctx, toolkit.Request{URL: in.URL, Method: method, Headers: in.Headers, Body: in.Body})
		if err != nil {
			// A refusal (policy, leak, rate limit) is an answer, not a tool failure.
			var he *toolkit.HostError
			if errors.As(err, &he) {
				return map[string]string{"error": he.Message, "code": he.Code}, nil
			}
			return nil, err
		}
		return resp, nil
	})
}
