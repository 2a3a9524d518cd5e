package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
)

func (a *app) agentCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Manage agents: named, long-lived sandboxes with a lifecycle policy and a kept workspace",
		Long: `An agent is a named sandbox that lives across starts and server restarts. Its
container is spawned exactly like 'clawbox spawn' (image, env and network policy,
limits, its own door), with its own workspace at /workspace that is the same
directory at every start. Its lifecycle policy stops or pauses it when idle, ends
it after its lifetime and restarts it after a crash.`,
		Example: `  clawbox agent create researcher --image alpine --max-idle 30m --start
  clawbox agent exec researcher -- sh -c 'echo note > /workspace/n'
  clawbox agent pause researcher
  clawbox agent ls`,
		Args: noArgs,
	}
	cmd.AddCommand(a.agentCreateCommand(), a.agentListCommand(), a.agentExecCommand(), a.agentRemoveCommand())
	for _, op := range []struct {
		name, short string
		fn          func(*client.Client) func(context.Context, string) (*api.AgentInfo, error)
	}{
		{"start", "Start an idle, failed or terminated agent", func(c *client.Client) func(context.Context, string) (*api.AgentInfo, error) { return c.StartAgent }},
		{"stop", "Stop a running, paused or restarting agent", func(c *client.Client) func(context.Context, string) (*api.AgentInfo, error) { return c.StopAgent }},
		{"pause", "Pause a running agent (its processes freeze, its lifetime clock stops)", func(c *client.Client) func(context.Context, string) (*api.AgentInfo, error) { return c.PauseAgent }},
		{"resume", "Resume a paused agent", func(c *client.Client) func(context.Context, string) (*api.AgentInfo, error) { return c.ResumeAgent }},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:     op.name + " AGENT_ID",
			Short:   op.short,
			Example: "  clawbox agent " + op.name + " researcher",
			Args:    oneAgentID("agent " + op.name),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := a.newClient(true)
				if err != nil {
					return err
				}
				info, err := op.fn(c)(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printAgent(info)
			},
		})
	}
	return cmd
}

func oneAgentID(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf("%s takes one AGENT_ID", what)
		}
		return nil
	}
}

func (a *app) printAgent(info *api.AgentInfo) error {
	if a.jsonOut {
		return writeJSONOut(a.stdout, info)
	}
	line := fmt.Sprintf("%s %s", info.AgentID, info.Status)
	if info.ContainerID != nil {
		line += " " + *info.ContainerID
	}
	if info.Reason != "" {
		line += " (" + info.Reason + ")"
	}
	fmt.Fprintln(a.stdout, line)
	return nil
}

