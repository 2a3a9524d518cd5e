package docker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/sandbox"

	"github.com/clawbox/clawbox/internal/testkit"
)

type execResult struct {
	stdout, stderr string
	exit           api.ExecExit
}

// run execs req in sandbox id to its end.
func run(t *testing.T, ctx context.Context, svc *sandbox.Service, id string, req api.ExecRequest) (execResult, error) {
	t.Helper()
	var out, errb testkit.Buffer
	x, err := svc.Exec(ctx, id, req, sandbox.ExecOptions{}, &out, &errb)
	if err != nil {
		return execResult{}, err
	}
	defer x.Close()
	exit, err := x.Wait()
	return execResult{stdout: out.String(), stderr: errb.String(), exit: exit}, err
}

func mustRun(t *testing.T, ctx context.Context, svc *sandbox.Service, id string, cmd ...string) execResult {
	t.Helper()
	r, err := run(t, ctx, svc, id, api.ExecRequest{Cmd: cmd})
	if err != nil {
		t.Fatalf("exec %q: %v", cmd, err)
	}
	return r
}

func spawnRunning(t *testing.T, ctx context.Context, e *env) *sandbox.Record {
	t.Helper()
	rec, err := e.m.Spawn(ctx, spawnReq("sleep", "300"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Kill(context.Background(), rec.ID) })
	return rec
}

func wantErrCode(t *testing.T, err error, code, field string) {
	t.Helper()
	var ae *api.Error
	var got string
	if errors.As(err, &ae) {
		if d, ok := ae.Details.(map[string]string); ok {
			got = d["field"]
		}
	}
	if ae == nil || ae.Code != code || (field != "" && got != field) {
		t.Fatalf("error %v, want code %s field %q", err, code, field)
	}
}

func TestExec(t *testing.T) { dockertest.ForEachRuntime(t, testExec) }

