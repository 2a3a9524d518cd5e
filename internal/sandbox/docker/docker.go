// Package docker is the Docker Engine backend of internal/sandbox: it creates and
// starts hardened containers (read-only root, no capabilities, no new privileges,
// no network, bounded memory, CPU, pids and files, clawbox's supervisor as PID 1),
// waits on them, collects their demultiplexed logs and removes them, through the
// Engine API (github.com/moby/moby/client).
package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/sandbox"
)

var _ sandbox.Backend = (*Backend)(nil)

// Options configure a Backend. A zero field takes the default in its comment.
type Options struct {
	// Client is the Engine API client; nil: one from the environment (DOCKER_HOST,
	// DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_API_VERSION).
	Client *client.Client
	// CallTimeout bounds each Engine API call (a stop adds its grace). Default 30s.
	CallTimeout time.Duration
	// Logger; nil: slog.Default().
	Logger *slog.Logger
}

// Backend runs sandboxes as Docker containers. Create it with New, then Connect.
type Backend struct {
	cli     *client.Client
	ownsCli bool
	timeout time.Duration
	log     *slog.Logger

	ctx    context.Context // cancelled by Close: pending waits
	cancel context.CancelFunc

	wg      sync.WaitGroup          // wait drainers
	mu      sync.Mutex              // guards pending, closed
	pending map[string]*pendingWait // waits registered before start, by container id
	closed  bool
}

// pendingWait is a ContainerWait issued before ContainerStart, so the exit cannot
// be missed.
type pendingWait struct {
	out    <-chan waitOutcome
	cancel context.CancelFunc
}

type waitOutcome struct {
	resp container.WaitResponse
	err  error
}

// startWait issues a ContainerWait bounded by both ctx and the backend's life, and
// always drains it (the client's own goroutine blocks until its result is read).
// The caller holds b.mu and has checked that b is not closed.
func (b *Backend) startWaitLocked(ctx context.Context, id string, cond container.WaitCondition) (<-chan waitOutcome, context.CancelFunc) {
	wctx, cancel := context.WithCancel(b.ctx)
	stop := context.AfterFunc(ctx, cancel)
	res := b.cli.ContainerWait(wctx, id, client.ContainerWaitOptions{Condition: cond})
	out := make(chan waitOutcome, 1)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		select {
		case r := <-res.Result:
			out <- waitOutcome{resp: r}
		case err := <-res.Error:
			out <- waitOutcome{err: err}
		}
	}()
	return out, func() { stop(); cancel() }
}

// New returns a Backend. It does not contact the engine: call Connect.
func New(opts Options) (*Backend, error) {
	b := &Backend{cli: opts.Client, timeout: opts.CallTimeout, log: opts.Logger, pending: map[string]*pendingWait{}}
	if b.cli == nil {
		c, err := client.New(client.FromEnv)
		if err != nil {
			return nil, fmt.Errorf("docker client: %w", err)
		}
		b.cli, b.ownsCli = c, true
	}
	if b.timeout <= 0 {
		b.timeout = 30 * time.Second
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// Connect pings the engine and negotiates the API version now rather than lazily on
// the first call, so an unreachable or too old engine is a clear error at start.
func (b *Backend) Connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	_, err := b.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true, ForceNegotiate: true})
	if err == nil {
		return nil
	}
	if errdefs.IsInvalidArgument(err) {
		return fmt.Errorf("docker engine at %s is too old (clawbox needs Engine API %s or newer): %w", b.cli.DaemonHost(), client.MinAPIVersion, err)
	}
	return fmt.Errorf("docker engine at %s is not reachable (is the daemon running? is DOCKER_HOST right?): %w", b.cli.DaemonHost(), err)
}

// Ping checks that the engine answers. Unlike Connect it never renegotiates the API
// version: negotiation writes the client's state, and Ping runs beside other calls
// (health checks while sandboxes start), so only Connect, called once before the
// backend is shared, may do it.
func (b *Backend) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	if _, err := b.cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker engine at %s does not answer: %w", b.cli.DaemonHost(), err)
	}
	return nil
}

