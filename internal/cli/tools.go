package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/toolbuild"
)

func (a *app) runCommand() *cobra.Command {
	var timeout int64
	cmd := &cobra.Command{
		Use:   "run TOOL [PARAMS_JSON | -]",
		Short: "Execute a WASM tool with JSON parameters and print its output",
		Long: `run executes a WASM tool on the server and prints its JSON output. PARAMS_JSON is
the tool's input ("-" reads it from stdin; default {}). With --json the whole response
is printed, with its metadata (execution time, the tool's log lines, redactions).`,
		Example: `  clawbox run echo '{"hello":"world"}'
  clawbox run hash '{"data":"abc"}'
  echo '{"url":"https://example.com"}' | clawbox run web_fetch -`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageErrorf("run takes a TOOL and optional PARAMS_JSON")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			params := []byte("{}")
			if len(args) == 2 {
				params = []byte(args[1])
				if args[1] == "-" {
					b, err := io.ReadAll(io.LimitReader(a.stdin, 16<<20))
					if err != nil {
						return err
					}
					params = b
				}
			}
			if !json.Valid(params) {
				return usageErrorf("PARAMS_JSON is not valid JSON: %s", truncate(string(params), 80))
			}
			req := api.ExecuteRequest{Tool: args[0], Params: json.RawMessage(params)}
			if timeout > 0 {
				req.Capabilities = &api.ExecuteCapabilities{Resources: &api.ExecuteResources{TimeoutMS: &timeout}}
			}
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			resp, err := c.Execute(cmd.Context(), req)
			if err != nil {
				if e, ok := api.AsError(err); ok && e.Code == api.CodeToolFailed {
					if d, ok := e.Details.(map[string]any); ok {
						if s, ok := d["stderr"].(string); ok && s != "" {
							fmt.Fprintf(a.stderr, "--- stderr of %s ---\n%s\n", args[0], strings.TrimRight(s, "\n"))
						}
					}
				}
				return err
			}
			if a.jsonOut {
				return writeJSONOut(a.stdout, resp)
			}
			for _, l := range resp.Metadata.Logs {
				fmt.Fprintf(a.stderr, "[%s] %s\n", l.Level, l.Message)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, resp.Output, "", "  "); err != nil {
				pretty.Reset()
				pretty.Write(resp.Output)
			}
			fmt.Fprintln(a.stdout, pretty.String())
			return nil
		},
	}
	cmd.Flags().Int64Var(&timeout, "timeout-ms", 0, "wall-time limit of this call (clamped by the manifest and the server)")
	return cmd
}

func (a *app) toolsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tools",
		Short: "List, register and reload WASM tools",
		Example: `  clawbox tools list
  clawbox tools register ./greet/manifest.json
  clawbox tools reload`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the loaded tools",
		Example: "  clawbox tools list\n  clawbox tools list --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			tools, err := c.Tools(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				if tools == nil {
					tools = []api.ToolInfo{}
				}
				return writeJSONOut(a.stdout, tools)
			}
			if len(tools) == 0 {
				fmt.Fprintln(a.stdout, "No tools loaded. Put <name>.wasm in the tool directory, or: clawbox new-tool NAME && clawbox build NAME")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tNETWORK\tDESCRIPTION")
			for _, t := range tools {
				network := "none"
				if t.Network != nil && len(t.Network.Allowlist) > 0 {
					network = strings.Join(t.Network.Allowlist, ",")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Tool.Name, t.Tool.Version, truncate(network, 40), truncate(t.Tool.Description, 60))
			}
			return tw.Flush()
		},
	}
	register := &cobra.Command{
		Use:     "register MANIFEST.json",
		Short:   "Register (or replace) a tool's manifest on the server (persisted)",
		Example: "  clawbox tools register examples/tools/echo/manifest.json",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("tools register takes one MANIFEST file")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var m api.ToolManifest
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&m); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			res, err := c.RegisterTool(cmd.Context(), m)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return writeJSONOut(a.stdout, res)
			}
			fmt.Fprintf(a.stdout, "Registered the manifest of %s\n", res.Tool)
			return nil
		},
	}
	reload := &cobra.Command{
		Use:     "reload",
		Short:   "Reload the server's tool directory now",
		Example: "  clawbox tools reload",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			res, err := c.ReloadTools(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				return writeJSONOut(a.stdout, res)
			}
			fmt.Fprintf(a.stdout, "Loaded %d tools: %s\n", len(res.Tools), strings.Join(res.Tools, ", "))
			for _, f := range res.Failed {
				fmt.Fprintf(a.stdout, "  skipped %s (%s): %s\n", f.Name, f.File, f.Error)
			}
			if len(res.Failed) > 0 {
				return silentExit(ExitError)
			}
			return nil
		},
	}
	cmd.AddCommand(list, register, reload)
	return cmd
}

