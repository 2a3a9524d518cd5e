package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
)

func (a *app) execCommand() *cobra.Command {
	var (
		envs         []string
		workdir      string
		timeout      time.Duration
		interactive  bool
		tty          bool
		stdinLiteral string
	)
	cmd := &cobra.Command{
		Use:   "exec [flags] ID -- COMMAND [ARG...]",
		Short: "Run a command in a running container sandbox",
		Long: `exec runs COMMAND in the running sandbox ID, as the sandbox user, through the
sandbox's supervisor, and streams its output. Its exit code is the command's (128+N
when signal N ended it); clawbox's own failures keep their codes: 1 (the server
refused, say 404 unknown sandbox or 409 not running), 2 (bad command line), 3 (server
not reachable).

-i passes this terminal's stdin to the command (end of file closes it). -t runs the
command on a pseudo-terminal: this terminal goes raw, its size follows window
resizes, and Ctrl-C reaches the command as the byte 0x03, like a local shell; the
terminal is restored however exec ends. -t needs stdin to be a terminal.

--json waits for the command and prints its ExecResult (stdout, stderr, exit_code,
timed_out, ended_by, truncated, duration_ms) instead of streaming.`,
		Example: `  clawbox exec clawbox-1a2b -- python3 -c 'print(1+1)'
  clawbox exec --workdir /workspace -e DEBUG=1 --timeout 30s clawbox-1a2b -- make test
  tar -cf - . | clawbox exec -i clawbox-1a2b -- tar -C /workspace -xf -
  clawbox exec -it clawbox-1a2b -- sh`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if dash < 0 {
				return usageErrorf("exec needs ID -- COMMAND [ARG...], such as: clawbox exec %s -- ls /", orDefault(first(args), "ID"))
			}
			if dash != 1 {
				return usageErrorf("exec takes one sandbox ID before --, got %q", args[:dash])
			}
			id, command := args[0], args[dash:]
			if len(command) == 0 {
				return usageErrorf("no COMMAND after --")
			}
			req := api.ExecRequest{Cmd: command, Workdir: workdir, TTY: tty, Stdin: stdinLiteral}
			if timeout < 0 {
				return usageErrorf("--timeout must be positive")
			}
			req.TimeoutMS = timeout.Milliseconds()
			env, err := keyValues("--env", envs)
			if err != nil {
				return err
			}
			req.Env = env
			if a.jsonOut && (interactive || tty) {
				return usageErrorf("--json cannot be combined with -i or -t")
			}
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var exit api.ExecExit
			switch {
			case a.jsonOut:
				res, err := c.Exec(ctx, id, req)
				if err != nil {
					return err
				}
				if err := writeJSONOut(a.stdout, res); err != nil {
					return err
				}
				exit = res.ExecExit
			case tty:
				exit, err = a.execTTY(ctx, c, id, req, interactive)
			case interactive:
				exit, err = a.execPipes(ctx, c, id, req)
			default:
				exit, err = c.ExecStream(ctx, id, req, a.stdout, a.stderr)
			}
			if err != nil {
				if ctx.Err() != nil {
					return silentExit(130)
				}
				return err
			}
			return a.passExit(exit)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&envs, "env", "e", nil, "environment variable KEY=VALUE for the command (repeatable; the spawn env policy applies)")
	f.StringVarP(&workdir, "workdir", "w", "", "working directory inside the sandbox (absolute)")
	f.DurationVar(&timeout, "timeout", 0, "end the command after this long, e.g. 30s (default containers.exec_timeout_ms)")
	f.BoolVarP(&interactive, "interactive", "i", false, "pass stdin to the command")
	f.BoolVarP(&tty, "tty", "t", false, "run the command on a pseudo-terminal (needs a terminal)")
	f.StringVar(&stdinLiteral, "stdin", "", "text to write to the command's stdin (then closed)")
	cmd.MarkFlagsMutuallyExclusive("stdin", "interactive")
	return cmd
}

func first(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}