func testExec(t *testing.T, rt dockertest.Runtime) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{runtime: rt})
	ctx := testCtx(t)
	rec := spawnRunning(t, ctx, e)

	t.Run("exit code and both streams", func(t *testing.T) {
		r := mustRun(t, ctx, e.svc, rec.ID, "sh", "-c", "echo out; echo err >&2; exit 3")
		if r.stdout != "out\n" || r.stderr != "err\n" || r.exit.ExitCode != 3 || r.exit.EndedBy != api.ExecEndedExit || r.exit.TimedOut {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("stdin, env, workdir, sandbox user", func(t *testing.T) {
		r, err := run(t, ctx, e.svc, rec.ID, api.ExecRequest{Cmd: []string{"sh", "-c", `cat; echo "$FOO"; pwd; id -u`}, Stdin: "in\n",
			Env: map[string]string{"FOO": "bar"}, Workdir: "/tmp"})
		if err != nil {
			t.Fatal(err)
		}
		if r.stdout != "in\nbar\n/tmp\n1000\n" || r.exit.ExitCode != 0 {
			t.Errorf("got %+v", r)
		}
		r, err = run(t, ctx, e.svc, rec.ID, api.ExecRequest{Cmd: []string{"wc", "-c"}, StdinBase64: "AAEC/w=="})
		if err != nil || strings.TrimSpace(r.stdout) != "4" {
			t.Errorf("binary stdin: %+v %v", r, err)
		}
	})
	t.Run("no such program", func(t *testing.T) {
		r, err := run(t, ctx, e.svc, rec.ID, api.ExecRequest{Cmd: []string{"no-such-program"}})
		wantErrCode(t, err, api.CodeNotFound, "")
		if r.exit.ExitCode != 127 {
			t.Errorf("exit %+v", r.exit)
		}
	})
	t.Run("refused requests", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			req   api.ExecRequest
			field string
		}{
			{"empty cmd", api.ExecRequest{}, "cmd"},
			{"NUL in cmd", api.ExecRequest{Cmd: []string{"echo", "a\x00b"}}, "cmd"},
			{"reserved env", api.ExecRequest{Cmd: []string{"true"}, Env: map[string]string{"LD_PRELOAD": "/x.so"}}, "env.LD_PRELOAD"},
			{"clawbox env", api.ExecRequest{Cmd: []string{"true"}, Env: map[string]string{"clawbox_proxy_token": "x"}}, "env.clawbox_proxy_token"},
			{"bad env key", api.ExecRequest{Cmd: []string{"true"}, Env: map[string]string{"A=B": "x"}}, "env"},
			{"relative workdir", api.ExecRequest{Cmd: []string{"true"}, Workdir: "tmp"}, "workdir"},
			{"timeout above the max", api.ExecRequest{Cmd: []string{"true"}, TimeoutMS: int64(2 * time.Hour / time.Millisecond)}, "timeout_ms"},
			{"negative timeout", api.ExecRequest{Cmd: []string{"true"}, TimeoutMS: -1}, "timeout_ms"},
			{"both stdins", api.ExecRequest{Cmd: []string{"true"}, Stdin: "a", StdinBase64: "YQ=="}, "stdin"},
			{"bad base64", api.ExecRequest{Cmd: []string{"true"}, StdinBase64: "%%%"}, "stdin"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := run(t, ctx, e.svc, rec.ID, tc.req)
				wantErrCode(t, err, api.CodeInvalidRequest, tc.field)
			})
		}
	})
	t.Run("exec timeout", func(t *testing.T) {
		r, err := run(t, ctx, e.svc, rec.ID, api.ExecRequest{Cmd: []string{"sleep", "60"}, TimeoutMS: 300})
		if err != nil {
			t.Fatal(err)
		}
		if !r.exit.TimedOut || r.exit.EndedBy != api.ExecEndedTimeout {
			t.Errorf("exit %+v", r.exit)
		}
	})
	t.Run("zombies are reaped", func(t *testing.T) {
		// Orphans re-parented to PID 1 (the supervisor) must not stay zombies.
		mustRun(t, ctx, e.svc, rec.ID, "sh", "-c", "for i in 1 2 3 4 5; do (sleep 0.1 &); done")
		pollUntil(t, ctx, "zombies reaped", func() bool {
			r := mustRun(t, ctx, e.svc, rec.ID, "sh", "-c", "cat /proc/[0-9]*/stat")
			return !strings.Contains(r.stdout, ") Z ")
		})
	})
	t.Run("kill -9 1 from the workload", func(t *testing.T) {
		_, err := run(t, ctx, e.svc, rec.ID, api.ExecRequest{Cmd: []string{"kill", "-9", "1"}})
		if !rt.GVisor() {
			// Under runc, PID 1 of a PID namespace cannot be SIGKILLed from inside it.
			if err != nil {
				t.Fatal(err)
			}
			if r := mustRun(t, ctx, e.svc, rec.ID, "echo", "still"); r.stdout != "still\n" {
				t.Errorf("after kill -9 1: %+v", r)
			}
			return
		}
		// gVisor lets the workload kill its PID 1: the sandbox ends, reported as
		// Docker reports it, and later calls are 409.
		final, werr := e.m.Wait(ctx, rec.ID)
		if werr != nil || final.Status != sandbox.StatusFailed || final.ExitCode == nil || *final.ExitCode != 137 {
			t.Fatalf("after kill -9 1 (exec: %v): %v %+v", err, werr, final)
		}
		_, err = run(t, ctx, e.svc, rec.ID, api.ExecRequest{Cmd: []string{"true"}})
		wantErrCode(t, err, api.CodeConflict, "")
	})
}

func TestExecTTY(t *testing.T) { dockertest.ForEachRuntime(t, testExecTTY) }

