package cli

import (
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
)

func (a *app) spawnCommand() *cobra.Command {
	var (
		image, task, policy string
		envs, allow, creds  []string
		labels              []string
		noNetwork, wait     bool
		workspace           bool
		timeout             time.Duration
		memoryMB            int64
		cpus                float64
	)
	cmd := &cobra.Command{
		Use:   "spawn [TEMPLATE] [flags] [-- COMMAND [ARG...]]",
		Short: "Start a hardened container sandbox, from --image or an [images.templates.NAME] template",
		Long: `spawn starts a container sandbox: read-only root, no capabilities, no network but its
egress door at /run/clawbox/proxy.sock, a noexec /tmp, bounded pids, memory and time.

TEMPLATE names an [images.templates.NAME] table of the config; flags override it.
Images are never pulled by spawn: pull them first with 'clawbox image pull'.
With --wait, spawn streams the output and exits 0 if the command succeeded, 1 if not.`,
		Example: `  clawbox spawn --image alpine -- sh -c 'echo hello; cat /run/clawbox/token | wc -c'
  clawbox spawn --image python:3.12-slim --allow api.github.com --cred GITHUB --timeout 10m -- python3 agent.py
  clawbox spawn researcher --task "summarise the issue tracker" --wait
  clawbox spawn --image alpine --label team=infra --label run=42 -- sleep 60`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			var command []string
			pos := args
			if dash >= 0 {
				command = args[dash:]
				pos = args[:dash]
			}
			if len(pos) > 1 {
				return usageErrorf("spawn takes at most one TEMPLATE before --, got %q", pos)
			}
			req := api.ContainerSpawnRequest{Policy: policy, Command: command}
			caps := &api.ContainerCapabilities{}
			res := &api.ContainerResources{}
			if len(pos) == 1 {
				cfg, err := a.loadConfig()
				if err != nil {
					return err
				}
				t, ok := cfg.Images.Templates[pos[0]]
				if !ok {
					var names []string
					for n := range cfg.Images.Templates {
						names = append(names, n)
					}
					sort.Strings(names)
					return usageErrorf("no template %q in %s (templates: %s)", pos[0], cfg.Path, strings.Join(names, ", "))
				}
				req.Image, req.Task, req.Env = t.Image, t.Description, t.Env
				if len(req.Command) == 0 {
					req.Command = t.Command
				}
				if t.NetworkAllowlist != nil {
					caps.Network = &api.ContainerNetwork{Allowlist: t.NetworkAllowlist}
				}
				caps.Credentials = t.Credentials
				if t.MaxLifetimeMS > 0 {
					res.TimeoutMS = &t.MaxLifetimeMS
				}
				if t.MemoryMB > 0 {
					res.MemoryMB = &t.MemoryMB
				}
				caps.Workspace = t.Workspace
			}
			if image != "" {
				req.Image = image
			}
			if req.Image == "" && len(pos) == 0 && dash < 0 && !cmd.Flags().Changed("task") {
				return usageErrorf("say what to run: --image IMAGE [-- COMMAND], or a TEMPLATE")
			}
			if task != "" {
				req.Task = task
			}
			if req.Task == "" {
				req.Task = "clawbox spawn " + strings.Join(append([]string{orDefault(req.Image, "(default image)")}, req.Command...), " ")
			}
			if len(envs) > 0 {
				flagEnv, err := keyValues("--env", envs)
				if err != nil {
					return err
				}
				env := maps.Clone(req.Env)
				if env == nil {
					env = map[string]string{}
				}
				maps.Copy(env, flagEnv)
				req.Env = env
			}
			var err error
			if req.Labels, err = keyValues("--label", labels); err != nil {
				return err
			}
			switch {
			case noNetwork:
				caps.Network = &api.ContainerNetwork{Allowlist: []string{}}
			case len(allow) > 0:
				caps.Network = &api.ContainerNetwork{Allowlist: allow}
			}
			if len(creds) > 0 {
				caps.Credentials = creds
			}
			if timeout > 0 {
				ms := timeout.Milliseconds()
				res.TimeoutMS = &ms
			}
			if memoryMB > 0 {
				res.MemoryMB = &memoryMB
			}
			if cpus > 0 {
				res.CPUs = &cpus
			}
			if *res != (api.ContainerResources{}) {
				caps.Resources = res
			}
			if workspace {
				caps.Workspace = true
			}
			if caps.Network != nil || len(caps.Credentials) > 0 || caps.Resources != nil || caps.Workspace {
				req.Capabilities = caps
			}

			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			info, err := c.Spawn(cmd.Context(), req)
			if err != nil {
				return err
			}
			if !wait {
				if a.jsonOut {
					return writeJSONOut(a.stdout, info)
				}
				fmt.Fprintln(a.stdout, info.ContainerID)
				return nil
			}
			fmt.Fprintf(a.stderr, "spawned %s\n", info.ContainerID)
			return a.follow(cmd, c, info.ContainerID)
		},
	}
	f := cmd.Flags()
	f.StringVar(&image, "image", "", "image to run (default containers.default_image)")
	f.StringVar(&task, "task", "", "what the sandbox is for (shown in ps and audit)")
	f.StringVar(&policy, "policy", "", "container (default: network only through the gateway) or container_direct")
	f.StringArrayVarP(&envs, "env", "e", nil, "environment variable KEY=VALUE (repeatable)")
	f.StringArrayVar(&allow, "allow", nil, "egress rule narrowing the server's allowlist (repeatable)")
	f.BoolVar(&noNetwork, "no-network", false, "no egress at all")
	f.StringArrayVar(&labels, "label", nil, "label KEY=VALUE shown in ps and selectable with ps --filter label=KEY=VALUE (repeatable)")
	f.StringArrayVar(&creds, "cred", nil, "credential name to request (repeatable)")
	f.DurationVar(&timeout, "timeout", 0, "lifetime, e.g. 10m (default containers.default_timeout_ms)")
	f.Int64Var(&memoryMB, "memory", 0, "memory limit in MiB (default containers.default_memory_mb)")
	f.Float64Var(&cpus, "cpus", 0, "hard CPU quota, e.g. 0.5")
	f.BoolVarP(&wait, "wait", "w", false, "stream the output and wait for the sandbox to finish")
	f.BoolVar(&workspace, "workspace", false, "mount a quota-bounded /workspace that is kept after the sandbox ends (remove it with kill --workspace)")
	cmd.MarkFlagsMutuallyExclusive("allow", "no-network")
	return cmd
}