// Close cancels pending waits and closes the client if Backend made it. Idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for id, p := range b.pending {
		p.cancel()
		delete(b.pending, id)
	}
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
	if b.ownsCli {
		return b.cli.Close()
	}
	return nil
}

func (b *Backend) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.timeout)
}

// classify turns engine errors into the errdefs sentinels the sandbox package checks
// with errors.Is.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("docker %s: %w: %w", op, errdefs.ErrNotFound, err)
	}
	if client.IsErrConnectionFailed(err) {
		// The engine is down or restarting: API clients see 503 unavailable; the
		// engine's own text (with the socket path) stays in the chain for logs.
		return fmt.Errorf("docker %s: %w: %w", op, api.Errorf(api.CodeUnavailable, "the Docker daemon does not answer; try again when it is back"), err)
	}
	return fmt.Errorf("docker %s: %w", op, err)
}

// networkName is the dedicated bridge network of a container_direct sandbox.
func networkName(sandboxID string) string { return sandboxID + "-net" }

// Log rotation bounds the engine keeps per container on disk (clawbox keeps its own
// capped copy); they stop a chatty workload from filling the host's disk.
const (
	logMaxSize  = "64m"
	logMaxFiles = "1"
)

// tmpfsOptions are /tmp's mount options for a workload running as user ("uid:gid").
// mode=1777 makes /tmp writable for everyone; but runc before 1.2 chmods a tmpfs
// back to the image directory's mode after mounting it, so in an image whose /tmp is
// 0755 root the sandbox user would still have nowhere to write: the tmpfs is also
// owned by the sandbox user (uid=, gid=), which no chmod undoes.
func tmpfsOptions(sizeMB int, user string) string {
	opts := "rw,noexec,nosuid,nodev,size=" + strconv.Itoa(sizeMB) + "m,mode=1777"
	uid, gid, _ := strings.Cut(user, ":")
	if isDigits(uid) {
		opts += ",uid=" + uid
		if isDigits(gid) {
			opts += ",gid=" + gid
		}
	}
	return opts
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// imageDefaults are what an image runs when a spawn names no command.
type imageDefaults struct {
	Entrypoint, Cmd []string
}

// mainCommand is what a container runs as its main process, as Docker would
// run it: the image's entrypoint, then the spawn's command or else the image's.
func mainCommand(spec sandbox.Spec, img imageDefaults) []string {
	main := append([]string(nil), img.Entrypoint...)
	if len(spec.Command) > 0 {
		return append(main, spec.Command...)
	}
	return append(main, img.Cmd...)
}

// createOptions builds the hardened container configuration of SPEC 2.1 for spec.
// With a supervisor it is PID 1 (instead of the engine's init) and runs the main
// command, resolved from img when the spawn names none.
func createOptions(spec sandbox.Spec, img imageDefaults) client.ContainerCreateOptions {
	// The caller's labels first, clawbox's own after: a user label can never stand
	// in for one of clawbox's (the manager also refuses keys starting "clawbox.").
	labels := map[string]string{}
	for k, v := range spec.Labels {
		if !strings.HasPrefix(strings.ToLower(k), "clawbox.") {
			labels[k] = v
		}
	}
	labels[sandbox.LabelContainerID] = spec.ID
	labels[sandbox.LabelTask] = sandbox.TaskLabel(spec.Task)
	labels[sandbox.LabelPolicy] = string(spec.Policy)
	labels[sandbox.LabelInstance] = spec.Instance
	if spec.Pool != "" {
		labels[sandbox.LabelPool] = spec.Pool
	}
	pids := spec.PidsLimit
	init := true
	hc := &container.HostConfig{
		NetworkMode:    "none",
		ReadonlyRootfs: true,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		Tmpfs:          map[string]string{"/tmp": tmpfsOptions(spec.TmpfsMB, spec.User)},
		Init:           &init,
		Runtime:        spec.Runtime,
		LogConfig:      container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": logMaxSize, "max-file": logMaxFiles}},
		Resources: container.Resources{
			Memory:     spec.MemoryBytes,
			MemorySwap: spec.MemoryBytes, // memory + swap = memory: no swap
			CPUShares:  spec.CPUShares,
			NanoCPUs:   spec.NanoCPUs,
			PidsLimit:  &pids,
			Ulimits:    []*container.Ulimit{{Name: "nofile", Soft: spec.Nofile, Hard: spec.Nofile}},
		},
	}
	if spec.Policy == sandbox.PolicyContainerDirect {
		hc.NetworkMode = container.NetworkMode(networkName(spec.ID))
	}
	if spec.SocketDir != "" {
		hc.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: spec.SocketDir, Target: sandbox.ContainerSocketDir, ReadOnly: true}}
	}
	cfg := &container.Config{
		Image:  spec.Image,
		User:   spec.User,
		Env:    append([]string(nil), spec.Env...),
		Labels: labels,
	}
	if spec.Supervisor != "" {
		off := false
		hc.Init = &off // the supervisor is the init
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: spec.Supervisor, Target: sandbox.ContainerSupervisorPath, ReadOnly: true})
		cfg.Entrypoint = append([]string(nil), spec.Entrypoint...)
		cfg.Cmd = mainCommand(spec, img)
		if len(cfg.Cmd) == 0 || spec.WaitMain {
			cfg.Cmd = nil // no main command: the supervisor idles (or waits for one), serving exec
		}
		if spec.WorkspaceDir != "" {
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: spec.WorkspaceDir, Target: sandbox.ContainerWorkspacePath})
		}
	} else if len(spec.Command) > 0 {
		cfg.Cmd = append([]string(nil), spec.Command...)
	}
	return client.ContainerCreateOptions{Name: spec.ID, Config: cfg, HostConfig: hc}
}

