//go:build wasip1

package toolkit

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"unsafe"
)

//go:wasmimport clawbox host_call
func hostCallRaw(reqPtr unsafe.Pointer, reqLen uint32, respPtr unsafe.Pointer, respCap uint32) int32

//go:wasmimport clawbox host_call_result
func hostCallResultRaw(respPtr unsafe.Pointer, respCap uint32) int32

// replyBufSize is the first buffer offered for a reply; larger replies are fetched
// whole with host_call_result.
const replyBufSize = 64 << 10

var errHostCall = errors.New("host call: invalid request memory")

func hostCall(req []byte) ([]byte, error) {
	if len(req) == 0 {
		return nil, errHostCall
	}
	buf := make([]byte, replyBufSize)
	n := hostCallRaw(unsafe.Pointer(&req[0]), uint32(len(req)), unsafe.Pointer(&buf[0]), uint32(len(buf)))
	for n < -1 {
		buf = make([]byte, -int(n))
		n = hostCallResultRaw(unsafe.Pointer(&buf[0]), uint32(len(buf)))
	}
	if n < 0 {
		return nil, errHostCall
	}
	return buf[:n], nil
}

// reactor is set by clawbox_run: main (and so Run) then runs once per call and must
// return instead of exiting.
var (
	reactor  bool
	exitCode int32
)

//go:linkname mainMain main.main
func mainMain()

// clawboxRun is the reactor entry point: the host calls it once on a fresh,
// already initialised instance (see the package doc).
//
//lint:ignore U1000 called by the host through the go:wasmexport below.
//go:wasmexport clawbox_run
func clawboxRun() int32 {
	reactor, exitCode = true, 0
	mainMain()
	return exitCode
}

func exit(code int) {
	if reactor {
		exitCode = int32(code)
		return
	}
	os.Exit(code)
}

func stdin() io.Reader  { return os.Stdin }
func stdout() io.Writer { return os.Stdout }
func stderr() io.Writer { return os.Stderr }

// In a reactor, package init functions run once, in _initialize, whose state every
// call starts from (the host keeps it as the tool's snapshot): warm runs the call
// path once there with made-up params into nowhere, so that encoding/json's
// reflection and the runtime's first-use work are done once per tool instead of
// once per call. A command runs init in every call, so it does not warm.
func init() {
	if !builtAsReactor() {
		return
	}
	serve(context.Background(), strings.NewReader(`{"warm":[1,"x",true,null,{"k":1.5}]}`), io.Discard, io.Discard,
		func(_ context.Context, p json.RawMessage) (any, error) {
			var v map[string]any
			if err := json.Unmarshal(p, &v); err != nil {
				return nil, err
			}
			return struct {
				S string          `json:"s"`
				R json.RawMessage `json:"r"`
				M map[string]any  `json:"m"`
			}{"x", p, v}, nil
		})
}

func builtAsReactor() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-buildmode" {
			return s.Value == "c-shared"
		}
	}
	return false
}
