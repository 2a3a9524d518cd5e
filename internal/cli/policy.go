package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clawbox/clawbox/api"
)

func (a *app) policyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "policy",
		Short:   "Inspect egress policy",
		Example: "  clawbox policy check https://api.github.com/repos/x/y",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	var req api.PolicyCheckRequest
	check := &cobra.Command{
		Use:   "check URL",
		Short: "Say what the egress gateway would decide for a request, and which rule decided",
		Long: `check asks the server what its egress gateway would decide for a request from a
container sandbox (--container), a tool (--tool), or by default under the server's
container policy, without sending anything. --door picks how the request would
come: proxy (POST /proxy, the default), forward (a forward-proxy request) or
connect (inside a CONNECT tunnel: the tunnel is decided first, and the answer
says whether it would be intercepted or passed through). It exits 0 when the
request would be allowed and 1 when it would be refused.`,
		Example: `  clawbox policy check https://api.github.com/repos/x/y
  clawbox policy check --method POST --container clawbox-1234 https://example.com/upload
  clawbox policy check --tool web_fetch https://en.wikipedia.org/wiki/Go
  clawbox policy check --door connect --container clawbox-1234 https://pypi.org/simple/`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("policy check takes one URL, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			req.URL = args[0]
			req.Method = strings.ToUpper(req.Method)
			res, err := c.PolicyCheck(cmd.Context(), req)
			if err != nil {
				return err
			}
			if a.jsonOut {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else {
				verdict := "BLOCKED"
				if res.Allowed {
					verdict = "ALLOWED"
				}
				fmt.Fprintf(a.stdout, "%s  %s %s\n", verdict, orDefault(req.Method, "GET"), req.URL)
				fmt.Fprintf(a.stdout, "policy:  %s\n", res.Policy)
				if res.Door != "" {
					fmt.Fprintf(a.stdout, "door:    %s\n", res.Door)
				}
				if res.Tunnel != "" {
					fmt.Fprintf(a.stdout, "tunnel:  %s\n", res.Tunnel)
				}
				if res.Rule != "" {
					fmt.Fprintf(a.stdout, "rule:    %s\n", res.Rule)
				}
				fmt.Fprintf(a.stdout, "reason:  %s\n", res.Reason)
				if len(res.Rules) == 0 {
					fmt.Fprintln(a.stdout, "rules:   none (no network)")
				} else {
					fmt.Fprintf(a.stdout, "rules:   %s\n", strings.Join(res.Rules, ", "))
				}
			}
			if !res.Allowed {
				return silentExit(ExitError)
			}
			return nil
		},
	}
	f := check.Flags()
	f.StringVar(&req.Method, "method", "GET", "HTTP method of the request")
	f.StringVar(&req.ContainerID, "container", "", "check the policy of this container sandbox")
	f.StringVar(&req.Tool, "tool", "", "check the policy of this tool")
	f.StringVar(&req.Door, "door", "", "the door the request would come through: proxy, forward or connect (default proxy)")
	check.MarkFlagsMutuallyExclusive("container", "tool")
	cmd.AddCommand(check)
	return cmd
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