// ImageDefaults returns what image runs when a spawn names no command: its
// entrypoint and its command (sandbox.ImageDefaulter; a pooled sandbox's main
// command is resolved from it at claim). A missing image is 400 image_not_found.
func (b *Backend) ImageDefaults(ctx context.Context, image string) (entrypoint, cmd []string, err error) {
	cctx, cancel := b.call(ctx)
	defer cancel()
	ii, err := b.cli.ImageInspect(cctx, image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil, api.Errorf(api.CodeImageNotFound, "image %q is not present locally: run `clawbox image pull %s` first", image, image)
		}
		return nil, nil, classify("image inspect", err)
	}
	if c := ii.Config; c != nil {
		return c.Entrypoint, c.Cmd, nil
	}
	return nil, nil, nil
}

// Start creates and starts a hardened container. The image must be present locally
// (it is never pulled): a missing image is 400 image_not_found. On error nothing is
// left behind.
func (b *Backend) Start(ctx context.Context, spec sandbox.Spec) (id string, err error) {
	cctx, cancel := b.call(ctx)
	defer cancel()
	ii, err := b.cli.ImageInspect(cctx, spec.Image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return "", api.Errorf(api.CodeImageNotFound, "image %q is not present locally: run `clawbox image pull %s` first", spec.Image, spec.Image)
		}
		return "", classify("image inspect", err)
	}
	var img imageDefaults
	if c := ii.Config; c != nil {
		img = imageDefaults{Entrypoint: c.Entrypoint, Cmd: c.Cmd}
	}
	opts := createOptions(spec, img)
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()
	if spec.Policy == sandbox.PolicyContainerDirect {
		name := networkName(spec.ID)
		if _, err := b.cli.NetworkCreate(cctx, name, client.NetworkCreateOptions{
			Driver: "bridge",
			Labels: map[string]string{sandbox.LabelContainerID: spec.ID, sandbox.LabelInstance: spec.Instance},
		}); err != nil {
			return "", classify("network create", err)
		}
		cleanup = append(cleanup, func() { b.removeNetwork(context.WithoutCancel(ctx), spec.ID) })
	}
	created, err := b.cli.ContainerCreate(cctx, opts)
	if err != nil {
		return "", classify("container create", err)
	}
	id = created.ID
	// The cleanup captures the id itself: a failing return sets the named result id
	// to "" before the deferred cleanup runs, which used to leave the container behind.
	createdID := created.ID
	cleanup = append(cleanup, func() {
		rctx, rcancel := b.call(context.WithoutCancel(ctx))
		defer rcancel()
		if _, rerr := b.cli.ContainerRemove(rctx, createdID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil && !errdefs.IsNotFound(rerr) {
			b.log.Error("docker: remove container after failed start", "container", createdID, "err", rerr)
		}
	})
	// Wait before start, so that however fast the workload exits, its exit is seen.
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return "", errors.New("docker backend closed")
	}
	out, wcancel := b.startWaitLocked(b.ctx, id, container.WaitConditionNextExit)
	b.pending[id] = &pendingWait{out: out, cancel: wcancel}
	b.mu.Unlock()
	cleanup = append(cleanup, func() { b.dropPending(createdID) })
	if _, err := b.cli.ContainerStart(cctx, id, client.ContainerStartOptions{}); err != nil {
		if e := runtimeFailure(spec.Runtime, err); e != nil {
			b.log.Warn("docker: the OCI runtime could not start a container", "container", id, "runtime", spec.Runtime, "err", err)
			return "", fmt.Errorf("docker container start: %w: %w", e, err)
		}
		return "", classify("container start", err)
	}
	return id, nil
}

