package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/sandbox/docker"
	"github.com/clawbox/clawbox/internal/store"
)

// listenDoor is the exec section's door opener: a listener that accepts
// nothing, since the section never uses egress (the gateway has its own rows).
type listenDoor struct{}

func (listenDoor) OpenDoor(spec sandbox.DoorSpec) (io.Closer, error) {
	return net.Listen("unix", spec.SocketPath)
}

// execEnv is a sandbox manager of its own over the real engine, so that the exec
// rows measure the supervisor path itself (the HTTP routes add one loopback
// request to each).
type execEnv struct {
	m   *sandbox.Manager
	svc *sandbox.Service
	b   *docker.Backend
	db  *store.DB
	dir string
}

func newExecEnv(ctx context.Context, e *env) (*execEnv, error) {
	dir, err := os.MkdirTemp("", "cbxb") // short: socket paths have a length limit
	if err != nil {
		return nil, err
	}
	x := &execEnv{dir: dir}
	if x.db, err = store.Open(ctx, filepath.Join(dir, "state.db")); err != nil {
		x.close()
		return nil, err
	}
	if x.b, err = docker.New(docker.Options{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		x.close()
		return nil, err
	}
	if err := x.b.Connect(ctx); err != nil {
		x.close()
		return nil, err
	}
	c := e.cfg.Containers
	x.m, err = sandbox.New(sandbox.Options{
		Config: sandbox.Config{InstanceID: "clawbox-bench-exec-" + e.runID, ProxiesDir: filepath.Join(dir, "proxies"),
			AllowedImages: []string{"clawbox-bench/"}, DefaultImage: e.image, User: c.User, MaxExecs: 16},
		Backend: x.b, Store: x.db, Doors: listenDoor{}, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		x.close()
		return nil, err
	}
	if err := x.m.Start(ctx); err != nil {
		x.m = nil
		x.close()
		return nil, err
	}
	x.svc = sandbox.NewService(func() (*sandbox.Manager, error) { return x.m, nil }, nil)
	return x, nil
}

func (x *execEnv) close() {
	if x.m != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		x.m.Shutdown(ctx)
		cancel()
	}
	if x.b != nil {
		x.b.Close()
	}
	if x.db != nil {
		x.db.Close()
	}
	os.RemoveAll(x.dir)
}

func (x *execEnv) exec(ctx context.Context, id string, cmd ...string) error {
	ex, err := x.svc.Exec(ctx, id, api.ExecRequest{Cmd: cmd}, sandbox.ExecOptions{}, io.Discard, io.Discard)
	if err != nil {
		return err
	}
	defer ex.Close()
	res, err := ex.Wait()
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("exec %q exited %d", cmd, res.ExitCode)
	}
	return nil
}

// dockerExec runs cmd in container id through the Engine API (create, attach,
// read to the end, inspect for the exit code): what `docker exec` does.
func dockerExec(ctx context.Context, cli *client.Client, id string, cmd ...string) error {
	cr, err := cli.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return err
	}
	at, err := cli.ExecAttach(ctx, cr.ID, client.ExecAttachOptions{})
	if err != nil {
		return err
	}
	_, err = stdcopy.StdCopy(io.Discard, io.Discard, at.Reader)
	at.Close()
	if err != nil {
		return err
	}
	ins, err := cli.ExecInspect(ctx, cr.ID, client.ExecInspectOptions{})
	if err != nil {
		return err
	}
	if ins.ExitCode != 0 {
		return fmt.Errorf("docker exec %q exited %d", cmd, ins.ExitCode)
	}
	return nil
}

func tarOf(name string, data []byte) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))})
	tw.Write(data)
	tw.Close()
	return b.Bytes()
}