func (a *app) agentCreateCommand() *cobra.Command {
	var (
		name, image, policy, idleAction string
		envs, allow, creds, labels      []string
		noNetwork, restart, start       bool
		maxIdle, maxLifetime, backoff   time.Duration
		maxRestarts                     int
		memoryMB                        int64
	)
	cmd := &cobra.Command{
		Use:   "create AGENT_ID [flags] [-- COMMAND [ARG...]]",
		Short: "Register an agent (and with --start, start it)",
		Long: `create registers an agent. AGENT_ID is 1 to 64 letters, digits and '-'. Without a
COMMAND the agent's main process waits (sleep infinity) and the agent is driven with
'clawbox agent exec'. The configuration is checked against the server's policy as a
spawn is.`,
		Example: `  clawbox agent create researcher --image alpine --allow api.github.com --cred GITHUB --start
  clawbox agent create builder --max-idle 10m --idle-action pause --restart-on-crash -- sh -c 'exec ./serve'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			pos, command := args, []string(nil)
			if dash >= 0 {
				pos, command = args[:dash], args[dash:]
			}
			if len(pos) != 1 {
				return usageErrorf("agent create takes one AGENT_ID before --, got %q", pos)
			}
			cfg := api.AgentConfig{AgentID: pos[0], Name: name, Image: image, Policy: policy, Command: command}
			if cfg.Name == "" {
				cfg.Name = pos[0]
			}
			env, err := keyValues("--env", envs)
			if err != nil {
				return err
			}
			cfg.Env = env
			if cfg.Labels, err = keyValues("--label", labels); err != nil {
				return err
			}
			caps := &api.ContainerCapabilities{Credentials: creds}
			switch {
			case noNetwork:
				caps.Network = &api.ContainerNetwork{Allowlist: []string{}}
			case len(allow) > 0:
				caps.Network = &api.ContainerNetwork{Allowlist: allow}
			}
			if memoryMB > 0 {
				caps.Resources = &api.ContainerResources{MemoryMB: &memoryMB}
			}
			cfg.Capabilities = caps
			lc := &api.AgentLifecycle{RestartOnCrash: restart, IdleAction: idleAction}
			if cmd.Flags().Changed("max-idle") {
				v := maxIdle.Milliseconds()
				lc.MaxIdleMS = &v
			}
			if maxLifetime > 0 {
				v := maxLifetime.Milliseconds()
				lc.MaxLifetimeMS = &v
			}
			if cmd.Flags().Changed("max-restarts") {
				lc.MaxRestarts = &maxRestarts
			}
			if cmd.Flags().Changed("restart-backoff") {
				v := backoff.Milliseconds()
				lc.RestartBackoffMS = &v
			}
			cfg.Lifecycle = lc
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			info, err := c.CreateAgent(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if start {
				if info, err = c.StartAgent(cmd.Context(), info.AgentID); err != nil {
					return err
				}
			}
			return a.printAgent(info)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "display name (default AGENT_ID)")
	f.StringVar(&image, "image", "", "image (default containers.default_image)")
	f.StringVar(&policy, "policy", "", "container (default) or container_direct")
	f.StringArrayVarP(&envs, "env", "e", nil, "environment variable KEY=VALUE (repeatable)")
	f.StringArrayVar(&labels, "label", nil, "label KEY=VALUE on the agent's sandboxes (repeatable)")
	f.StringArrayVar(&allow, "allow", nil, "narrow the network allowlist to this rule (repeatable)")
	f.BoolVar(&noNetwork, "no-network", false, "no network at all")
	f.StringArrayVar(&creds, "cred", nil, "credential the agent may use through its door (repeatable)")
	f.Int64Var(&memoryMB, "memory", 0, "memory limit in MiB")
	f.DurationVar(&maxIdle, "max-idle", 0, "stop (or pause) after this long without exec, file call or egress; 0 never (default 1h)")
	f.StringVar(&idleAction, "idle-action", "", "stop (default) or pause")
	f.DurationVar(&maxLifetime, "max-lifetime", 0, "longest one start runs, paused time not counted (default containers.max_timeout_ms)")
	f.BoolVar(&restart, "restart-on-crash", false, "restart the agent when its sandbox fails")
	f.IntVar(&maxRestarts, "max-restarts", 3, "restarts in a row before the agent is failed")
	f.DurationVar(&backoff, "restart-backoff", time.Second, "delay of the first restart, doubled at each one (at most 1m)")
	f.BoolVar(&start, "start", false, "start the agent once created")
	cmd.MarkFlagsMutuallyExclusive("allow", "no-network")
	return cmd
}

// keyValues parses KEY=VALUE flags; nil when there are none.
func keyValues(flag string, kvs []string) (map[string]string, error) {
	var out map[string]string
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErrorf("%s %q: want KEY=VALUE", flag, kv)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out, nil
}

func (a *app) agentListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the agents, oldest first",
		Example: "  clawbox agent ls\n  clawbox agent ls --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			list, err := c.Agents(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				if list == nil {
					list = []api.AgentInfo{}
				}
				return writeJSONOut(a.stdout, list)
			}
			return printAgents(a.stdout, list)
		},
	}
}

func printAgents(w io.Writer, list []api.AgentInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT ID\tSTATUS\tCONTAINER ID\tEXECS\tRESTARTS\tNAME")
	for _, ag := range list {
		cid := "-"
		if ag.ContainerID != nil {
			cid = *ag.ContainerID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", ag.AgentID, ag.Status, cid, ag.ExecutionCount, ag.RestartCount, truncate(ag.Name, 40))
	}
	return tw.Flush()
}

func (a *app) agentRemoveCommand() *cobra.Command {
	var workspace bool
	cmd := &cobra.Command{
		Use:     "rm AGENT_ID",
		Aliases: []string{"remove"},
		Short:   "Remove an agent, ending its sandbox (its workspace is kept unless --workspace)",
		Example: "  clawbox agent rm researcher\n  clawbox agent rm researcher --workspace",
		Args:    oneAgentID("agent rm"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			if err := c.RemoveAgent(cmd.Context(), args[0], workspace); err != nil {
				return err
			}
			if a.jsonOut {
				return writeJSONOut(a.stdout, map[string]any{"agent_id": args[0], "removed": true, "workspace_removed": workspace})
			}
			fmt.Fprintf(a.stdout, "%s removed\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&workspace, "workspace", false, "also delete the agent's workspace")
	return cmd
}

func (a *app) agentExecCommand() *cobra.Command {
	var (
		envs    []string
		workdir string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "exec AGENT_ID -- COMMAND [ARG...]",
		Short: "Run a command in a running agent and print its output",
		Long: `agent exec runs COMMAND in the agent's current sandbox (as 'clawbox exec' does for a
container id), waits for it and prints its output; the exit code is the command's.
It counts as the agent's activity.`,
		Example: "  clawbox agent exec researcher -- ls /workspace",
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if dash != 1 || len(args) == dash {
				return usageErrorf("agent exec needs AGENT_ID -- COMMAND [ARG...]")
			}
			env, err := keyValues("--env", envs)
			if err != nil {
				return err
			}
			if timeout < 0 {
				return usageErrorf("--timeout must be positive")
			}
			req := api.ExecRequest{Cmd: args[dash:], Env: env, Workdir: workdir, TimeoutMS: timeout.Milliseconds()}
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			res, err := c.AgentExec(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if a.jsonOut {
				if err := writeJSONOut(a.stdout, res); err != nil {
					return err
				}
			} else {
				io.WriteString(a.stdout, res.Stdout)
				io.WriteString(a.stderr, res.Stderr)
			}
			return a.passExit(res.ExecExit)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&envs, "env", "e", nil, "environment variable KEY=VALUE for the command (repeatable)")
	f.StringVarP(&workdir, "workdir", "w", "", "working directory inside the sandbox (absolute)")
	f.DurationVar(&timeout, "timeout", 0, "end the command after this long (default containers.exec_timeout_ms)")
	return cmd
}