// runtimeFailure is the error a caller sees when the engine's OCI runtime (runc,
// runsc) failed to create or start the container, or nil for any other error. It
// names the runtime and, when the runtime was killed (exit status 137: the memory
// limit, which under gVisor also counts the runtime's own processes), says so; the
// engine's own text (host paths) stays in the server log.
func runtimeFailure(runtime string, err error) *api.Error {
	msg := err.Error()
	if !strings.Contains(msg, "OCI runtime") {
		return nil
	}
	if runtime == "" {
		runtime = "the engine's default runtime"
	}
	if strings.Contains(msg, "exit status 137") || strings.Contains(msg, "signal: killed") {
		return api.Errorf(api.CodeUnavailable, "the container runtime (%s) was killed while starting the sandbox, most likely by its memory limit: ask for more memory_mb, or retry when the host is less loaded", runtime)
	}
	return api.Errorf(api.CodeUnavailable, "the container runtime (%s) could not start the sandbox; the server log has the engine's message", runtime)
}

func (b *Backend) dropPending(id string) {
	b.mu.Lock()
	p := b.pending[id]
	delete(b.pending, id)
	b.mu.Unlock()
	if p != nil {
		p.cancel()
	}
}

// Wait blocks until the container is not running and returns its exit. A container
// removed by someone else meanwhile is a not-found error, not an exit.
func (b *Backend) Wait(ctx context.Context, id string) (sandbox.Exit, error) {
	b.mu.Lock()
	p := b.pending[id]
	delete(b.pending, id)
	b.mu.Unlock()
	var out <-chan waitOutcome
	if p != nil {
		defer p.cancel()
		out = p.out
	} else {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return sandbox.Exit{}, errors.New("docker backend closed")
		}
		var cancel context.CancelFunc
		out, cancel = b.startWaitLocked(ctx, id, container.WaitConditionNotRunning)
		b.mu.Unlock()
		defer cancel()
	}
	select {
	case o := <-out:
		if o.err != nil {
			return sandbox.Exit{}, classify("container wait", o.err)
		}
		r := o.resp
		exit := sandbox.Exit{Code: int(r.StatusCode)}
		if r.Error != nil && r.Error.Message != "" {
			b.log.Warn("docker: wait reported an error", "container", id, "err", r.Error.Message)
		}
		// The wait response does not say whether the kernel OOM-killed it. A
		// container removed behind clawbox's back (docker rm -f) also ends the wait
		// with an exit code: that sandbox is lost, not failed.
		c, err := b.Inspect(ctx, id)
		if errors.Is(err, errdefs.ErrNotFound) {
			return sandbox.Exit{}, fmt.Errorf("docker container wait: %w", err)
		}
		if err == nil {
			exit.OOMKilled = c.Exit.OOMKilled
		}
		return exit, nil
	case <-ctx.Done():
		return sandbox.Exit{}, ctx.Err()
	}
}

