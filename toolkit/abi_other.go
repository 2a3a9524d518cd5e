//go:build !wasip1

package toolkit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// hostCall outside wasip1: log goes to stderr, everything else is unavailable.
func hostCall(req []byte) ([]byte, error) {
	var r struct {
		Method string `json:"method"`
		Params struct {
			Level   string `json:"level"`
			Message string `json:"message"`
		} `json:"params"`
	}
	if err := json.Unmarshal(req, &r); err == nil && r.Method == "log" {
		fmt.Fprintf(os.Stderr, "[%s] %s\n", r.Params.Level, r.Params.Message)
		return []byte(`{"ok":null}`), nil
	}
	return nil, ErrUnavailable
}

func exit(code int) { os.Exit(code) }

func stdin() io.Reader  { return os.Stdin }
func stdout() io.Writer { return os.Stdout }
func stderr() io.Writer { return os.Stderr }
