package api

import "time"

// ExecRequest is the body of POST /containers/{id}/exec: one command run in a
// running sandbox by its supervisor, as the sandbox user.
type ExecRequest struct {
	// Cmd is the program and its arguments (no shell unless you name one).
	Cmd []string `json:"cmd"`
	// Env is added to the sandbox's environment for this command; it passes the
	// same env policy as spawn (reserved and clawbox-owned keys are refused).
	Env map[string]string `json:"env,omitempty"`
	// Workdir is an absolute directory inside the sandbox; empty means the
	// image's working directory (or /).
	Workdir string `json:"workdir,omitempty"`
	// TimeoutMS ends the command after this long (0: containers.exec_timeout_ms).
	// It is separate from the sandbox's own deadline; ExecExit.EndedBy says which
	// one ended the command.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Stdin is written to the command's standard input, which is then closed.
	// At most one of Stdin and StdinBase64.
	Stdin       string `json:"stdin,omitempty"`
	StdinBase64 string `json:"stdin_base64,omitempty"`
	// TTY runs the command on a pseudo-terminal (stdout and stderr merge); Rows
	// and Cols are its first size.
	TTY  bool   `json:"tty,omitempty"`
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
}

// Exec stream names.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// Why an exec ended (ExecExit.EndedBy).
const (
	ExecEndedExit           = "exit"             // the command exited (or was killed by a signal)
	ExecEndedTimeout        = "exec_timeout"     // the exec's own timeout_ms passed
	ExecEndedDeadline       = "sandbox_deadline" // the sandbox's deadline passed first
	ExecEndedSandbox        = "sandbox_ended"    // the sandbox stopped (killed, exited)
	ExecEndedSupervisorLost = "supervisor_lost"  // the in-sandbox supervisor went away
)

// ExecFrame is one NDJSON line of a streamed exec. Output frames carry Stream and
// Data (valid UTF-8) or DataBase64 (any bytes); the last frame carries Exit, or
// Error when the exec could not finish.
type ExecFrame struct {
	Stream     string `json:"stream,omitempty"`
	Data       string `json:"data,omitempty"`
	DataBase64 string `json:"data_base64,omitempty"`
	*ExecExit
	Error *Error `json:"error,omitempty"`
}

// ExecExit is how an exec ended.
type ExecExit struct {
	ExitCode int `json:"exit_code"`
	// Signal is the signal that ended the command, if one did.
	Signal   int    `json:"signal,omitempty"`
	TimedOut bool   `json:"timed_out"`
	EndedBy  string `json:"ended_by"`
	// Truncated reports that stdout or stderr went over the output cap (the rest
	// was dropped, the command kept running).
	Truncated  bool  `json:"truncated"`
	DurationMS int64 `json:"duration_ms"`
}

// ExecResult is the answer of POST /containers/{id}/exec?stream=false. Output
// that is not valid UTF-8 is in StdoutBase64 / StderrBase64 instead.
type ExecResult struct {
	Stdout       string `json:"stdout"`
	Stderr       string `json:"stderr"`
	StdoutBase64 string `json:"stdout_base64,omitempty"`
	StderrBase64 string `json:"stderr_base64,omitempty"`
	ExecExit
}

// FileEntry is one entry of a directory listing.
type FileEntry struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Mode is the permission bits (e.g. 420 for 0644).
	Mode      uint32 `json:"mode"`
	IsDir     bool   `json:"is_dir"`
	IsSymlink bool   `json:"is_symlink,omitempty"`
	// IsSpecial marks a FIFO, socket or device: it cannot be read as a file.
	IsSpecial bool      `json:"is_special,omitempty"`
	MTime     time.Time `json:"mtime"`
}

// FileList is the answer of GET /containers/{id}/files?path=/dir&list=true.
type FileList struct {
	Path    string      `json:"path"`
	Entries []FileEntry `json:"entries"`
}

// FileWritten is the answer of PUT /containers/{id}/files.
type FileWritten struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Mode uint32 `json:"mode"`
}
