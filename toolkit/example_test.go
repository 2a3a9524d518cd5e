package toolkit_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/clawbox/clawbox/toolkit"
)

// A tool that counts the words of its input and fetches a page when asked. Build it
// with `clawbox build` (GOOS=wasip1 GOARCH=wasm); the server passes the params on
// stdin and returns the result as the call's output.
func ExampleRunTyped() {
	type input struct {
		Text string `json:"text"`
		URL  string `json:"url"`
	}
	type output struct {
		Words  int `json:"words"`
		Status int `json:"status,omitempty"`
	}
	toolkit.RunTyped(func(ctx context.Context, in input) (output, error) {
		toolkit.Log("debug", fmt.Sprintf("counting %d bytes", len(in.Text)))
		out := output{Words: len(strings.Fields(in.Text))}
		if in.URL != "" {
			// Goes through the server's egress gateway and the tool's allowlist.
			resp, err := toolkit.HTTPRequest(ctx, toolkit.Request{URL: in.URL})
			if err != nil {
				return output{}, err
			}
			out.Status = resp.Status
		}
		return out, nil
	})
}
