package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
)

// Bounds on what a sandbox's listing can make cp do: a hostile workload can make
// its tree as deep or as wide as it likes.
const (
	cpMaxDepth   = 64
	cpMaxEntries = 100_000
)

// CopyResult is what cp --json prints.
type CopyResult struct {
	Files int   `json:"files"`
	Dirs  int   `json:"dirs"`
	Bytes int64 `json:"bytes"`
	// Skipped are the entries not copied (symlinks, devices, sockets), with why.
	Skipped []string `json:"skipped"`
}

// remoteRef splits "ID:/path" ("" when arg is a local path: it has no colon, or a
// slash before the first one, or no absolute path after it; prefix local paths
// with ./ to be sure).
func remoteRef(arg string) (id, p string, ok bool) {
	id, p, found := strings.Cut(arg, ":")
	if !found || id == "" || strings.ContainsAny(id, `/\`) || !strings.HasPrefix(p, "/") {
		return "", "", false
	}
	return id, p, true
}

func (a *app) cpCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy files and directories into or out of a running container sandbox",
		Long: `cp copies between this machine and a running sandbox; one side is ID:/absolute/path.
Files move through the files API as the sandbox user (never docker cp): a directory is
copied file by file, its tree walked on the sending side, so the sandbox needs no tar
and its redacted, capped exec output is never used for file data. Empty directories,
symlinks, devices and sockets are not copied (symlinks and specials are listed as
skipped); permission bits are kept (no setuid/setgid).

Like docker cp: when DST is an existing directory (or ends with /), SRC is copied into
it under its own name. '-' as SRC reads a tar stream from stdin and unpacks it under the
sandbox directory DST; '-' as DST writes the sandbox path as a tar stream to stdout.
Whatever comes out of a sandbox is hostile: names that are empty, '.', '..', contain a
slash or NUL are refused, and nothing is written outside the local destination (an
os.Root confines every write, symlinks included).`,
		Example: `  clawbox cp ./main.py clawbox-1a2b:/workspace/main.py
  clawbox cp ./project clawbox-1a2b:/workspace/
  clawbox cp clawbox-1a2b:/workspace/out ./out
  tar -cf - src | clawbox cp - clawbox-1a2b:/workspace
  clawbox cp clawbox-1a2b:/workspace - | tar -tvf -`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf("cp needs SRC and DST, one of them ID:/path")
			}
			sid, sp, sRemote := remoteRef(args[0])
			did, dp, dRemote := remoteRef(args[1])
			if sRemote == dRemote {
				return usageErrorf("exactly one of SRC and DST must be a sandbox path ID:/absolute/path (got %q and %q)", args[0], args[1])
			}
			c, err := a.newClient(true)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var res CopyResult
			if dRemote {
				err = a.copyIn(ctx, c, args[0], did, dp, &res)
			} else {
				err = a.copyOut(ctx, c, sid, sp, args[1], &res)
			}
			if err != nil {
				return err
			}
			if res.Skipped == nil {
				res.Skipped = []string{}
			}
			if a.jsonOut {
				return writeJSONOut(a.stdout, res)
			}
			for _, s := range res.Skipped {
				fmt.Fprintf(a.stderr, "skipped %s\n", terminalSafe(s))
			}
			if args[1] != "-" {
				fmt.Fprintf(a.stderr, "copied %d file(s), %d byte(s)\n", res.Files, res.Bytes)
			}
			return nil
		},
	}
	return cmd
}

// remoteStat returns the entry of p in its parent's listing ("/" is a directory).
func remoteStat(ctx context.Context, c *client.Client, id, p string) (api.FileEntry, error) {
	p = path.Clean(p)
	if p == "/" {
		return api.FileEntry{Name: "/", IsDir: true}, nil
	}
	list, err := c.ListFiles(ctx, id, path.Dir(p))
	if err != nil {
		return api.FileEntry{}, err
	}
	for _, e := range list.Entries {
		if e.Name == path.Base(p) {
			return e, nil
		}
	}
	return api.FileEntry{}, api.Errorf(api.CodeNotFound, "%s:%s does not exist", id, p)
}

// admit checks one entry of a sandbox listing of remote before cp goes on with it:
// an unsafe name or one past the entry cap is an error; a symlink or special file is
// recorded as skipped (skip true), never followed or read.
func (res *CopyResult) admit(id, remote string, e api.FileEntry) (skip bool, err error) {
	if err := safeName(e.Name); err != nil {
		return false, err
	}
	if res.Files+res.Dirs+len(res.Skipped) >= cpMaxEntries {
		return false, fmt.Errorf("%s:%s has more than %d entries: refused", id, remote, cpMaxEntries)
	}
	switch {
	case e.IsSymlink:
		res.Skipped = append(res.Skipped, path.Join(remote, e.Name)+" (symlink)")
	case e.IsSpecial:
		res.Skipped = append(res.Skipped, path.Join(remote, e.Name)+" (special file)")
	default:
		return false, nil
	}
	return true, nil
}

// terminalSafe returns s as it is when it is valid UTF-8 of printable characters,
// else quoted (Go syntax, escapes for the rest): a name a sandbox chose must not
// put control sequences on the operator's terminal (an OSC 52 that writes the
// clipboard, a cursor move that hides a line).
func terminalSafe(s string) string {
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// safeName refuses an entry name from a sandbox listing that could leave its directory.
func safeName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || len(name) > 255 {
		return fmt.Errorf("the sandbox listed an unsafe entry name %q: refused", name)
	}
	return nil
}

func permBits(m uint32) fs.FileMode { return fs.FileMode(m & 0o777) }

// copyIn copies the local src (a file, a directory or "-" for a tar stream) to id:dst.
func (a *app) copyIn(ctx context.Context, c *client.Client, src, id, dst string, res *CopyResult) error {
	if src == "-" {
		return a.untarIn(ctx, c, a.stdin, id, dst, res)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	target := path.Clean(dst)
	if strings.HasSuffix(dst, "/") {
		target = path.Join(target, filepath.Base(src))
	} else if e, err := remoteStat(ctx, c, id, target); err == nil && e.IsDir {
		target = path.Join(target, filepath.Base(src))
	}
	if !fi.IsDir() {
		return a.putFile(ctx, c, src, fi, id, target, res)
	}
	root := filepath.Clean(src)
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			res.Dirs++
			return nil
		case info.Mode().IsRegular():
			return a.putFile(ctx, c, p, info, id, path.Join(target, filepath.ToSlash(rel)), res)
		default:
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s (%s)", p, kindOf(info.Mode())))
			return nil
		}
	})
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "not a regular file"
}

func (a *app) putFile(ctx context.Context, c *client.Client, local string, fi fs.FileInfo, id, remote string, res *CopyResult) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := c.WriteFile(ctx, id, remote, f, uint32(fi.Mode().Perm()))
	if err != nil {
		return fmt.Errorf("%s → %s:%s: %w", local, id, remote, err)
	}
	res.Files++
	res.Bytes += w.Size
	return nil
}

// untarIn unpacks a tar stream under id:dst file by file. Entries that would land
// outside dst (absolute names, "..") are refused before anything is written.
func (a *app) untarIn(ctx context.Context, c *client.Client, r io.Reader, id, dst string, res *CopyResult) error {
	if r == nil {
		return usageErrorf("cp - needs a tar stream on stdin")
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar stream: %w", err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if name == "" || name == "." {
			continue
		}
		if !filepath.IsLocal(filepath.FromSlash(name)) || strings.Contains(name, "\\") {
			return fmt.Errorf("tar entry %q would land outside %s: refused", h.Name, dst)
		}
		target := path.Join(dst, name)
		switch h.Typeflag {
		case tar.TypeDir:
			res.Dirs++
		case tar.TypeReg:
			w, err := c.WriteFile(ctx, id, target, tr, uint32(h.Mode)&0o777)
			if err != nil {
				return fmt.Errorf("%s → %s:%s: %w", h.Name, id, target, err)
			}
			res.Files++
			res.Bytes += w.Size
		default:
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s (tar type %q)", h.Name, h.Typeflag))
		}
	}
}

// copyOut copies id:src (a file or a directory) to the local dst, or to stdout as a
// tar stream when dst is "-".
func (a *app) copyOut(ctx context.Context, c *client.Client, id, src, dst string, res *CopyResult) error {
	e, err := remoteStat(ctx, c, id, src)
	if err != nil {
		return err
	}
	if e.IsSymlink {
		return fmt.Errorf("%s:%s is a symlink: copy what it points to", id, src)
	}
	if e.IsSpecial {
		return fmt.Errorf("%s:%s is not a regular file or directory (a FIFO, socket or device): refused", id, src)
	}
	base := path.Base(path.Clean(src))
	if base == "/" {
		base = "root"
	}
	if dst == "-" {
		tw := tar.NewWriter(a.stdout)
		if err := a.tarOut(ctx, c, id, path.Clean(src), base, e, tw, 0, res); err != nil {
			return err
		}
		return tw.Close()
	}
	target := dst
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		target = filepath.Join(dst, base)
	} else if strings.HasSuffix(dst, string(filepath.Separator)) {
		return fmt.Errorf("%s does not exist", dst)
	}
	if !e.IsDir {
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, permBits(e.Mode))
		if err != nil {
			return err
		}
		n, err := c.ReadFile(ctx, id, path.Clean(src), f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		res.Files++
		res.Bytes += n
		return nil
	}
	if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Every write below goes through the root: no name, "..", or symlink (even
	// one planted in the destination beforehand) takes it outside target.
	root, err := os.OpenRoot(target)
	if err != nil {
		return err
	}
	defer root.Close()
	res.Dirs++
	return a.pullDir(ctx, c, id, path.Clean(src), root, ".", 0, res)
}

func (a *app) pullDir(ctx context.Context, c *client.Client, id, remote string, root *os.Root, rel string, depth int, res *CopyResult) error {
	if depth >= cpMaxDepth {
		return fmt.Errorf("%s:%s is nested deeper than %d directories: refused", id, remote, cpMaxDepth)
	}
	list, err := c.ListFiles(ctx, id, remote)
	if err != nil {
		return err
	}
	for _, e := range list.Entries {
		skip, err := res.admit(id, remote, e)
		if err != nil {
			return err
		}
		if skip {
			continue
		}
		rp, lp := path.Join(remote, e.Name), filepath.Join(rel, e.Name)
		switch {
		case e.IsDir:
			if err := root.Mkdir(lp, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			res.Dirs++
			if err := a.pullDir(ctx, c, id, rp, root, lp, depth+1, res); err != nil {
				return err
			}
		default:
			f, err := root.OpenFile(lp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, permBits(e.Mode))
			if err != nil {
				return err
			}
			n, err := c.ReadFile(ctx, id, rp, f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			res.Files++
			res.Bytes += n
		}
	}
	return nil
}

// tarOut writes id:remote (entry e) to tw under name.
func (a *app) tarOut(ctx context.Context, c *client.Client, id, remote, name string, e api.FileEntry, tw *tar.Writer, depth int, res *CopyResult) error {
	if depth >= cpMaxDepth {
		return fmt.Errorf("%s:%s is nested deeper than %d directories: refused", id, remote, cpMaxDepth)
	}
	if !e.IsDir {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: e.Size, Mode: int64(e.Mode & 0o777), ModTime: e.MTime}); err != nil {
			return err
		}
		// The header promised e.Size bytes: a file that changed size since the
		// listing fails the archive instead of corrupting it.
		n, err := c.ReadFile(ctx, id, remote, tw)
		if err != nil {
			return err
		}
		res.Files++
		res.Bytes += n
		return nil
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: int64(e.Mode&0o777) | 0o700, ModTime: e.MTime}); err != nil {
		return err
	}
	res.Dirs++
	list, err := c.ListFiles(ctx, id, remote)
	if err != nil {
		return err
	}
	for _, child := range list.Entries {
		skip, err := res.admit(id, remote, child)
		if err != nil {
			return err
		}
		if skip {
			continue
		}
		if err := a.tarOut(ctx, c, id, path.Join(remote, child.Name), name+"/"+child.Name, child, tw, depth+1, res); err != nil {
			return err
		}
	}
	return nil
}
