package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/daemon"
	"github.com/clawbox/clawbox/internal/home"
	"github.com/clawbox/clawbox/internal/wasm/exampletools"
)

func (a *app) serveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the clawbox server",
		Long: `serve runs the clawbox HTTP API until SIGINT or SIGTERM.

It reads <dir>/config.toml (or --config). With neither --config nor an existing
config, it first initialises the clawbox directory as 'clawbox init' does, then
serves, and tells you where the API token is. --host and --port override the config.`,
		Example: `  clawbox serve
  clawbox serve --port 9801
  clawbox serve --config /etc/clawbox/config.toml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			path, explicit, err := a.configFile()
			if err != nil {
				return err
			}
			if _, statErr := os.Stat(path); !explicit && errors.Is(statErr, os.ErrNotExist) {
				dir, err := a.homeDir()
				if err != nil {
					return err
				}
				res, err := home.Init(ctx, dir, exampletools.Install)
				if err != nil {
					return fmt.Errorf("initialise %s: %w", dir, err)
				}
				fmt.Fprintf(a.stderr, "First run: initialized clawbox in %s\n", res.Dir)
			}
			cfg, err := config.Load(path, a.env)
			if err != nil {
				return err
			}
			if a.host != "" || a.port != 0 {
				if a.host != "" {
					cfg.Server.Host = a.host
				}
				if a.port != 0 {
					cfg.Server.Port = a.port
				}
				if err := cfg.Validate(); err != nil {
					return fmt.Errorf("--host/--port: %w", err)
				}
			}
			tokenSource := "the API token is in " + cfg.Server.AuthTokenFile
			if v, ok := lookupEnv(a.env, config.EnvAuthToken); ok && v != "" {
				tokenSource = "the API token is " + config.EnvAuthToken
			} else if cfg.Server.AuthToken != "" {
				tokenSource = "the API token is server.auth_token in " + cfg.Path
			}
			return daemon.Run(ctx, cfg, daemon.Options{
				Stderr: a.stderr,
				Ready: func(addrs []string) {
					fmt.Fprintf(a.stderr, "clawbox is serving on %s (config %s; %s)\n",
						strings.Join(addrs, " and "), cfg.Path, tokenSource)
					if u := dashboardURL(addrs); u != "" {
						fmt.Fprintf(a.stderr, "dashboard: %s (sign in with the API token)\n", u)
					}
				},
			})
		},
	}
}

func lookupEnv(env config.Env, key string) (string, bool) {
	if env == nil {
		return os.LookupEnv(key)
	}
	return env(key)
}

// dashboardURL is the dashboard's address on the TCP listener ("" without one),
// naming a wildcard listener by its loopback address, which the Host check accepts.
func dashboardURL(addrs []string) string {
	for _, a := range addrs {
		hostport, ok := strings.CutPrefix(a, "http://")
		if !ok {
			continue
		}
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		return "http://" + net.JoinHostPort(host, port) + "/ui/"
	}
	return ""
}
