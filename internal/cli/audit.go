package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
)

func (a *app) auditCommand() *cobra.Command {
	var (
		q      client.AuditQuery
		follow bool
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log: every egress decision, sandbox event and tool execution",
		Long: `audit prints audit records, newest first (or, with -f, follows new records as they
are written). With --json each record is one JSON line.`,
		Example: `  clawbox audit --since 1h
  clawbox audit --decision blocked --limit 20
  clawbox audit -f --container clawbox-1234`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			if follow {
				if q.Limit != 0 {
					return usageErrorf("--limit does not apply with --follow")
				}
				tw := newAuditPrinter(a.stdout, a.jsonOut)
				return c.AuditStream(cmd.Context(), q, func(r api.AuditRecord) error {
					return tw.print(r)
				})
			}
			recs, err := c.Audit(cmd.Context(), q)
			if err != nil {
				return err
			}
			p := newAuditPrinter(a.stdout, a.jsonOut)
			for _, r := range recs {
				if err := p.print(r); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow new records as they are written")
	f.StringVar(&q.ContainerID, "container", "", "only records about this sandbox")
	f.StringVar(&q.Tool, "tool", "", "only records about this tool")
	f.StringVar(&q.Decision, "decision", "", "allowed, blocked, leak, rate_limited or error")
	f.StringVar(&q.Kind, "kind", "", "request, lifecycle, execution or gap")
	f.StringVar(&q.Since, "since", "", "RFC 3339 time, or a duration such as 15m")
	f.IntVar(&q.Limit, "limit", 0, "at most this many records (default 100, max 1000)")
	return cmd
}

// auditPrinter prints records as aligned lines, or JSON lines.
type auditPrinter struct {
	w    io.Writer
	json bool
}

func newAuditPrinter(w io.Writer, jsonOut bool) *auditPrinter {
	return &auditPrinter{w: w, json: jsonOut}
}

func (p *auditPrinter) print(r api.AuditRecord) error {
	if p.json {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	subject := r.ContainerID
	if subject == "" {
		subject = r.Tool
	}
	if subject == "" {
		subject = "-"
	}
	var what string
	switch r.Kind {
	case api.AuditKindRequest:
		what = fmt.Sprintf("%s %s %s", r.Decision, r.Method, r.URL)
		if r.Status != 0 {
			what += fmt.Sprintf(" -> %d", r.Status)
		}
		if len(r.Credentials) > 0 {
			what += " credentials=" + strings.Join(r.Credentials, ",")
		}
		if r.Reason != "" {
			what += " (" + r.Reason + ")"
		}
		if r.Count > 1 {
			// An aggregated refusal: past the refusal budget, one record stands for many.
			what += fmt.Sprintf(" [%d requests like this, aggregated]", r.Count)
		}
	case api.AuditKindGap:
		what = fmt.Sprintf("%d records dropped", r.Dropped)
	default:
		what = r.Event
		if r.ExitCode != nil {
			what += fmt.Sprintf(" exit %d", *r.ExitCode)
		}
		if r.Reason != "" {
			// What the event was about (an exec's command, a file's path), shortened
			// for a line; --json has all of it.
			reason := []rune(r.Reason)
			if len(reason) > 120 {
				reason = append(reason[:120], '…')
			}
			what += ": " + string(reason)
		}
		if r.Error != "" {
			what += " (" + r.Error + ")"
		}
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Time.Local().Format(time.DateTime), r.Kind, subject, what)
	return tw.Flush()
}
