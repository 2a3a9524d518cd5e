package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/version"
)

func (a *app) healthCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Print the server's GET /health as JSON",
		Long: `health prints the server's health as JSON (with the details when a token is
available). It exits 0 when the status is "ok", 1 when it is degraded, and 3 when
the server cannot be reached.`,
		Example: `  clawbox health
  clawbox health --port 9801`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(false)
			if err != nil {
				return err
			}
			h, err := c.Health(cmd.Context())
			if err != nil {
				return err
			}
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(h); err != nil {
				return err
			}
			if h.Status != api.StatusOK {
				return silentExit(ExitError)
			}
			return nil
		},
	}
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show whether the server is up and the state of its components",
		Example: `  clawbox status
  clawbox status --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			h, err := c.Health(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(h)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "Server:\t%s\n", c.BaseURL())
			fmt.Fprintf(tw, "Status:\t%s\n", h.Status)
			if h.Version != "" {
				fmt.Fprintf(tw, "Version:\t%s\n", h.Version)
				fmt.Fprintf(tw, "Uptime:\t%ds\n", h.UptimeSeconds)
			} else {
				fmt.Fprintf(tw, "Details:\tnot shown: the token was not accepted\n")
			}
			names := make([]string, 0, len(h.Components))
			for n := range h.Components {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				comp := h.Components[n]
				line := comp.Status
				if comp.Detail != nil {
					d, _ := json.Marshal(comp.Detail)
					line += "  " + string(d)
				}
				fmt.Fprintf(tw, "  %s:\t%s\n", n, line)
			}
			printPools(tw, h)
			tw.Flush()
			if h.Status != api.StatusOK {
				return silentExit(ExitError)
			}
			return nil
		},
	}
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print clawbox's version, the commit it was built from and the Go version",
		Example: "  clawbox version     # clawbox dev (commit 0123abc…) go1.26.8",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(a.stdout, version.Read().Long())
			return nil
		},
	}
}

// printPools prints one line per warm pool of the docker component's detail.
func printPools(w io.Writer, h *api.HealthResponse) {
	d, _ := h.Containers()
	for _, p := range d.Pools {
		line := fmt.Sprintf("%d/%d ready, %d starting, %d hits, %d misses", p.Ready, p.Size, p.Filling, p.Hits, p.Misses)
		if p.Image != p.Name {
			line += " (" + p.Image + ")"
		}
		if p.Failures > 0 {
			line += fmt.Sprintf("; %d failed fills, last: %s", p.Failures, p.LastError)
		}
		fmt.Fprintf(w, "  pool %s:\t%s\n", p.Name, line)
	}
}
