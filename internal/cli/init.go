package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/clawbox/clawbox/internal/home"
	"github.com/clawbox/clawbox/internal/wasm/exampletools"
)

func (a *app) initCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the clawbox directory: config, API token, master key, tools, state",
		Long: `init creates the clawbox directory (--dir, $CLAWBOX_HOME or ~/.clawbox) with a commented
config.toml, the API token and the credential master key (all mode 0600), the tool,
audit, proxies and workspaces directories, and the state database.

Running it again changes nothing that exists: it reports what it found.`,
		Example: `  clawbox init
  clawbox init --dir /srv/clawbox`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := a.homeDir()
			if err != nil {
				return err
			}
			res, err := home.Init(cmd.Context(), dir, exampletools.Install)
			if err != nil {
				return err
			}
			return a.printInit(res)
		},
	}
}

func (a *app) printInit(res *home.Result) error {
	if a.jsonOut {
		type item struct {
			Path    string `json:"path"`
			Created bool   `json:"created"`
			Warning string `json:"warning,omitempty"`
		}
		out := struct {
			Dir    string `json:"dir"`
			Config string `json:"config"`
			Token  string `json:"token_file"`
			Items  []item `json:"items"`
		}{Dir: res.Dir, Config: res.Config, Token: res.Token}
		for _, it := range res.Items {
			out.Items = append(out.Items, item{it.Path, it.Created, it.Warning})
		}
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if res.Created() {
		fmt.Fprintf(a.stdout, "Initialized clawbox in %s\n", res.Dir)
	} else {
		fmt.Fprintf(a.stdout, "clawbox is already initialized in %s; nothing was changed\n", res.Dir)
	}
	for _, it := range res.Items {
		state := "exists "
		if it.Created {
			state = "created"
		}
		rel, err := filepath.Rel(res.Dir, it.Path)
		if err != nil || rel == "." {
			rel = it.Path
		}
		fmt.Fprintf(a.stdout, "  %s  %s\n", state, rel)
		if it.Warning != "" {
			fmt.Fprintf(a.stdout, "           warning: %s\n", it.Warning)
		}
	}
	fmt.Fprintf(a.stdout, "Config:    %s\nAPI token: %s\nStart the server with: clawbox serve", res.Config, res.Token)
	if a.dir != "" {
		fmt.Fprintf(a.stdout, " --dir %s", res.Dir)
	}
	fmt.Fprintln(a.stdout)
	return nil
}
