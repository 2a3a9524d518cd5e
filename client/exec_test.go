package client_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/poll"
	"github.com/clawbox/clawbox/internal/server"
	"github.com/clawbox/clawbox/internal/server/servertest"

	"github.com/clawbox/clawbox/internal/testkit"
)

// newFakeServer serves the real API routes over a scripted sandbox service.
func newFakeServer(t *testing.T) (*servertest.Sandboxes, *client.Client) {
	t.Helper()
	s, err := server.New(server.Config{Token: "sdk-token"})
	if err != nil {
		t.Fatal(err)
	}
	fake := servertest.New()
	s.RegisterContainers(fake)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL, client.Options{Token: "sdk-token", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return fake, c
}

func TestSDKExec(t *testing.T) {
	_, c := newFakeServer(t)
	ctx := context.Background()
	res, err := c.Exec(ctx, servertest.Running, api.ExecRequest{Cmd: []string{"echo", "hi"}})
	if err != nil || res.Stdout != "hi\n" || res.ExitCode != 0 {
		t.Fatalf("Exec = %+v, %v", res, err)
	}
	res, err = c.Exec(ctx, servertest.Running, api.ExecRequest{Cmd: []string{"exit", "4"}})
	if err != nil || res.ExitCode != 4 {
		t.Fatalf("non-zero exit = %+v, %v (a failing command is not an error)", res, err)
	}
	_, err = c.Exec(ctx, servertest.Stopped, api.ExecRequest{Cmd: []string{"echo"}})
	if e, ok := api.AsError(err); !ok || e.Code != api.CodeConflict {
		t.Fatalf("stopped sandbox: %v", err)
	}
	_, err = c.Exec(ctx, "nope", api.ExecRequest{Cmd: []string{"echo"}})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown sandbox: %v", err)
	}
}

func TestSDKExecStream(t *testing.T) {
	_, c := newFakeServer(t)
	ctx := context.Background()
	var out, errb bytes.Buffer
	exit, err := c.ExecStream(ctx, servertest.Running, api.ExecRequest{Cmd: []string{"hex", "00ff", "41"}}, &out, &errb)
	if err != nil || exit.EndedBy != api.ExecEndedExit || out.String() != "\x00\xffA" || errb.Len() != 0 {
		t.Fatalf("ExecStream = %+v %v, stdout %q", exit, err, out.String())
	}
	out.Reset()
	exit, err = c.ExecStream(ctx, servertest.Running, api.ExecRequest{Cmd: []string{"stderr", "e"}}, &out, &errb)
	if err != nil || errb.String() != "e" {
		t.Fatalf("stderr: %+v %v %q", exit, err, errb.String())
	}
	// An error after the output began comes back as the server's error.
	out.Reset()
	_, err = c.ExecStream(ctx, servertest.Running, api.ExecRequest{Cmd: []string{"lose"}}, &out, nil)
	if e, ok := api.AsError(err); !ok || e.Code != api.CodeUnavailable || out.String() != "partial\n" {
		t.Fatalf("lost supervisor: %v, stdout %q", err, out.String())
	}
	// A command running longer than Options.Timeout is not cut by it: only ctx ends it.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = c.ExecStream(cctx, servertest.Running, api.ExecRequest{Cmd: []string{"sleep"}}, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ctx ended: %v", err)
	}
}

func TestSDKExecInteractive(t *testing.T) {
	fake, c := newFakeServer(t)
	ctx := context.Background()
	var out testkit.Buffer
	s, err := c.ExecInteractive(ctx, servertest.Running, api.ExecRequest{Cmd: []string{"cat"}, TTY: true, Rows: 10, Cols: 20}, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("typed")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, "typed")
	if err := s.Resize(40, 100); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, "typedresize 40x100\n")
	if err := s.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	exit, err := s.Wait()
	if err != nil || exit.ExitCode != 0 {
		t.Fatalf("Wait = %+v, %v", exit, err)
	}
	if e := fake.Execs(); len(e) != 1 || e[0].Req.Rows != 10 || !e[0].Req.TTY {
		t.Errorf("request %+v", e[0].Req)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Refusals before the upgrade are API errors.
	_, err = c.ExecInteractive(ctx, servertest.Stopped, api.ExecRequest{Cmd: []string{"cat"}}, nil, nil)
	if e, ok := api.AsError(err); !ok || e.Code != api.CodeConflict {
		t.Fatalf("stopped: %v", err)
	}
	// Refusals after it come back from Wait.
	s2, err := c.ExecInteractive(ctx, servertest.Running, api.ExecRequest{Cmd: []string{"rm", "-rf", "/"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Wait(); err == nil {
		t.Fatal("bad program accepted")
	} else if e, ok := api.AsError(err); !ok || e.Code != api.CodeInvalidRequest {
		t.Fatalf("bad program: %v", err)
	}

	// Close ends a command that still runs.
	s3, err := c.ExecInteractive(ctx, servertest.Running, api.ExecRequest{Cmd: []string{"sleep"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s3.Close()
	s3.Close() // idempotent
	for _, e := range fake.Execs() {
		select {
		case <-e.Closed():
		case <-time.After(10 * time.Second):
			if e.Req.Cmd[0] == "sleep" {
				t.Fatal("Close did not end the command")
			}
		}
	}
}

func TestSDKFiles(t *testing.T) {
	fake, c := newFakeServer(t)
	ctx := context.Background()
	data := bytes.Repeat([]byte("\x00clawbox\xff"), 1000)
	fw, err := c.WriteFile(ctx, servertest.Running, "/w/sub/f.bin", bytes.NewReader(data), 0o640)
	if err != nil || fw.Size != int64(len(data)) || fw.Mode != 0o640 {
		t.Fatalf("WriteFile = %+v, %v", fw, err)
	}
	if got, mode, _ := fake.File("/w/sub/f.bin"); !bytes.Equal(got, data) || mode != 0o640 {
		t.Fatalf("stored %d bytes, mode %o", len(got), mode)
	}
	var buf bytes.Buffer
	n, err := c.ReadFile(ctx, servertest.Running, "/w/sub/f.bin", &buf)
	if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("ReadFile = %d, %v", n, err)
	}
	if _, err := c.ReadFile(ctx, servertest.Running, "/cut", &buf); err == nil {
		t.Fatal("a cut transfer read as complete")
	}
	if _, err := c.ReadFile(ctx, servertest.Running, "/missing", &buf); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	list, err := c.ListFiles(ctx, servertest.Running, "/w")
	if err != nil || len(list.Entries) != 1 || list.Entries[0].Name != "sub" || !list.Entries[0].IsDir {
		t.Fatalf("ListFiles = %+v, %v", list, err)
	}
	if err := c.RemoveFile(ctx, servertest.Running, "/w", false); err == nil {
		t.Fatal("non-empty directory removed without recursive")
	}
	if err := c.RemoveFile(ctx, servertest.Running, "/w", true); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := fake.File("/w/sub/f.bin"); ok {
		t.Fatal("file still there")
	}
	if _, err := c.KillWithWorkspace(ctx, servertest.Stopped); err != nil || len(fake.RemovedWorkspaces()) != 1 {
		t.Fatalf("KillWithWorkspace: %v, removed %v", err, fake.RemovedWorkspaces())
	}
}

func waitFor(t *testing.T, b *testkit.Buffer, want string) {
	t.Helper()
	poll.Until(t, 10*time.Second, "output "+strconv.Quote(want), func() (bool, error) {
		return strings.Contains(b.String(), want), nil
	})
}