// passExit ends exec with the command's exit status, saying on stderr why when the
// command did not exit by itself.
func (a *app) passExit(exit api.ExecExit) error {
	switch exit.EndedBy {
	case "", api.ExecEndedExit:
	case api.ExecEndedTimeout:
		fmt.Fprintln(a.stderr, "clawbox: the command hit its exec timeout and was killed")
	case api.ExecEndedDeadline:
		fmt.Fprintln(a.stderr, "clawbox: the sandbox reached its deadline; the command was killed")
	case api.ExecEndedSandbox:
		fmt.Fprintln(a.stderr, "clawbox: the sandbox stopped while the command ran")
	case api.ExecEndedSupervisorLost:
		fmt.Fprintln(a.stderr, "clawbox: the sandbox's supervisor went away while the command ran")
	default:
		fmt.Fprintf(a.stderr, "clawbox: the command ended (%s)\n", exit.EndedBy)
	}
	if exit.Truncated && !a.jsonOut {
		fmt.Fprintln(a.stderr, "clawbox: output was cut at the server's per-stream cap")
	}
	code := exit.ExitCode
	if code == 0 && exit.Signal > 0 {
		code = 128 + exit.Signal
	}
	if code < 0 || code > 255 {
		code = ExitError
	}
	if code == 0 {
		return nil
	}
	return silentExit(code)
}

// execPipes runs an interactive exec without a terminal: stdin is copied to the
// command until end of file, then closed.
func (a *app) execPipes(ctx context.Context, c *client.Client, id string, req api.ExecRequest) (api.ExecExit, error) {
	s, err := c.ExecInteractive(ctx, id, req, a.stdout, a.stderr)
	if err != nil {
		return api.ExecExit{}, err
	}
	defer s.Close()
	go a.pumpStdin(s)
	return s.Wait()
}

// pumpStdin copies stdin to the session until end of file (then closes the
// command's stdin) or the session ends. A read of a terminal cannot be
// interrupted: when the session ends first this goroutine stays blocked in Read
// until the next input or the process's exit, which follows at once.
func (a *app) pumpStdin(s *client.ExecSession) {
	if a.stdin == nil {
		s.CloseStdin()
		return
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := a.stdin.Read(buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				s.CloseStdin()
			}
			return
		}
		select {
		case <-s.Done():
			return
		default:
		}
	}
}

// fdOf returns the file descriptor behind r or w, if it is a file.
func fdOf(v any) (int, bool) {
	f, ok := v.(interface{ Fd() uintptr })
	if !ok {
		return 0, false
	}
	return int(f.Fd()), true
}

// execTTY runs the command on a pseudo-terminal, with this terminal in raw mode.
func (a *app) execTTY(ctx context.Context, c *client.Client, id string, req api.ExecRequest, interactive bool) (api.ExecExit, error) {
	fd, ok := fdOf(a.stdin)
	if !ok || !term.IsTerminal(fd) {
		return api.ExecExit{}, usageErrorf("-t needs stdin to be a terminal; use -i alone for pipes")
	}
	if cols, rows, err := term.GetSize(fd); err == nil && rows > 0 && cols > 0 {
		req.Rows, req.Cols = uint16(min(rows, 65535)), uint16(min(cols, 65535))
	}
	s, err := c.ExecInteractive(ctx, id, req, a.stdout, nil)
	if err != nil {
		return api.ExecExit{}, err
	}
	defer s.Close()
	old, err := term.MakeRaw(fd)
	if err != nil {
		return api.ExecExit{}, fmt.Errorf("make the terminal raw: %w", err)
	}
	// Restored on every path out of here, including a panic.
	defer term.Restore(fd, old)

	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	resizeDone := make(chan struct{})
	defer func() { <-resizeDone }()
	go func() {
		defer close(resizeDone)
		for {
			select {
			case <-s.Done():
				return
			case <-winch:
				if cols, rows, err := term.GetSize(fd); err == nil && rows > 0 && cols > 0 {
					s.Resize(uint16(min(rows, 65535)), uint16(min(cols, 65535)))
				}
			}
		}
	}()
	if interactive {
		go a.pumpStdin(s)
	} else {
		s.CloseStdin()
	}
	exit, err := s.Wait()
	return exit, err
}