// benchExec times, interleaved: an exec of `true` in a running sandbox through
// its supervisor against the Engine API's exec (and the docker CLI's) in a
// container of the same image and hardened configuration; writing then reading
// 1 MiB against docker cp in and out; and exec latency with 8 at once.
func benchExec(ctx context.Context, e *env, iters int) ([]Row, error) {
	x, err := newExecEnv(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("exec manager: %w", err)
	}
	defer x.close()
	rec, err := x.m.Spawn(ctx, api.ContainerSpawnRequest{Task: "bench exec", Command: []string{"sleep", "600"}})
	if err != nil {
		return nil, fmt.Errorf("spawn: %w", err)
	}
	defer x.m.Kill(context.WithoutCancel(ctx), rec.ID)
	h, err := e.hardened()
	if err != nil {
		return nil, err
	}
	created, err := e.docker.ContainerCreate(ctx, h.createOptions(fmt.Sprintf("clawbox-bench-exec-%s", e.runID), []string{"sleep", "600"}))
	if err != nil {
		return nil, fmt.Errorf("baseline create: %w", err)
	}
	defer e.removeContainer(created.ID)
	if _, err := e.docker.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return nil, fmt.Errorf("baseline start: %w", err)
	}
	// docker cp cannot write into a read-only root file system nor a tmpfs: its
	// baseline container has a writable root, otherwise the same.
	cpOpts := h.createOptions(fmt.Sprintf("clawbox-bench-cp-%s", e.runID), []string{"sleep", "600"})
	cpOpts.HostConfig.ReadonlyRootfs = false
	cpc, err := e.docker.ContainerCreate(ctx, cpOpts)
	if err != nil {
		return nil, fmt.Errorf("cp baseline create: %w", err)
	}
	defer e.removeContainer(cpc.ID)
	if _, err := e.docker.ContainerStart(ctx, cpc.ID, client.ContainerStartOptions{}); err != nil {
		return nil, fmt.Errorf("cp baseline start: %w", err)
	}
	dockerCLI, cliErr := exec.LookPath("docker")
	mib := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	mibTar := tarOf("f", mib)

	var cb, raw, cli, fcb, fcp []time.Duration
	// A warm-up of each, untimed.
	if err := x.exec(ctx, rec.ID, "true"); err != nil {
		return nil, err
	}
	if err := dockerExec(ctx, e.docker, created.ID, "true"); err != nil {
		return nil, err
	}
	for i := 0; i < iters; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := x.exec(ctx, rec.ID, "true"); err != nil {
			return nil, fmt.Errorf("clawbox exec: %w", err)
		}
		cb = append(cb, time.Since(t0))

		t0 = time.Now()
		if err := dockerExec(ctx, e.docker, created.ID, "true"); err != nil {
			return nil, fmt.Errorf("engine exec: %w", err)
		}
		raw = append(raw, time.Since(t0))

		if cliErr == nil {
			t0 = time.Now()
			if out, err := exec.CommandContext(ctx, dockerCLI, "exec", created.ID, "true").CombinedOutput(); err != nil {
				return nil, fmt.Errorf("docker exec: %v: %s", err, out)
			}
			cli = append(cli, time.Since(t0))
		}

		t0 = time.Now()
		if _, err := x.svc.WriteFile(ctx, rec.ID, "/tmp/f", 0, bytes.NewReader(mib)); err != nil {
			return nil, fmt.Errorf("clawbox write: %w", err)
		}
		rc, _, err := x.svc.ReadFile(ctx, rec.ID, "/tmp/f")
		if err != nil {
			return nil, fmt.Errorf("clawbox read: %w", err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != int64(len(mib)) {
			return nil, fmt.Errorf("clawbox read: %d bytes, %v", n, err)
		}
		fcb = append(fcb, time.Since(t0))

		t0 = time.Now()
		if _, err := e.docker.CopyToContainer(ctx, cpc.ID, client.CopyToContainerOptions{DestinationPath: "/tmp", Content: bytes.NewReader(mibTar)}); err != nil {
			return nil, fmt.Errorf("docker cp in: %w", err)
		}
		cr, err := e.docker.CopyFromContainer(ctx, cpc.ID, client.CopyFromContainerOptions{SourcePath: "/tmp/f"})
		if err != nil {
			return nil, fmt.Errorf("docker cp out: %w", err)
		}
		_, err = io.Copy(io.Discard, cr.Content)
		cr.Content.Close()
		if err != nil {
			return nil, fmt.Errorf("docker cp out: %w", err)
		}
		fcp = append(fcp, time.Since(t0))
	}

	// 8 at once, each running iters execs.
	const conc = 8
	var mu sync.Mutex
	var par []time.Duration
	var perr error
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for range iters {
				t0 := time.Now()
				err := x.exec(ctx, rec.ID, "true")
				d := time.Since(t0)
				mu.Lock()
				if err != nil && perr == nil {
					perr = err
				}
				par = append(par, d)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if perr != nil {
		return nil, fmt.Errorf("concurrent exec: %w", perr)
	}

	rows := []Row{
		{Section: "exec", Name: "docker exec true (Engine API)", Unit: "ms", Stat: summarize(msAll(raw))},
		{Section: "exec", Name: "clawbox exec true (supervisor)", Unit: "ms", Stat: summarize(msAll(cb)), Baseline: "docker exec true (Engine API)"},
	}
	if len(cli) > 0 {
		rows = append(rows, Row{Section: "exec", Name: "docker exec true (CLI)", Unit: "ms", Stat: summarize(msAll(cli)), Baseline: "docker exec true (Engine API)"})
	}
	rows = append(rows,
		Row{Section: "exec", Name: "docker cp 1 MiB in + out (Engine API)", Unit: "ms", Stat: summarize(msAll(fcp))},
		Row{Section: "exec", Name: "clawbox write + read 1 MiB", Unit: "ms", Stat: summarize(msAll(fcb)), Baseline: "docker cp 1 MiB in + out (Engine API)"},
		Row{Section: "exec", Name: "clawbox exec true, 8 at once", Unit: "ms", Stat: summarize(msAll(par)), Baseline: "clawbox exec true (supervisor)",
			Note: "each of 8 goroutines runs the execs back to back in one sandbox"},
	)
	return rows, nil
}