// Stop sends SIGTERM and, after grace, SIGKILL.
func (b *Backend) Stop(ctx context.Context, id string, grace time.Duration) error {
	secs := int(math.Ceil(grace.Seconds()))
	ctx, cancel := context.WithTimeout(ctx, b.timeout+time.Duration(secs)*time.Second)
	defer cancel()
	_, err := b.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
	return classify("container stop", err)
}

// Logs copies the container's demultiplexed output to stdout and stderr.
func (b *Backend) Logs(ctx context.Context, id string, follow bool, stdout, stderr io.Writer) error {
	if !follow {
		var cancel context.CancelFunc
		ctx, cancel = b.call(ctx)
		defer cancel()
	}
	rc, err := b.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow})
	if err != nil {
		return classify("container logs", err)
	}
	defer rc.Close()
	if _, err := stdcopy.StdCopy(stdout, stderr, rc); err != nil && ctx.Err() == nil {
		return classify("container logs", err)
	}
	return nil
}

// Remove force-removes the container and, for container_direct, its network. A
// container that is already gone is not an error.
func (b *Backend) Remove(ctx context.Context, id string) error {
	b.dropPending(id)
	cctx, cancel := b.call(ctx)
	defer cancel()
	var sandboxID, policy string
	if r, err := b.cli.ContainerInspect(cctx, id, client.ContainerInspectOptions{}); err == nil && r.Container.Config != nil {
		sandboxID = r.Container.Config.Labels[sandbox.LabelContainerID]
		policy = r.Container.Config.Labels[sandbox.LabelPolicy]
	}
	if _, err := b.cli.ContainerRemove(cctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
		return classify("container remove", err)
	}
	if policy == string(sandbox.PolicyContainerDirect) && sandboxID != "" {
		b.removeNetwork(ctx, sandboxID)
	}
	return nil
}

func (b *Backend) removeNetwork(ctx context.Context, sandboxID string) {
	ctx, cancel := b.call(ctx)
	defer cancel()
	if _, err := b.cli.NetworkRemove(ctx, networkName(sandboxID), client.NetworkRemoveOptions{}); err != nil && !errdefs.IsNotFound(err) {
		b.log.Error("docker: remove sandbox network", "sandbox", sandboxID, "err", err)
	}
}

// List returns every container (running or not) labelled with instance.
func (b *Backend) List(ctx context.Context, instance string) ([]sandbox.Container, error) {
	ctx, cancel := b.call(ctx)
	defer cancel()
	f := make(client.Filters).Add("label", sandbox.LabelInstance+"="+instance)
	res, err := b.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, classify("container list", err)
	}
	out := make([]sandbox.Container, 0, len(res.Items))
	for _, c := range res.Items {
		out = append(out, sandbox.Container{ID: c.ID, Labels: c.Labels, Running: c.State == container.StateRunning})
	}
	return out, nil
}

// Inspect returns one container's state.
func (b *Backend) Inspect(ctx context.Context, id string) (sandbox.Container, error) {
	ctx, cancel := b.call(ctx)
	defer cancel()
	r, err := b.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return sandbox.Container{}, classify("container inspect", err)
	}
	if s := r.Container.State; s != nil && !s.Running && (s.Status == container.StateRemoving || s.Status == container.StateDead) {
		// Someone else is removing it (docker rm -f kills, then removes): it is gone.
		// The daemon reports "removing" while it deletes and "dead" once the
		// container is marked for deletion (also when an inspect queued behind the
		// removal's lock answers after the removal flag was reset).
		return sandbox.Container{}, fmt.Errorf("docker container inspect: %w: container %s is being removed (%s)", errdefs.ErrNotFound, id, s.Status)
	}
	c := sandbox.Container{ID: r.Container.ID}
	if r.Container.Config != nil {
		c.Labels = r.Container.Config.Labels
	}
	if s := r.Container.State; s != nil {
		c.Running = s.Running || s.Restarting
		c.Exit = sandbox.Exit{Code: s.ExitCode, OOMKilled: s.OOMKilled}
	}
	return c, nil
}