func (a *app) newToolCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "new-tool NAME",
		Short: "Scaffold a Go WASM tool that builds as it is",
		Long: `new-tool writes DIR/NAME: main.go (a toolkit tool), manifest.json, go.mod and a copy
of the toolkit, so it builds offline with any Go toolchain. Build and install it with
'clawbox build DIR/NAME'.`,
		Example: `  clawbox new-tool greet && clawbox build greet && clawbox run greet '{"name":"you"}'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("new-tool takes one NAME")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := toolbuild.Scaffold(dir, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Created %s\nBuild and install it with: clawbox build %s\n", filepath.Join(dir, args[0]), filepath.Join(dir, args[0]))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "out", ".", "directory to create the tool in")
	return cmd
}

func (a *app) buildCommand() *cobra.Command {
	var toolDir string
	var wait bool
	var waitTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "build [TOOL_SOURCE_DIR...]",
		Short: "Compile Go tools to WASM (GOOS=wasip1) and install them into the tool directory",
		Long: `build compiles each tool source directory (default .) with GOOS=wasip1 GOARCH=wasm
and installs <name>.wasm and its manifest into the tool directory (sandbox.tool_dir of
the config, or --tool-dir). It needs a Go toolchain (1.24 or later).

Then, unless --wait=false, it waits (at most --wait-timeout) until the server has loaded
this build of each tool, matched by the module's sha256, so that 'clawbox run' works as
soon as build returns. A module the server cannot load is an error (exit 1) showing the
server's message. With no server reachable, or a server whose tool directory is another
one, build says so and exits 0: a server loads the tool when it starts or reloads.`,
		Example: `  clawbox build ./greet
  clawbox new-tool greet && clawbox build ./greet && clawbox run greet '{"name":"you"}'
  clawbox build --tool-dir /tmp/tools --wait=false ./a ./b`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			if waitTimeout <= 0 {
				return usageErrorf("--wait-timeout must be positive")
			}
			dest := toolDir
			if dest == "" {
				cfg, err := a.loadConfig()
				if err != nil {
					return err
				}
				dest = cfg.Sandbox.ToolDir
			}
			var built []toolbuild.Result
			for _, src := range args {
				fmt.Fprintf(a.stderr, "building %s ...\n", src)
				res, err := toolbuild.Build(cmd.Context(), src, dest, a.stderr)
				if err != nil {
					return fmt.Errorf("build %s: %w", src, err)
				}
				fmt.Fprintf(a.stdout, "installed %s into %s\n", res.Name, dest)
				built = append(built, res)
			}
			if !wait {
				return nil
			}
			c, err := a.newClient(true)
			if errors.Is(err, client.ErrUnreachable) {
				fmt.Fprintln(a.stdout, "no clawbox server is reachable: a server loads the tools when it starts (clawbox serve)")
				return nil
			}
			if errors.Is(err, errNoToken) {
				// The build itself succeeded: a server answers, but without
				// its token build cannot ask it whether it loaded the tool.
				fmt.Fprintf(a.stdout, "not waiting for the server to load the tools: %v\n", err)
				return nil
			}
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), waitTimeout)
			defer cancel()
			for i, res := range built {
				err := a.waitLoaded(ctx, c, res, waitTimeout)
				if errors.Is(err, errNoServer) && i == 0 {
					fmt.Fprintln(a.stdout, "no clawbox server is reachable: a server loads the tools when it starts (clawbox serve)")
					return nil
				}
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&toolDir, "tool-dir", "", "install here instead of the config's sandbox.tool_dir")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait until the server has loaded the new build (or reports why not)")
	cmd.Flags().DurationVar(&waitTimeout, "wait-timeout", 5*time.Minute, "how long to wait for the server to load the tools")
	return cmd
}

// notLoaded is waitLoaded's error when the time is up.
func notLoaded(name string, timeout time.Duration, last api.ToolStatus) error {
	state := "not loaded"
	if last.Loading {
		state = "still loading tools"
	}
	return fmt.Errorf("the server has not loaded %s within %s (%s); see clawbox tools list and the server's log, or raise --wait-timeout", name, timeout, state)
}

// errNoServer is waitLoaded's answer when the server did not answer its first question.
var errNoServer = errors.New("no clawbox server is reachable")

// waitLoaded polls the server's status of the tool until it has loaded the module
// build installed (the same sha256) or reports that module's load error. It returns
// nil without waiting when the server's tool directory does not hold this module:
// the server watches another directory.
func (a *app) waitLoaded(ctx context.Context, c *client.Client, res toolbuild.Result, timeout time.Duration) error {
	fmt.Fprintf(a.stderr, "waiting for the server to load %s (sha256 %.12s) ...\n", res.Name, res.SHA256)
	reloaded := false
	sleep := 50 * time.Millisecond
	var last api.ToolStatus
	for asked := false; ; asked = true {
		st, err := c.ToolStatus(ctx, res.Name)
		switch {
		case err != nil && ctx.Err() != nil:
			return notLoaded(res.Name, timeout, last)
		case errors.Is(err, client.ErrUnreachable) && !asked:
			return errNoServer
		case errors.Is(err, client.ErrUnreachable):
			return fmt.Errorf("the server stopped answering while it was loading %s: %w", res.Name, err)
		case err != nil:
			if e, ok := api.AsError(err); ok && e.Code == api.CodeNotFound {
				fmt.Fprintf(a.stdout, "the server does not report tool status (an older version): check clawbox tools list\n")
				return nil
			}
			return fmt.Errorf("installed %s, but asking the server whether it loaded it failed: %w", res.Name, err)
		}
		last = *st
		switch {
		case st.SHA256 == res.SHA256:
			fmt.Fprintf(a.stdout, "the server loaded %s: clawbox run %s '{}'\n", res.Name, res.Name)
			return nil
		case st.LoadError != nil && st.LoadError.SHA256 == res.SHA256:
			msg := st.LoadError.Error
			if st.LoadError.Code != "" {
				msg += " (" + st.LoadError.Code + ")"
			}
			return fmt.Errorf("the server could not load %s: %s", res.Name, msg)
		case !st.Loading && st.FileSHA256 != res.SHA256:
			// The file in the server's tool directory is not this build.
			fmt.Fprintf(a.stdout, "the server does not load tools from %s (its tool directory holds no such %s.wasm): not waiting for it\n", filepath.Dir(res.Path), res.Name)
			return nil
		case !st.Loading && !st.Watching && !reloaded:
			// The server does not watch its directory (sandbox.watch_tools = false).
			if _, err := c.ReloadTools(ctx); err != nil && ctx.Err() == nil {
				return fmt.Errorf("installed %s, but reloading the server's tools failed: %w", res.Name, err)
			}
			reloaded = true
			continue
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			return notLoaded(res.Name, timeout, last)
		}
		sleep = min(2*sleep, time.Second)
	}
}
