package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/clawbox/clawbox/api"
)

func (a *app) imageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Pull and list the images that containers.allowed_images allows",
		Long: `Spawn never pulls an image: pull it first with 'clawbox image pull'. Only images that
containers.allowed_images allows can be pulled (anything else is refused before the
registry is contacted) and listed.`,
		Example: `  clawbox image pull alpine:3.20
  clawbox image ls`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.imagePullCommand(), a.imageListCommand())
	return cmd
}

func (a *app) imagePullCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "pull IMAGE",
		Short: "Pull an allowed image through the server's Docker engine, showing progress",
		Long: `pull asks the server to pull IMAGE (without a tag: ":latest") through its Docker
engine. On a terminal it draws a progress bar; otherwise it prints a line each time a
layer changes status; with --json it prints every progress frame as one JSON line,
the last one with "done": true (and the image_id and digest) or an "error" and "code".

Exit codes: 0 pulled, 1 refused or failed (for example image_not_allowed,
image_not_found), 2 bad command line, 3 server not reachable.`,
		Example: `  clawbox image pull alpine:3.20
  clawbox image pull ghcr.io/acme/tool@sha256:0123…   # needs "ghcr.io/acme/" in containers.allowed_images
  clawbox image pull python:3.12-slim --json | tail -n 1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("image pull takes one IMAGE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			var show func(api.PullProgress)
			var d *pullDisplay
			switch {
			case a.jsonOut:
				enc := json.NewEncoder(a.stdout)
				show = func(p api.PullProgress) { enc.Encode(p) }
			default:
				d = newPullDisplay(a.stdout, args[0])
				show = d.frame
			}
			err = c.PullImage(cmd.Context(), args[0], show)
			if d != nil {
				d.end()
			}
			return err
		},
	}
}

func (a *app) imageListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the local images that containers.allowed_images allows",
		Example: "  clawbox image ls\n  clawbox image ls --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			list, err := c.Images(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				if list == nil {
					list = []api.Image{}
				}
				return writeJSONOut(a.stdout, api.ImageList{Images: list})
			}
			if len(list) == 0 {
				fmt.Fprintln(a.stdout, "No allowed images are present. Pull one with: clawbox image pull IMAGE")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tIMAGE ID\tSIZE\tCREATED")
			now := time.Now()
			for _, im := range list {
				names := im.RepoTags
				if len(names) == 0 {
					names = im.RepoDigests
				}
				for _, n := range names {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\n", n, shortID(im.ID), humanBytes(im.Size), now.Sub(im.Created).Round(time.Second))
				}
			}
			return tw.Flush()
		},
	}
}

// shortID is an image ID without its algorithm, cut to 12 characters like docker.
func shortID(id string) string {
	if _, hex, ok := strings.Cut(id, ":"); ok {
		id = hex
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// humanBytes renders a byte count with a decimal unit ("3.1 MB").
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTP"[exp])
}

// pullDisplay shows a pull's progress: on a terminal one bar of the bytes of every
// layer (downloads, then extraction when the engine does not report downloads),
// rewritten in place; elsewhere a line each time a layer changes status.
type pullDisplay struct {
	w     io.Writer
	ref   string
	tty   bool
	width int // terminal columns

	layers map[string]*layerState
	order  []string
	drawn  bool // a bar line is on screen and needs a newline at the end
	final  *api.PullProgress
}

type layerState struct {
	status         string
	current, total int64 // bytes of the current phase
	done           bool
}

func newPullDisplay(w io.Writer, ref string) *pullDisplay {
	d := &pullDisplay{w: w, ref: ref, width: 80, layers: map[string]*layerState{}}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		d.tty = true
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
			d.width = cols
		}
	}
	return d
}

// frame takes one progress frame.
func (d *pullDisplay) frame(p api.PullProgress) {
	switch {
	case p.Done || p.Error != "":
		fp := p
		d.final = &fp
		return
	case p.Status == api.PullStatusStarted:
		if p.Image != "" {
			d.ref = p.Image
		}
		if !d.tty {
			fmt.Fprintf(d.w, "Pulling %s\n", d.ref)
		}
		return
	}
	if p.ID == "" || !isLayerStatus(p.Status) {
		if !d.tty && p.Status != "" {
			fmt.Fprintln(d.w, p.Status)
		}
		return
	}
	l, ok := d.layers[p.ID]
	if !ok {
		l = &layerState{}
		d.layers[p.ID] = l
		d.order = append(d.order, p.ID)
	}
	changed := l.status != p.Status
	l.status = p.Status
	switch p.Status {
	case "Pull complete", "Already exists", "Download complete":
		if l.total > 0 {
			l.current = l.total
		}
		l.done = p.Status != "Download complete"
	default:
		if p.Total > 0 {
			l.current, l.total = p.Current, p.Total
		}
	}
	if d.tty {
		d.draw()
	} else if changed {
		fmt.Fprintf(d.w, "%s: %s\n", p.ID, p.Status)
	}
}

// isLayerStatus tells the engine's per-layer statuses from its per-image ones
// ("Pulling from x" carries the tag as its ID).
func isLayerStatus(s string) bool {
	switch s {
	case "Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", "Download complete",
		"Extracting", "Pull complete", "Already exists", "Retrying":
		return true
	}
	return strings.HasPrefix(s, "Retrying")
}

// draw rewrites the bar line: done layers of all, and the bytes of the layers
// whose size is known.
func (d *pullDisplay) draw() {
	var cur, total int64
	done := 0
	for _, id := range d.order {
		l := d.layers[id]
		cur += l.current
		total += l.total
		if l.done {
			done++
		}
	}
	frac := 0.0
	switch {
	case total > 0:
		frac = float64(cur) / float64(total)
	case len(d.order) > 0:
		frac = float64(done) / float64(len(d.order))
	}
	frac = min(max(frac, 0), 1)
	info := fmt.Sprintf(" %d/%d layers", done, len(d.order))
	if total > 0 {
		info = fmt.Sprintf(" %s/%s%s", humanBytes(cur), humanBytes(total), info)
	}
	label := d.ref
	if len(label) > 40 {
		label = "…" + label[len(label)-39:]
	}
	barWidth := max(d.width-len(label)-len(info)-4, 10)
	filled := int(frac * float64(barWidth))
	bar := strings.Repeat("=", filled)
	if filled < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-filled-1)
	}
	fmt.Fprintf(d.w, "\r\x1b[K%s [%s]%s", label, bar, info)
	d.drawn = true
}

// end finishes the display with the outcome of a successful pull.
func (d *pullDisplay) end() {
	if d.drawn {
		fmt.Fprintln(d.w)
		d.drawn = false
	}
	if d.final != nil && d.final.Done {
		fmt.Fprintf(d.w, "Pulled %s\n", orDefault(d.final.Image, d.ref))
		if d.final.ImageID != "" {
			fmt.Fprintf(d.w, "Image ID: %s\n", d.final.ImageID)
		}
		if d.final.Digest != "" {
			fmt.Fprintf(d.w, "Digest:   %s\n", d.final.Digest)
		}
	}
}
