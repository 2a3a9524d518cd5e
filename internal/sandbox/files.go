package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	pathpkg "path"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/supervisor"
)

func checkPath(p string) error {
	if err := supervisor.ValidatePath(p); err != nil {
		return invalid("path", "path %q: %v", p, err)
	}
	return nil
}

// fileError maps an error of a file call through the supervisor to the API's
// codes. The supervisor's own text is untrusted and never passed on.
func (m *Manager) fileError(id, path string, err error) error {
	var ae *api.Error
	switch {
	case errors.As(err, &ae), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, supervisor.ErrTooManyEntries):
		return api.Errorf(api.CodeOutputTooLarge, "directory %q in sandbox %q has too many entries to list (more than 10000): list a subdirectory, or use exec (ls, find)", path, id)
	case errors.Is(err, supervisor.ErrNoSpace):
		return api.Errorf(api.CodeQuotaExceeded, "sandbox %q: no space left to write %q", id, path)
	case errors.Is(err, errdefs.ErrResourceExhausted):
		return api.Errorf(api.CodeTooLarge, "%q is larger than containers.max_file_bytes (%d bytes)", path, m.cfg.MaxFileBytes)
	case errors.Is(err, errdefs.ErrNotFound):
		return &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("path %q not found in sandbox %q", path, id), Details: map[string]string{"field": "path"}}
	case errors.Is(err, errdefs.ErrPermissionDenied):
		return api.Errorf(api.CodePermissionDenied, "the sandbox user may not do this to %q (permissions, or a read-only file system)", path)
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return invalid("path", "path %q is not valid for this (a directory or a special file where a regular file is needed, a file where a directory is needed, or a directory that is not empty)", path)
	case errors.Is(err, errdefs.ErrUnavailable):
		return api.Errorf(api.CodeUnavailable, "sandbox %q: its supervisor did not answer (it may have been killed by the workload)", id)
	}
	m.log.Warn("sandbox: file call failed in the supervisor", "sandbox", id, "path", path, "err", err)
	return api.Errorf(api.CodeInternal, "sandbox %q: the supervisor could not do this to %q", id, path)
}

// countingReader counts what was read through it (atomically: the supervisor
// client's transport reads it from its own goroutine).
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (m *Manager) writeFile(ctx context.Context, id, path string, mode uint32, r io.Reader) (api.FileWritten, error) {
	if err := checkPath(path); err != nil {
		return api.FileWritten{}, err
	}
	if mode > 0o7777 {
		return api.FileWritten{}, invalid("mode", "mode %o has bits beyond 07777", mode)
	}
	if mode == 0 {
		mode = 0o644
	}
	_, c, err := m.target(ctx, id)
	if err != nil {
		return api.FileWritten{}, err
	}
	cr := &countingReader{r: r}
	if err := c.WriteFile(ctx, path, os.FileMode(mode), cr, m.cfg.MaxFileBytes); err != nil {
		return api.FileWritten{}, m.fileError(id, path, err)
	}
	size := cr.n.Load()
	m.fileEvent(id, "file_written", fmt.Sprintf("path %q size %d mode %04o", path, size, mode))
	return api.FileWritten{Path: path, Size: size, Mode: mode}, nil
}

func (m *Manager) openFile(ctx context.Context, id, path string) (io.ReadCloser, api.FileEntry, error) {
	if err := checkPath(path); err != nil {
		return nil, api.FileEntry{}, err
	}
	_, c, err := m.target(ctx, id)
	if err != nil {
		return nil, api.FileEntry{}, err
	}
	rc, fi, err := c.OpenFile(ctx, path, m.cfg.MaxFileBytes)
	if err != nil {
		return nil, api.FileEntry{}, m.fileError(id, path, err)
	}
	return &fileReader{rc: rc, m: m, id: id, path: path}, api.FileEntry{Name: pathpkg.Base(path), Size: fi.Size, Mode: fi.Mode, MTime: time.Unix(fi.MTime, 0).UTC()}, nil
}

// fileReader maps the errors of a file being read to the API's codes.
type fileReader struct {
	rc   io.ReadCloser
	m    *Manager
	id   string
	path string
}

func (f *fileReader) Read(p []byte) (int, error) {
	n, err := f.rc.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = f.m.fileError(f.id, f.path, err)
	}
	return n, err
}

func (f *fileReader) Close() error { return f.rc.Close() }

func (m *Manager) listFiles(ctx context.Context, id, path string) (api.FileList, error) {
	if err := checkPath(path); err != nil {
		return api.FileList{}, err
	}
	_, c, err := m.target(ctx, id)
	if err != nil {
		return api.FileList{}, err
	}
	ents, err := c.ListFiles(ctx, path)
	if err != nil {
		return api.FileList{}, m.fileError(id, path, err)
	}
	out := api.FileList{Path: path, Entries: make([]api.FileEntry, len(ents))}
	for i, e := range ents {
		out.Entries[i] = api.FileEntry{Name: e.Name, Size: e.Size, Mode: e.Mode, IsDir: e.IsDir, IsSymlink: e.IsSymlink,
			IsSpecial: e.IsOther, MTime: time.Unix(e.MTime, 0).UTC()}
	}
	return out, nil
}

func (m *Manager) removeFile(ctx context.Context, id, path string, recursive bool) error {
	if err := checkPath(path); err != nil {
		return err
	}
	if path == "/" {
		return invalid("path", "refusing to remove /")
	}
	_, c, err := m.target(ctx, id)
	if err != nil {
		return err
	}
	if err := c.RemoveFile(ctx, path, recursive); err != nil {
		return m.fileError(id, path, err)
	}
	m.fileEvent(id, "file_removed", fmt.Sprintf("path %q recursive %t", path, recursive))
	return nil
}

func (m *Manager) removeWorkspace(ctx context.Context, id string) error {
	rec, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if !rec.Status.Final() {
		return api.Errorf(api.CodeConflict, "sandbox %q is %s: its workspace can be removed once it has ended", id, rec.Status)
	}
	if m.workspaces == nil {
		return api.Errorf(api.CodeNotFound, "sandbox %q has no workspace", id)
	}
	if _, _, err := m.workspaces.Usage(id); err != nil {
		if ae, ok := api.AsError(err); ok && ae.Code == api.CodeNotFound {
			return api.Errorf(api.CodeNotFound, "sandbox %q has no workspace", id)
		}
		return err
	}
	if err := m.workspaces.Remove(id); err != nil {
		return err
	}
	m.fileEvent(id, "workspace_removed", "")
	return nil
}

// workspaceInfo returns sandbox id's workspace as ContainerInfo shows it, nil
// when it has none.
func (m *Manager) workspaceInfo(id string) *api.ContainerWorkspace {
	if m.workspaces == nil {
		return nil
	}
	used, total, err := m.workspaces.Usage(id)
	if err != nil {
		return nil
	}
	return &api.ContainerWorkspace{Path: ContainerWorkspacePath, QuotaBytes: total, UsedBytes: used}
}

// fileEvent records a file change in a sandbox as a lifecycle audit record.
func (m *Manager) fileEvent(id, event, reason string) {
	if m.audit == nil {
		return
	}
	if m.redact != nil {
		b, _ := m.redact.Redact([]byte(reason))
		reason = string(b)
	}
	m.audit.Record(audit.Record{Time: m.clock.Now().UTC(), Kind: audit.KindLifecycle, ContainerID: id, Event: event, Reason: reason})
}