func testExecTTY(t *testing.T, rt dockertest.Runtime) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{runtime: rt})
	ctx := testCtx(t)
	rec := spawnRunning(t, ctx, e)
	var out, errb testkit.Buffer
	script := `busybox stty size; echo ready; read x; busybox stty size; trap 'echo INT; exit 7' INT; echo armed; while :; do sleep 1; done`
	x, err := e.svc.Exec(ctx, rec.ID, api.ExecRequest{Cmd: []string{"sh", "-c", script}, TTY: true, Rows: 24, Cols: 80},
		sandbox.ExecOptions{KeepStdin: true}, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	waitOutput(t, ctx, &out, "24 80\r\nready")
	if err := x.Resize(40, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, ctx, &out, "40 100\r\narmed")
	if _, err := x.Write([]byte{0x03}); err != nil { // Ctrl-C through the pty's line discipline
		t.Fatal(err)
	}
	waitOutput(t, ctx, &out, "INT")
	exit, err := x.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if exit.ExitCode != 7 || !strings.Contains(out.String(), "INT") || errb.String() != "" {
		t.Errorf("exit %+v stdout %q stderr %q", exit, out.String(), errb.String())
	}
	if err := x.Close(); err != nil {
		t.Error(err)
	}
	// Resize without a TTY is refused.
	y, err := e.svc.Exec(ctx, rec.ID, api.ExecRequest{Cmd: []string{"cat"}}, sandbox.ExecOptions{KeepStdin: true}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	wantErrCode(t, y.Resize(10, 10), api.CodeInvalidRequest, "tty")
	if _, err := y.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	y.CloseStdin()
	if exit, err := y.Wait(); err != nil || exit.ExitCode != 0 {
		t.Errorf("cat: %+v %v", exit, err)
	}
}

func TestExecOutputCapAndRedaction(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{maxExecOutput: 100 << 10, redactor: replaceRedactor{}})
	ctx := testCtx(t)
	rec := spawnRunning(t, ctx, e)
	r := mustRun(t, ctx, e.svc, rec.ID, "sh", "-c", "yes | head -c 1000000; echo done >&2")
	if len(r.stdout) != 100<<10 || !r.exit.Truncated || r.stderr != "done\n" || r.exit.ExitCode != 0 {
		t.Errorf("stdout %d bytes, exit %+v, stderr %q", len(r.stdout), r.exit, r.stderr)
	}
	// The secret is written in two pieces, in two reads of the pipe.
	half := len(testSecret) / 2
	script := "echo -n " + testSecret[:half] + "; sleep 0.3; echo " + testSecret[half:] + "; echo " + testSecret + " >&2"
	r = mustRun(t, ctx, e.svc, rec.ID, "sh", "-c", script)
	if r.stdout != "[REDACTED]\n" || r.stderr != "[REDACTED]\n" {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	// A secret straddling the cap is redacted before the cut: the output ends with
	// the start of "[REDACTED]", never with the start of the secret.
	script = "head -c " + strconv.Itoa(100<<10-5) + " /dev/zero | tr '\\0' a; echo " + testSecret
	r = mustRun(t, ctx, e.svc, rec.ID, "sh", "-c", script)
	if len(r.stdout) != 100<<10 || !strings.HasSuffix(r.stdout, "a[REDA") || !r.exit.Truncated {
		t.Errorf("secret at the cap: stdout %d bytes ending %q, truncated %v; want %d bytes ending \"a[REDA\"",
			len(r.stdout), r.stdout[max(0, len(r.stdout)-12):], r.exit.Truncated, 100<<10)
	}
	e.audit.mu.Lock()
	defer e.audit.mu.Unlock()
	var execs int
	for _, a := range e.audit.recs {
		if a.Event == "exec" {
			execs++
			if strings.Contains(a.Reason, testSecret) || a.ExitCode == nil || !strings.Contains(a.Reason, "ended_by exit") {
				t.Errorf("exec audit record %+v", a)
			}
		}
	}
	if execs != 3 {
		t.Errorf("%d exec audit records, want 3", execs)
	}
}

func TestExecTimeoutVsSandboxDeadline(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{})
	ctx := testCtx(t)
	req := spawnReq("sleep", "300")
	req.Capabilities = &api.ContainerCapabilities{Resources: &api.ContainerResources{TimeoutMS: ptr[int64](2500)}}
	rec, err := e.m.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	r, err := run(t, ctx, e.svc, rec.ID, api.ExecRequest{Cmd: []string{"sleep", "60"}, TimeoutMS: 30000})
	if err != nil {
		t.Fatal(err)
	}
	if !r.exit.TimedOut || r.exit.EndedBy != api.ExecEndedDeadline {
		t.Errorf("exit %+v, want ended by the sandbox deadline", r.exit)
	}
	final, err := e.m.Wait(ctx, rec.ID)
	if err != nil || final.Status != sandbox.StatusTimedOut {
		t.Fatalf("sandbox %v %+v", err, final)
	}
	_, err = run(t, ctx, e.svc, rec.ID, api.ExecRequest{Cmd: []string{"true"}})
	wantErrCode(t, err, api.CodeConflict, "")
	_, err = run(t, ctx, e.svc, "clawbox-nope", api.ExecRequest{Cmd: []string{"true"}})
	wantErrCode(t, err, api.CodeNotFound, "")
}

