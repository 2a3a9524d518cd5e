package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/clawbox/clawbox/api"
)

func (a *app) credsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "creds",
		Short: "Manage the credentials the gateway injects (values are never shown)",
		Example: `  clawbox creds add github --host api.github.com
  clawbox creds list
  clawbox creds rm github`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.credsAddCommand(), a.credsListCommand(), a.credsRmCommand())
	return cmd
}

func (a *app) credsAddCommand() *cobra.Command {
	var (
		req    api.PutCredentialRequest
		prefix string
	)
	cmd := &cobra.Command{
		Use:   "add NAME --host HOST",
		Short: "Add or replace a credential; the value is read without echo, or from stdin",
		Long: `add stores a credential in the server's encrypted store. The value is read from the
terminal without echo, or from standard input when it is piped; it is never taken
from the command line, so it stays out of shell history and process lists.

Sandboxes and tools get a credential only when it is both requested and allowed, and
only on requests to a destination that matches its binding (host, port, path prefix,
methods, and https unless --allow-http).`,
		Example: `  clawbox creds add GITHUB_TOKEN --host api.github.com
  printf '%s' "$OPENAI_KEY" | clawbox creds add OPENAI --host api.openai.com --placeholder
  clawbox creds add SLACK --host '*.slack.com' --header Authorization --prefix 'Bearer '`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("creds add takes one credential NAME")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Host == "" {
				return usageErrorf("--host is required")
			}
			if cmd.Flags().Changed("prefix") {
				req.Prefix = &prefix
			}
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			val, err := a.readSecret(fmt.Sprintf("Value for %s: ", args[0]))
			if err != nil {
				return err
			}
			req.Value = val
			cred, err := c.PutCredential(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return writeJSONOut(a.stdout, cred)
			}
			fmt.Fprintf(a.stdout, "Stored credential %s for %s\n", cred.Name, cred.Host)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Host, "host", "", "destination host: exact (api.github.com) or *.domain (required)")
	f.StringVar(&req.Header, "header", "", "header to set (default Authorization)")
	f.StringVar(&prefix, "prefix", "", `text before the value in the header (default "Bearer ")`)
	f.StringVar(&req.PathPrefix, "path-prefix", "", "only requests under this path")
	f.StringSliceVar(&req.Methods, "method", nil, "only these methods (repeatable)")
	f.IntVar(&req.Port, "dest-port", 0, "only this destination port (default the scheme's)")
	f.BoolVar(&req.AllowHTTP, "allow-http", false, "also inject over plain http (not recommended)")
	f.BoolVar(&req.Placeholder, "placeholder", false, "give sandboxes a format-preserving dummy that the gateway swaps for the value")
	f.BoolVar(&req.PlaceholderQuery, "placeholder-query", false, "with --placeholder: also swap it in the query string")
	return cmd
}

// readSecret reads a value without echo from a terminal, or all of stdin when piped
// (one trailing newline removed).
func (a *app) readSecret(prompt string) (string, error) {
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(a.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", fmt.Errorf("read the value: %w", err)
		}
		return string(bytes.TrimRight(b, "\r\n")), nil
	}
	b, err := io.ReadAll(io.LimitReader(a.stdin, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read the value from stdin: %w", err)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" {
		return "", usageErrorf("no value: type it at the prompt or pipe it on stdin")
	}
	return v, nil
}

func (a *app) credsListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List credentials and their bindings (never values)",
		Example: "  clawbox creds list\n  clawbox creds list --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			list, err := c.Credentials(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				if list == nil {
					list = []api.Credential{}
				}
				return writeJSONOut(a.stdout, api.CredentialList{Credentials: list})
			}
			if len(list) == 0 {
				fmt.Fprintln(a.stdout, "No credentials stored. Add one with: clawbox creds add NAME --host HOST")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tHOST\tMODE\tHEADER\tLIMITS")
			for _, c := range list {
				mode := "header"
				if c.Placeholder {
					mode = "placeholder"
				}
				var limits []string
				if c.PathPrefix != "" {
					limits = append(limits, "path "+c.PathPrefix)
				}
				if len(c.Methods) > 0 {
					limits = append(limits, strings.Join(c.Methods, ","))
				}
				if c.Port != 0 {
					limits = append(limits, fmt.Sprintf("port %d", c.Port))
				}
				if c.AllowHTTP {
					limits = append(limits, "http allowed")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, c.Host, mode, c.Header, strings.Join(limits, "; "))
			}
			return tw.Flush()
		},
	}
}

func (a *app) credsRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"remove"},
		Short:   "Delete a credential",
		Example: "  clawbox creds rm GITHUB_TOKEN",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("creds rm takes one credential NAME")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			if err := c.DeleteCredential(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Deleted credential %s\n", args[0])
			return nil
		},
	}
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
