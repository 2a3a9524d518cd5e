// Package cli is the clawbox command line: thin cobra commands that parse flags, call
// the daemon or the Go client, and print human tables or --json. Every command writes
// only to the writers it is given and returns an error carrying its exit code.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/version"
)

// Exit codes that scripts can rely on.
const (
	ExitOK          = 0 // success
	ExitError       = 1 // the server (or the local operation) reported an error
	ExitUsage       = 2 // bad command line
	ExitUnreachable = 3 // the server could not be reached
)

// exitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// silentExit ends the command with a code and nothing more to print.
type silentExit int

func (e silentExit) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	var se silentExit
	var ee *exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &se):
		return int(se)
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, client.ErrUnreachable):
		return ExitUnreachable
	default:
		return ExitError
	}
}

// app holds the global flags and the process environment of one invocation.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            config.Env

	dir        string
	configPath string
	host       string
	port       int
	token      string
	jsonOut    bool
}

// Run executes the clawbox command line and returns the exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(ctx, &app{stdin: stdin, stdout: stdout, stderr: stderr}, args)
}

func run(ctx context.Context, a *app, args []string) int {
	stderr := a.stderr
	stdout, stdin := a.stdout, a.stdin
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil {
		var se silentExit
		if !errors.As(err, &se) {
			fmt.Fprintf(stderr, "clawbox: %s\n", errorText(err))
		}
		if exitCode(err) == ExitUsage {
			fmt.Fprintln(stderr, "Run 'clawbox --help' for usage.")
		}
	}
	return exitCode(err)
}

// errorText renders an error for the terminal: an API error as "message (code)".
func errorText(err error) string {
	if e, ok := api.AsError(err); ok {
		return fmt.Sprintf("%s (%s)", e.Message, e.Code)
	}
	return err.Error()
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "clawbox",
		Short: "Run untrusted agent code in WASM or hardened containers, behind an egress gateway",
		Long: `clawbox runs the code of AI agents in WASM (wazero) or in hardened Docker containers.
Every byte that leaves a sandbox goes through clawbox's egress gateway: policy,
SSRF-safe dialing, credential injection, leak detection, rate limits and audit.

Exit codes: 0 success, 1 error reported by the server or the operation,
2 bad command line, 3 server not reachable.`,
		Example: `  clawbox serve                 # initialise ~/.clawbox on first run, then serve
  clawbox status                # is the server up, and what does it run?`,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, err: err}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.dir, "dir", "", "clawbox directory (default $CLAWBOX_HOME or ~/.clawbox)")
	pf.StringVar(&a.configPath, "config", "", "config file (default <dir>/config.toml)")
	pf.StringVar(&a.host, "host", "", "server host (default from config, $CLAWBOX_HOST, 127.0.0.1)")
	pf.IntVar(&a.port, "port", 0, "server port (default from config, $CLAWBOX_PORT, 9800)")
	pf.StringVar(&a.token, "token", "", "API token (default $CLAWBOX_AUTH_TOKEN or the token file of the config)")
	pf.BoolVar(&a.jsonOut, "json", false, "print JSON instead of human-readable output")

	root.AddCommand(
		a.initCommand(),
		a.serveCommand(),
		a.healthCommand(),
		a.statusCommand(),
		a.versionCommand(),
		a.auditCommand(),
		a.policyCommand(),
		a.credsCommand(),
		a.spawnCommand(),
		a.psCommand(),
		a.logsCommand(),
		a.killCommand(),
		a.execCommand(),
		a.cpCommand(),
		a.extendCommand(),
		a.agentCommand(),
		a.imageCommand(),
		a.runCommand(),
		a.toolsCommand(),
		a.newToolCommand(),
		a.buildCommand(),
		a.mcpCommand(),
	)
	return root
}

// homeDir returns the clawbox directory from --dir, $CLAWBOX_HOME or ~/.clawbox.
func (a *app) homeDir() (string, error) {
	if a.dir != "" {
		return filepath.Abs(a.dir)
	}
	return config.HomeDir(a.env)
}

// configFile returns the config file path and whether it was named explicitly.
func (a *app) configFile() (string, bool, error) {
	if a.configPath != "" {
		p, err := filepath.Abs(a.configPath)
		return p, true, err
	}
	d, err := a.homeDir()
	if err != nil {
		return "", false, err
	}
	return filepath.Join(d, config.FileName), false, nil
}

// loadConfig loads the config file; when it does not exist and was not named
// explicitly, it returns the defaults (with environment overrides) instead.
func (a *app) loadConfig() (*config.Config, error) {
	p, explicit, err := a.configFile()
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(p, a.env)
	if err == nil || explicit || !errors.Is(err, os.ErrNotExist) {
		return cfg, err
	}
	// The file was absent when read. A first `serve` may have written it since
	// (deciding on a later stat alone reported "no such file"): read it again then.
	if _, statErr := os.Stat(p); statErr == nil {
		return config.Load(p, a.env)
	}
	d, _ := a.homeDir()
	return config.Parse(nil, d, a.env)
}

// newClient builds an API client from flags, environment and config. needToken says
// whether a missing token is an error.
func (a *app) newClient(needToken bool) (*client.Client, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	host, port := cfg.Server.Host, cfg.Server.Port
	if a.host != "" {
		host = a.host
	}
	if a.port != 0 {
		port = a.port
	}
	// The SDK's discovery resolves a wildcard bind address to loopback.
	base := client.ServerURL(host, port)
	token := a.token
	if token == "" {
		t, err := cfg.Token()
		if err != nil && needToken {
			// With no token the usual cause is that no server was ever started here:
			// say that (exit 3, with the hint to run `clawbox serve`) when nothing
			// answers, and name the missing token only when a server does.
			if uerr := a.probeUnreachable(base); uerr != nil {
				return nil, uerr
			}
			return nil, fmt.Errorf("%w: pass --token, set %s, or run `clawbox init` (%v)", errNoToken, config.EnvAuthToken, err)
		}
		token = t
	}
	// A command's own work (a tool run, a reload that recompiles, a spawn on a busy
	// engine) can take minutes on a loaded machine; Ctrl-C still stops it at once.
	return client.New(base, client.Options{Token: token, Timeout: cliTimeout})
}

// errNoToken is the error of a client command when a server answers but no API
// token is known.
var errNoToken = errors.New("no API token")

// cliTimeout bounds one API call of a client command.
const cliTimeout = 10 * time.Minute

// probeUnreachable asks the server's public /health without a token and returns the
// client's unreachable error when nothing answers there, nil otherwise.
func (a *app) probeUnreachable(base string) error {
	c, err := client.New(base, client.Options{})
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Health(ctx); errors.Is(err, client.ErrUnreachable) {
		return err
	}
	return nil
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