// TestExecWhenTheWorkloadEndsItsSupervisor: SIGTERM to PID 1 is forwarded to the
// main command, which ends the sandbox: calls answer 409 or 503, never hang, and
// the sandbox's status is Docker's.
func TestExecWhenTheWorkloadEndsItsSupervisor(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{})
	ctx := testCtx(t)
	rec, err := e.m.Spawn(ctx, spawnReq("sleep", "300"))
	if err != nil {
		t.Fatal(err)
	}
	var out testkit.Buffer
	long, err := e.svc.Exec(ctx, rec.ID, api.ExecRequest{Cmd: []string{"sleep", "60"}}, sandbox.ExecOptions{}, &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	if _, err := run(t, ctx, e.svc, rec.ID, api.ExecRequest{Cmd: []string{"kill", "-TERM", "1"}}); err != nil {
		t.Logf("kill exec: %v", err) // it may end with its sandbox
	}
	exit, err := long.Wait()
	if err != nil || exit.EndedBy != api.ExecEndedSandbox || exit.ExitCode != -1 {
		t.Errorf("running exec: %+v %v, want ended by the sandbox", exit, err)
	}
	final, err := e.m.Wait(ctx, rec.ID)
	if err != nil || final.Status != sandbox.StatusFailed || final.ExitCode == nil || *final.ExitCode != 143 {
		t.Fatalf("sandbox %v %+v", err, final)
	}
	_, err = run(t, ctx, e.svc, rec.ID, api.ExecRequest{Cmd: []string{"true"}})
	wantErrCode(t, err, api.CodeConflict, "")
	_, err = e.svc.ListFiles(ctx, rec.ID, "/")
	wantErrCode(t, err, api.CodeConflict, "")
}

// TestExecAfterRestart: a restarted server listens again on the same socket with
// the same token; the supervisor redials and exec works.
func TestExecAfterRestart(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	w := newWorld(t)
	e1 := newEnv(t, w, envOptions{})
	ctx := testCtx(t)
	rec, err := e1.m.Spawn(ctx, spawnReq("sleep", "300"))
	if err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, ctx, e1.svc, rec.ID, "echo", "one"); r.stdout != "one\n" {
		t.Fatalf("before restart: %+v", r)
	}
	e1.close(t)
	_, err = run(t, ctx, e1.svc, rec.ID, api.ExecRequest{Cmd: []string{"true"}})
	if err == nil {
		t.Fatal("exec through a shut-down manager succeeded")
	}
	e2 := newEnv(t, w, envOptions{})
	if r := mustRun(t, ctx, e2.svc, rec.ID, "echo", "two"); r.stdout != "two\n" {
		t.Fatalf("after restart: %+v", r)
	}
	if _, err := e2.m.Kill(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
}

