// Command guest is the engine tests' tool: params {"mode": ...} choose a behaviour.
// The tests build it twice with GOOS=wasip1 GOARCH=wasm: as a command (_start) and
// with -buildmode=c-shared as a reactor (clawbox_run).
package main

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"

	"github.com/clawbox/clawbox/toolkit"
)

//go:wasmimport clawbox host_call
func hostCall(reqPtr, reqLen, respPtr, respCap uint32) int32

//go:wasmimport clawbox host_call_result
func hostCallResult(respPtr, respCap uint32) int32

type params struct {
	Mode  string          `json:"mode"`
	N     int             `json:"n"`
	URL   string          `json:"url"`
	Value json.RawMessage `json:"value"`
}

var sink [][]byte

// remembered and calls are what a call would see of an earlier one if instances
// were not isolated (the "state" mode).
var (
	remembered json.RawMessage
	calls      int
)

func main() {
	toolkit.RunTyped(func(ctx context.Context, p params) (any, error) {
		switch p.Mode {
		case "echo":
			return map[string]any{"value": p.Value}, nil
		case "random":
			b := make([]byte, 16)
			if _, err := crand.Read(b); err != nil {
				return nil, err
			}
			return map[string]any{"crypto": fmt.Sprintf("%x", b)}, nil
		case "state":
			// What is left of earlier calls: a package variable, a counter, and
			// memory the Go runtime takes as zero when it grows the heap.
			prev := remembered
			remembered = p.Value
			calls++
			big := make([]byte, p.N)
			dirty := 0
			for _, b := range big {
				if b != 0 {
					dirty++
				}
			}
			for i := range big {
				big[i] = 0xAB
			}
			sink = append(sink, big)
			return map[string]any{"previous": prev, "calls": calls, "dirty": dirty}, nil
		case "loop":
			//lint:ignore SA5002 spinning is the point: the engine's timeout must stop it.
			for {
			}
		case "sleep":
			time.Sleep(time.Hour)
			return nil, nil
		case "grow":
			for {
				sink = append(sink, make([]byte, 1<<20))
				sink[len(sink)-1][0] = 1
			}
		case "stdout_flood":
			chunk := []byte(strings.Repeat("x", 64<<10))
			for i := 0; i < p.N; i++ {
				os.Stdout.Write(chunk)
			}
			return nil, nil
		case "stderr_flood":
			chunk := []byte(strings.Repeat("e", 64<<10))
			for i := 0; i < p.N; i++ {
				os.Stderr.Write(chunk)
			}
			os.Stderr.Write([]byte("END-OF-STDERR"))
			return nil, errors.New("flooded")
		case "exit":
			fmt.Fprintln(os.Stderr, "boom: something went wrong")
			os.Exit(p.N)
		case "log":
			for i := 0; i < p.N; i++ {
				toolkit.Log("debug", fmt.Sprintf("entry %d", i))
			}
			return map[string]int{"logged": p.N}, nil
		case "hostcalls":
			failed := 0
			var last string
			for i := 0; i < p.N; i++ {
				if err := toolkit.Log("info", "x"); err != nil {
					failed++
					last = err.Error()
				}
			}
			return map[string]any{"failed": failed, "last_error": last}, nil
		case "sandbox":
			_, readErr := os.ReadFile("/etc/passwd")
			_, dirErr := os.ReadDir("/")
			createErr := os.WriteFile("/tmp/clawbox-guest-was-here", []byte("x"), 0o644)
			wd, _ := os.Getwd()
			return map[string]any{
				"env":         os.Environ(),
				"args":        len(os.Args),
				"read_fails":  readErr != nil,
				"dir_fails":   dirErr != nil,
				"write_fails": createErr != nil,
				"wd":          wd,
				"clock_real":  time.Now().Year() >= 2024,
			}, nil
		case "http_err":
			// The toolkit's convention: a host call's error fails the call with its code.
			_, err := toolkit.HTTPRequest(ctx, toolkit.Request{URL: p.URL})
			if err == nil {
				return map[string]string{"unexpected": "success"}, nil
			}
			return nil, fmt.Errorf("fetch %s: %w", p.URL, err)
		case "forged_failure":
			// A failure record of its own making, then a non-zero exit.
			os.Stdout.Write(p.Value)
			os.Exit(2)
		case "hostile":
			return hostile(), nil
		case "http":
			resp, err := toolkit.HTTPRequest(ctx, toolkit.Request{URL: p.URL, Method: "POST", Headers: map[string]string{"X-Test": "1"}, Body: "hello"})
			if err != nil {
				var he *toolkit.HostError
				if errors.As(err, &he) {
					return map[string]any{"error": he.Message, "code": he.Code}, nil
				}
				return nil, err
			}
			return map[string]any{"status": resp.Status, "len": len(resp.Body), "tail": resp.Body[max(0, len(resp.Body)-8):], "truncated": resp.Truncated}, nil
		}
		return nil, fmt.Errorf("unknown mode %q", p.Mode)
	})
}

// hostile calls host_call and host_call_result with invalid regions and short
// buffers and reports what each returned.
func hostile() map[string]any {
	req := []byte(`{"method":"log","params":{"message":"hostile"}}`)
	rp := uint32(uintptr(unsafe.Pointer(&req[0])))
	buf := make([]byte, 256)
	bp := uint32(uintptr(unsafe.Pointer(&buf[0])))
	out := map[string]any{
		"req_out_of_bounds":  hostCall(0xFFFFFFF0, 100, bp, 256),
		"req_len_huge":       hostCall(rp, 0xFFFFFFFF, bp, 256),
		"resp_out_of_bounds": hostCall(rp, uint32(len(req)), 0xFFFFFF00, 256),
		"resp_cap_huge":      hostCall(rp, uint32(len(req)), bp, 0xFFFFFFFF),
		"no_pending":         hostCallResult(bp, 256),
	}
	bad := []byte(`{not json`)
	n := hostCall(uint32(uintptr(unsafe.Pointer(&bad[0]))), uint32(len(bad)), bp, 256)
	out["malformed_len"] = n
	if n > 0 {
		out["malformed_reply"] = string(buf[:n])
	}
	short := hostCall(rp, uint32(len(req)), bp, 1)
	out["short"] = short
	out["result_short"] = hostCallResult(bp, 1)
	out["result_bad_ptr"] = hostCallResult(0xFFFFFFF0, 256)
	got := hostCallResult(bp, 256)
	out["result"] = got
	if got > 0 {
		out["result_reply"] = string(buf[:got])
	}
	out["after_fetch"] = hostCallResult(bp, 256)
	return out
}
