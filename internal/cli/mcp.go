package cli

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/clawbox/clawbox/internal/mcp"
	"github.com/clawbox/clawbox/internal/version"
)

func (a *app) mcpCommand() *cobra.Command {
	var (
		poll    time.Duration
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve clawbox to an MCP client over stdio (bridging to the running server)",
		Long: `mcp speaks the Model Context Protocol on stdin and stdout, for MCP clients such as
Claude Code or Cursor that start it as a subprocess. It offers every WASM tool of the
running clawbox server (with its manifest's input schema) and the container tools
sandbox_spawn, sandbox_logs, sandbox_kill and sandbox_list, and tells the client when
the server's tools change (it checks every --poll).

It finds the server and token like every client command (flags, CLAWBOX_HOST,
CLAWBOX_PORT, CLAWBOX_AUTH_TOKEN, or the config in ~/.clawbox). Only MCP messages are
written to stdout; diagnostics go to stderr. The server also serves MCP itself over
streamable HTTP at /mcp (with the same bearer token).`,
		Example: `  clawbox mcp                              # what an MCP client runs
  claude mcp add clawbox -- clawbox mcp    # register it with Claude Code
  clawbox --port 9900 mcp --poll 10s       # another server; check for new tools every 10 s`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if poll < 0 {
				return usageErrorf("--poll must not be negative")
			}
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
			s, err := mcp.New(mcp.Config{Backend: c, Templates: cfg.Images.Templates, Version: version.String(), Logger: log})
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			// Fail now, with the exit code of the cause, rather than serve an MCP
			// client a server that does not answer.
			if _, err := s.Refresh(ctx); err != nil {
				return err
			}
			t := &sdk.IOTransport{Reader: io.NopCloser(a.stdin), Writer: nopWriteCloser{a.stdout}}
			err = s.Serve(ctx, t, poll)
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
				return nil // the client hung up, or we were interrupted
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&poll, "poll", 3*time.Second, "how often to check the server's tool list for changes (0: never)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log MCP activity to stderr")
	return cmd
}

// nopWriteCloser keeps the transport from closing the writer it was given.
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
