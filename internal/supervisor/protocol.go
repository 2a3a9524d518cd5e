// Package supervisor provides clawbox's in-sandbox supervisor and the
// server-side client that talks to it.
//
// The supervisor is a small static program that runs as PID 1 of a container
// sandbox, as the sandbox user: it reaps zombies, forwards signals to the main
// command, reports the main command's exit, and serves exec and file requests.
// The server listens on a Unix socket in the sandbox's own (read-only mounted)
// directory; the supervisor dials it, presents its per-sandbox token on a
// first line, and then serves HTTP/2 over that connection, with the server as
// the HTTP/2 client. The host therefore never connects to a path the workload
// can write.
//
// A supervisor started in WaitMain mode (a pooled sandbox's, see
// docs/warm-pool.md) has no main command until the server sends one
// (POST /v1/main, once), and re-reads its token file at every dial so that a
// claim can replace its token (Listener.SetToken on the server side).
//
// The supervisor runs inside the trust boundary: the workload can kill or
// impersonate it. Everything the client reads from it is hostile input:
// frames and headers are bounded, every call has a deadline, the
// connection is health-checked with pings, and a dead or silent supervisor
// ends in an error wrapping errdefs.ErrUnavailable, never a hang.
package supervisor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Protocol constants shared by both sides.
const (
	// HelloPrefix starts the first line the supervisor sends: prefix, token, "\n".
	HelloPrefix = "CLAWBOX-SUPERVISOR/1 "
	// MaxHelloBytes bounds the first line.
	MaxHelloBytes = 256
	// MaxFramePayload bounds one exec stream frame.
	MaxFramePayload = 32 << 10
	// MaxPathBytes bounds a path; MaxNameBytes one component of it.
	MaxPathBytes = 4096
	MaxNameBytes = 255
	// MaxControlBytes bounds JSON control payloads from the supervisor (result,
	// error).
	MaxControlBytes = 64 << 10
	// MaxRequestBytes bounds the exec request the server sends: room for the
	// server's own cmd and env bounds after JSON escaping (up to 6 bytes a byte).
	MaxRequestBytes = 2 << 20
)

// Headers of a file read answer: the file's size, permission bits (octal) and
// modification time (Unix seconds), as the supervisor saw them on open.
const (
	HeaderSize  = "Clawbox-Size"
	HeaderMode  = "Clawbox-Mode"
	HeaderMTime = "Clawbox-Mtime"
)

// Frame types of the exec stream. Client to supervisor: Request (JSON
// ExecRequest, first and once), Stdin, StdinEOF, Resize (rows, cols as two
// big-endian uint16). Supervisor to client: Stdout, Stderr, then exactly one
// Exit (JSON ExecResult) or Error (JSON wireError).
const (
	FrameStdout   byte = 1
	FrameStderr   byte = 2
	FrameExit     byte = 3
	FrameError    byte = 4
	FrameRequest  byte = 16
	FrameStdin    byte = 17
	FrameStdinEOF byte = 18
	FrameResize   byte = 19
)

// ErrFrame is returned for a malformed frame.
var ErrFrame = errors.New("supervisor: malformed frame")

// WriteFrame writes one frame: type byte, big-endian uint32 length, payload.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > MaxFramePayload && typ != FrameRequest {
		return fmt.Errorf("%w: payload of %d bytes", ErrFrame, len(payload))
	}
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if len(payload) == 0 {
		return nil
	}
	_, err := w.Write(payload)
	return err
}

// ReadFrame reads one frame into buf (grown up to the limit for its type) and
// returns its type and payload. Control frames may carry up to
// MaxControlBytes, data frames up to MaxFramePayload; anything larger, an
// unknown type or a short read is an error, and nothing larger than the limit
// is ever allocated.
func ReadFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("%w: short header", ErrFrame)
		}
		return 0, nil, err
	}
	typ := hdr[0]
	n := binary.BigEndian.Uint32(hdr[1:])
	var limit uint32
	switch typ {
	case FrameStdout, FrameStderr, FrameStdin:
		limit = MaxFramePayload
	case FrameExit, FrameError:
		limit = MaxControlBytes
	case FrameRequest:
		limit = MaxRequestBytes
	case FrameStdinEOF:
		limit = 0
	case FrameResize:
		if n != 4 {
			return 0, nil, fmt.Errorf("%w: resize of %d bytes", ErrFrame, n)
		}
		limit = 4
	default:
		return 0, nil, fmt.Errorf("%w: unknown type %d", ErrFrame, typ)
	}
	if n > limit {
		return 0, nil, fmt.Errorf("%w: type %d with %d bytes (max %d)", ErrFrame, typ, n, limit)
	}
	if uint32(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("%w: short payload: %v", ErrFrame, err)
	}
	return typ, buf, nil
}