// waitOutput polls until b holds want, for at most 30s; the test fails with what
// b holds then.
func waitOutput(t *testing.T, ctx context.Context, b *testkit.Buffer, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for !strings.Contains(b.String(), want) {
		select {
		case <-ctx.Done():
			t.Fatalf("output %q never held %q", b.String(), want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestFiles(t *testing.T) { dockertest.ForEachRuntime(t, testFiles) }

func testFiles(t *testing.T, rt dockertest.Runtime) {
	requireDocker(t)
	t.Parallel()
	e := newEnv(t, newWorld(t), envOptions{runtime: rt, maxFileBytes: 1 << 20})
	ctx := testCtx(t)
	rec := spawnRunning(t, ctx, e)
	bin := make([]byte, 300<<10)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	t.Run("write, read, list, modes, owner", func(t *testing.T) {
		w, err := e.svc.WriteFile(ctx, rec.ID, "/tmp/a/b/c.bin", 0o600, bytes.NewReader(bin))
		if err != nil {
			t.Fatal(err)
		}
		if w != (api.FileWritten{Path: "/tmp/a/b/c.bin", Size: int64(len(bin)), Mode: 0o600}) {
			t.Errorf("written %+v", w)
		}
		rc, fe, err := e.svc.ReadFile(ctx, rec.ID, "/tmp/a/b/c.bin")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, bin) {
			t.Fatalf("read back %d bytes, err %v", len(got), err)
		}
		if fe.Name != "c.bin" || fe.Size != int64(len(bin)) || fe.Mode != 0o600 || fe.MTime.IsZero() {
			t.Errorf("entry %+v", fe)
		}
		if _, err := e.svc.WriteFile(ctx, rec.ID, "/tmp/a/run.sh", 0, strings.NewReader("#!/bin/sh\n")); err != nil {
			t.Fatal(err)
		}
		list, err := e.svc.ListFiles(ctx, rec.ID, "/tmp/a")
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]api.FileEntry{}
		for _, en := range list.Entries {
			names[en.Name] = en
		}
		if list.Path != "/tmp/a" || len(names) != 2 || !names["b"].IsDir || names["run.sh"].Mode != 0o644 || names["run.sh"].Size != 10 {
			t.Errorf("list %+v", list)
		}
		// Written as the sandbox user, seen by the workload.
		r := mustRun(t, ctx, e.svc, rec.ID, "ls", "-ln", "/tmp/a/b/c.bin")
		if f := strings.Fields(r.stdout); len(f) < 4 || f[2] != "1000" || f[3] != "1000" || !strings.HasPrefix(f[0], "-rw-------") {
			t.Errorf("ls -ln: %q", r.stdout)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := e.svc.WriteFile(ctx, rec.ID, "/etc/passwd2", 0, strings.NewReader("x")) // read-only root
		wantErrCode(t, err, api.CodePermissionDenied, "")
		_, err = e.svc.WriteFile(ctx, rec.ID, "/run/clawbox/x", 0, strings.NewReader("x")) // read-only socket dir
		wantErrCode(t, err, api.CodePermissionDenied, "")
		_, err = e.svc.WriteFile(ctx, rec.ID, "/tmp/big", 0, bytes.NewReader(make([]byte, 1<<20+1)))
		wantErrCode(t, err, api.CodeTooLarge, "")
		if _, _, err := e.svc.ReadFile(ctx, rec.ID, "/tmp/big"); err == nil {
			t.Error("an over-cap write left a file behind")
		}
		_, err = e.svc.WriteFile(ctx, rec.ID, "tmp/rel", 0, strings.NewReader("x"))
		wantErrCode(t, err, api.CodeInvalidRequest, "path")
		_, err = e.svc.WriteFile(ctx, rec.ID, "/tmp/m", 0o10000, strings.NewReader("x"))
		wantErrCode(t, err, api.CodeInvalidRequest, "mode")
		_, _, err = e.svc.ReadFile(ctx, rec.ID, "/tmp/nope")
		wantErrCode(t, err, api.CodeNotFound, "path")
		_, _, err = e.svc.ReadFile(ctx, rec.ID, "/tmp/x\x00y")
		wantErrCode(t, err, api.CodeInvalidRequest, "path")
		_, _, err = e.svc.ReadFile(ctx, rec.ID, "/tmp")
		wantErrCode(t, err, api.CodeInvalidRequest, "path")
		_, err = e.svc.ListFiles(ctx, rec.ID, "/nope")
		wantErrCode(t, err, api.CodeNotFound, "path")
		mustRun(t, ctx, e.svc, rec.ID, "sh", "-c", "echo s > /tmp/secret; chmod 000 /tmp/secret")
		_, _, err = e.svc.ReadFile(ctx, rec.ID, "/tmp/secret")
		wantErrCode(t, err, api.CodePermissionDenied, "")
	})
	t.Run("remove", func(t *testing.T) {
		if _, err := e.svc.WriteFile(ctx, rec.ID, "/tmp/d/e/f", 0, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		wantErrCode(t, e.svc.RemoveFile(ctx, rec.ID, "/tmp/d", false), api.CodeInvalidRequest, "path")
		if err := e.svc.RemoveFile(ctx, rec.ID, "/tmp/d/e/f", false); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.RemoveFile(ctx, rec.ID, "/tmp/d", true); err != nil {
			t.Fatal(err)
		}
		wantErrCode(t, e.svc.RemoveFile(ctx, rec.ID, "/tmp/d", true), api.CodeNotFound, "path")
		wantErrCode(t, e.svc.RemoveFile(ctx, rec.ID, "/", true), api.CodeInvalidRequest, "path")
	})
	t.Run("audited", func(t *testing.T) {
		evs := e.audit.events(rec.ID)
		var w, r int
		for _, ev := range evs {
			switch ev {
			case "file_written":
				w++
			case "file_removed":
				r++
			}
		}
		if w != 3 || r != 2 {
			t.Errorf("events %v: %d writes, %d removes; want 3 and 2", evs, w, r)
		}
	})
	t.Run("ended sandbox", func(t *testing.T) {
		if _, err := e.m.Kill(ctx, rec.ID); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.WriteFile(ctx, rec.ID, "/tmp/z", 0, strings.NewReader("x"))
		wantErrCode(t, err, api.CodeConflict, "")
		_, _, err = e.svc.ReadFile(ctx, rec.ID, "/tmp/a/run.sh")
		wantErrCode(t, err, api.CodeConflict, "")
		wantErrCode(t, e.svc.RemoveWorkspace(ctx, rec.ID), api.CodeNotFound, "")
	})
}
