// Package home lays out the clawbox directory (~/.clawbox or --dir): the commented
// config file, the API token and master key (0600), and the directories the server
// uses. Init creates what is missing and never changes what exists.
package home

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/store"
)

// Item is one entry of the layout and what Init found or did with it.
type Item struct {
	Path    string
	Created bool   // false: it existed and was left alone
	Warning string // for an existing entry whose kind or mode is not what clawbox expects
}

// Result is what Init did.
type Result struct {
	Dir    string
	Config string // the config file
	Token  string // the token file
	Items  []Item
}

// Created reports whether Init created anything.
func (r *Result) Created() bool {
	for _, it := range r.Items {
		if it.Created {
			return true
		}
	}
	return false
}

// Installer adds content to the layout after it exists (the example tools); it must
// not overwrite files and returns what it created.
type Installer func(toolDir string) (created []string, err error)

// Init creates the clawbox directory dir and its layout. It is idempotent: existing
// files and directories are reported, never modified. tools, if not nil, installs
// the example tools into the tool directory.
func Init(ctx context.Context, dir string, tools Installer) (*Result, error) {
	if dir == "" {
		return nil, errors.New("init: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	r := &Result{Dir: abs, Config: filepath.Join(abs, config.FileName), Token: filepath.Join(abs, "token")}

	if err := r.mkdir(abs, 0o700); err != nil {
		return r, err
	}
	for _, d := range []struct {
		name string
		mode fs.FileMode
	}{
		{"tools", 0o755}, {"audit", 0o700}, {"proxies", 0o700}, {"workspaces", 0o700}, {"cache", 0o700},
	} {
		if err := r.mkdir(filepath.Join(abs, d.name), d.mode); err != nil {
			return r, err
		}
	}
	if err := r.writeNew(r.Config, []byte(config.File(abs))); err != nil {
		return r, err
	}
	if err := r.writeNew(r.Token, []byte(randomHex()+"\n")); err != nil {
		return r, err
	}
	if err := r.writeNew(filepath.Join(abs, "master.key"), []byte(randomHex()+"\n")); err != nil {
		return r, err
	}

	dbPath := filepath.Join(abs, "state.db")
	_, statErr := os.Stat(dbPath)
	db, err := store.Open(ctx, dbPath)
	if err != nil {
		return r, err
	}
	db.Close()
	r.Items = append(r.Items, Item{Path: dbPath, Created: errors.Is(statErr, fs.ErrNotExist)})

	if tools != nil {
		created, err := tools(filepath.Join(abs, "tools"))
		if err != nil {
			return r, fmt.Errorf("install example tools: %w", err)
		}
		for _, p := range created {
			r.Items = append(r.Items, Item{Path: p, Created: true})
		}
	}
	return r, nil
}

func (r *Result) mkdir(p string, mode fs.FileMode) error {
	st, err := os.Lstat(p)
	switch {
	case err == nil && st.IsDir():
		it := Item{Path: p}
		if st.Mode().Perm()&^mode != 0 {
			it.Warning = fmt.Sprintf("mode %04o is more open than the expected %04o", st.Mode().Perm(), mode)
		}
		r.Items = append(r.Items, it)
		return nil
	case err == nil:
		return fmt.Errorf("%s exists and is not a directory", p)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := os.Mkdir(p, mode); err != nil {
		return err
	}
	if err := os.Chmod(p, mode); err != nil { // the umask may have narrowed it
		return err
	}
	r.Items = append(r.Items, Item{Path: p, Created: true})
	return nil
}

// writeNew creates p with mode 0600 and content, unless p exists. The file appears
// whole or not at all: content goes to a temporary file in the same directory,
// which is then hard-linked to p (link fails if p exists, like O_EXCL), so a client
// command reading the config while `serve` creates it never sees it half written.
func (r *Result) writeNew(p string, content []byte) error {
	if st, err := os.Lstat(p); err == nil {
		return r.existing(p, st)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, werr := f.Write(content)
	merr := f.Chmod(0o600)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, merr, serr, cerr); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Link(tmp, p); err != nil {
		if errors.Is(err, fs.ErrExist) { // created meanwhile by another process
			st, lerr := os.Lstat(p)
			if lerr != nil {
				return lerr
			}
			return r.existing(p, st)
		}
		return fmt.Errorf("write %s: %w", p, err)
	}
	r.Items = append(r.Items, Item{Path: p, Created: true})
	return nil
}

// existing records a file that was already there, warning when others may read it.
func (r *Result) existing(p string, st fs.FileInfo) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s exists and is not a regular file", p)
	}
	it := Item{Path: p}
	if st.Mode().Perm()&0o077 != 0 {
		it.Warning = fmt.Sprintf("mode %04o lets other users read it: run chmod 600 %s", st.Mode().Perm(), p)
	}
	r.Items = append(r.Items, it)
	return nil
}

func randomHex() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux; a failure means the system is unusable
	}
	return hex.EncodeToString(b)
}