// ExecRequest is one command to run in the sandbox.
type ExecRequest struct {
	Cmd       []string          `json:"cmd"`
	Env       map[string]string `json:"env,omitempty"`
	Workdir   string            `json:"workdir,omitempty"`
	TimeoutMS int64             `json:"timeout_ms,omitempty"`
	TTY       bool              `json:"tty,omitempty"`
	Rows      uint16            `json:"rows,omitempty"`
	Cols      uint16            `json:"cols,omitempty"`
	// MaxOutputBytes caps each of stdout and stderr; 0 means DefaultMaxOutput.
	MaxOutputBytes int64 `json:"max_output_bytes,omitempty"`
	// Stdin is sent before anything written to Process.Stdin; it is not part of
	// the wire request.
	Stdin []byte `json:"-"`
}

// DefaultMaxOutput is the per-stream output cap when a request names none.
const DefaultMaxOutput = 1 << 20

// ExecResult ends an exec.
type ExecResult struct {
	ExitCode   int   `json:"exit_code"`
	Signal     int   `json:"signal,omitempty"`
	TimedOut   bool  `json:"timed_out"`
	DurationMS int64 `json:"duration_ms"`
	// Truncated reports that stdout or stderr hit the cap.
	Truncated bool `json:"truncated"`
}

// MainRequest is the main command a supervisor started in WaitMain mode
// (a pooled sandbox's) runs: POST /v1/main, accepted once. Env is merged
// over the supervisor's own environment (the image's, nothing of any
// request) and becomes the base of every later exec too.
type MainRequest struct {
	Cmd     []string          `json:"cmd"`
	Env     map[string]string `json:"env,omitempty"`
	Workdir string            `json:"workdir,omitempty"`
}

// MainExit is the main command's exit as the supervisor reports it.
type MainExit struct {
	ExitCode int `json:"exit_code"`
	Signal   int `json:"signal,omitempty"`
}

// FileEntry is one directory entry.
type FileEntry struct {
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	Mode  uint32 `json:"mode"`
	IsDir bool   `json:"is_dir"`
	// IsSymlink and IsOther tell a symlink (never followed) and a special file
	// (FIFO, socket, device) from a regular file.
	IsSymlink bool  `json:"is_symlink,omitempty"`
	IsOther   bool  `json:"is_other,omitempty"`
	MTime     int64 `json:"mtime"`
}

// Error classes on the wire.
const (
	codeNotFound   = "not_found"
	codeInvalid    = "invalid"
	codePermission = "permission_denied"
	codeTooLarge   = "too_large"
	codeNoSpace    = "no_space"
	codeInternal   = "internal"
)

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ValidatePath reports whether p is a path the supervisor accepts: absolute,
// clean, no NUL, at most MaxPathBytes, components at most MaxNameBytes.
func ValidatePath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case len(p) > MaxPathBytes:
		return fmt.Errorf("path longer than %d bytes", MaxPathBytes)
	case strings.IndexByte(p, 0) >= 0:
		return errors.New("path contains NUL")
	case !strings.HasPrefix(p, "/"):
		return errors.New("path is not absolute")
	case path.Clean(p) != p:
		return errors.New("path is not clean")
	}
	for _, c := range strings.Split(p[1:], "/") {
		if len(c) > MaxNameBytes {
			return fmt.Errorf("path component longer than %d bytes", MaxNameBytes)
		}
	}
	return nil
}

func validName(n string) bool {
	return n != "" && n != "." && n != ".." && len(n) <= MaxNameBytes && !strings.ContainsAny(n, "/\x00")
}
