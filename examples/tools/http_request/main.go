// Command http_request sends one HTTP request through the clawbox egress gateway
// (subject to the tool's network allowlist) and returns the response. A request the
// gateway refuses or cannot complete fails the call with the gateway's code.
package main

import (
	"context"
	"errors"
	"fmt"

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
			// A refused or failed request (policy, leak, rate limit, upstream) fails the
			// call: the *toolkit.HostError carries the gateway's code to the caller.
			return nil, fmt.Errorf("%s %s: %w", method, in.URL, err)
		}
		return resp, nil
	})
}
