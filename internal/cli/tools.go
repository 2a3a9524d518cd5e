package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/clawbox/clawbox/api"
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
	cmd := &cobra.Command{
		Use:   "build [TOOL_SOURCE_DIR...]",
		Short: "Compile Go tools to WASM (GOOS=wasip1) and install them into the tool directory",
		Long: `build compiles each tool source directory (default .) with GOOS=wasip1 GOARCH=wasm
and installs <name>.wasm and its manifest into the tool directory (sandbox.tool_dir of
the config, or --tool-dir). A running server with watch_tools picks them up at once.
It needs a Go toolchain (1.24 or later).`,
		Example: `  clawbox build ./greet
  clawbox build --tool-dir /tmp/tools ./a ./b`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			dest := toolDir
			if dest == "" {
				cfg, err := a.loadConfig()
				if err != nil {
					return err
				}
				dest = cfg.Sandbox.ToolDir
			}
			for _, src := range args {
				fmt.Fprintf(a.stderr, "building %s ...\n", src)
				if err := toolbuild.Build(cmd.Context(), src, dest, a.stderr); err != nil {
					return fmt.Errorf("build %s: %w", src, err)
				}
				fmt.Fprintf(a.stdout, "installed %s into %s\n", filepath.Base(filepath.Clean(src)), dest)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&toolDir, "tool-dir", "", "install here instead of the config's sandbox.tool_dir")
	return cmd
}