// follow streams a sandbox's output to stdout and stderr and ends with its status.
func (a *app) follow(cmd *cobra.Command, c *client.Client, id string) error {
	var final *api.LogFrame
	err := c.FollowLogs(cmd.Context(), id, func(f api.LogFrame) error {
		switch f.Stream {
		case "stdout":
			io.WriteString(a.stdout, f.Data)
		case "stderr":
			io.WriteString(a.stderr, f.Data)
		case "status", "error":
			fr := f
			final = &fr
		}
		return nil
	})
	if err != nil {
		return err
	}
	if final == nil {
		return nil // interrupted
	}
	if final.Stream == "error" {
		return fmt.Errorf("log stream of %s: %s", id, final.Error)
	}
	msg := fmt.Sprintf("sandbox %s %s", id, final.Status)
	if final.ExitCode != nil {
		msg += fmt.Sprintf(" (exit code %d)", *final.ExitCode)
	}
	fmt.Fprintln(a.stderr, msg)
	if final.Status != api.ContainerStatusCompleted {
		return silentExit(ExitError)
	}
	return nil
}

func (a *app) psCommand() *cobra.Command {
	var status string
	var filters []string
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List container sandboxes, newest first",
		Example: `  clawbox ps
  clawbox ps --status running --json
  clawbox ps --filter label=team=infra --filter status=running`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			f := api.ContainerFilter{Status: status}
			for _, fl := range filters {
				k, v, ok := strings.Cut(fl, "=")
				switch {
				case ok && k == "status":
					f.Status = v
				case ok && k == "label":
					lk, lv, ok := strings.Cut(v, "=")
					if !ok {
						return usageErrorf("--filter %q: want label=KEY=VALUE", fl)
					}
					if f.Labels == nil {
						f.Labels = map[string]string{}
					}
					f.Labels[lk] = lv
				default:
					return usageErrorf("--filter %q: want label=KEY=VALUE or status=STATUS", fl)
				}
			}
			list, err := c.ListContainers(cmd.Context(), f)
			if err != nil {
				return err
			}
			if a.jsonOut {
				if list == nil {
					list = []api.ContainerInfo{}
				}
				return writeJSONOut(a.stdout, api.ContainerList{Containers: list})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER ID\tSTATUS\tIMAGE\tCREATED\tLABELS\tTASK")
			now := time.Now()
			for _, s := range list {
				st := s.Status
				if s.ExitCode != nil && s.Status != api.ContainerStatusCompleted {
					st += fmt.Sprintf(" (%d)", *s.ExitCode)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%s\t%s\n", s.ContainerID, st, s.Image,
					now.Sub(s.CreatedAt).Round(time.Second), labelList(s.Labels), truncate(s.TaskSummary, 50))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only sandboxes in this status (creating, running, completed, failed, timed_out, killed, lost)")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "label=KEY=VALUE or status=STATUS (repeatable; all must match)")
	return cmd
}

// labelList is labels as k=v,k=v sorted by key, or "-" when there are none.
func labelList(labels map[string]string) string {
	if len(labels) == 0 {
		return "-"
	}
	kv := make([]string, 0, len(labels))
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func (a *app) extendCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "extend CONTAINER_ID DURATION",
		Short: "Set a running sandbox's deadline to DURATION from now",
		Long: `extend sets a running sandbox's deadline to DURATION from now (shorter or longer than
before, at most containers.max_timeout_ms). A sandbox that is no longer running cannot change.`,
		Example: `  clawbox extend clawbox-0d6f... 10m
  clawbox extend clawbox-0d6f... 90s --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf("extend takes CONTAINER_ID DURATION, e.g. clawbox extend clawbox-0d6f... 10m")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := time.ParseDuration(args[1])
			if err != nil || d <= 0 {
				return usageErrorf("DURATION %q: want a positive duration such as 10m or 90s", args[1])
			}
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			info, err := c.Extend(cmd.Context(), args[0], d)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return writeJSONOut(a.stdout, info)
			}
			if info.Deadline != nil {
				fmt.Fprintf(a.stdout, "%s deadline %s\n", info.ContainerID, info.Deadline.Format(time.RFC3339))
			} else {
				fmt.Fprintln(a.stdout, info.ContainerID)
			}
			return nil
		},
	}
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func oneID(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf("%s takes one CONTAINER_ID", name)
		}
		return nil
	}
}

func (a *app) logsCommand() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs CONTAINER_ID",
		Short: "Print a sandbox's stdout and stderr (secrets redacted)",
		Example: `  clawbox logs clawbox-0d6f...
  clawbox logs -f clawbox-0d6f...`,
		Args: oneID("logs"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			if follow {
				return a.follow(cmd, c, args[0])
			}
			l, err := c.Logs(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.jsonOut {
				return writeJSONOut(a.stdout, l)
			}
			io.WriteString(a.stdout, l.Stdout)
			io.WriteString(a.stderr, l.Stderr)
			if l.Truncated {
				fmt.Fprintln(a.stderr, "clawbox: the logs were truncated at containers.max_log_bytes")
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream the output while the sandbox runs")
	return cmd
}

func (a *app) killCommand() *cobra.Command {
	var workspace bool
	cmd := &cobra.Command{
		Use:     "kill CONTAINER_ID...",
		Short:   "Kill container sandboxes (a finished one is left as it is)",
		Example: "  clawbox kill clawbox-0d6f...\n  clawbox kill --workspace clawbox-0d6f...   # also delete its kept /workspace",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("kill takes one or more CONTAINER_IDs")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			var failed error
			var results []*api.KillResponse
			for _, id := range args {
				kill := c.Kill
				if workspace {
					kill = c.KillWithWorkspace
				}
				res, err := kill(cmd.Context(), id)
				if err != nil {
					fmt.Fprintf(a.stderr, "clawbox: %s: %s\n", id, errorText(err))
					if failed == nil || exitCode(err) > exitCode(failed) {
						failed = err
					}
					continue
				}
				results = append(results, res)
				if !a.jsonOut {
					fmt.Fprintf(a.stdout, "%s %s\n", res.ContainerID, res.Status)
				}
			}
			if a.jsonOut {
				if err := writeJSONOut(a.stdout, results); err != nil {
					return err
				}
			}
			if failed != nil {
				return silentExit(exitCode(failed))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&workspace, "workspace", false, "also delete the sandbox's kept workspace (capabilities.workspace)")
	return cmd
}
