package sandbox

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/egress/tlsca"
)

// In-container paths (the wire contract with workloads).
const (
	// ContainerSocketDir is where a sandbox's socket directory is mounted, read-only.
	ContainerSocketDir = "/run/clawbox"
	// ContainerSocketPath is the door's socket inside the container.
	ContainerSocketPath = ContainerSocketDir + "/proxy.sock"
	// ContainerTokenPath is the token file inside the container.
	ContainerTokenPath = ContainerSocketDir + "/token"
)

// Labels put on every container of a sandbox.
const (
	LabelContainerID = "clawbox.container_id"
	LabelTask        = "clawbox.task"
	LabelPolicy      = "clawbox.policy"
	LabelInstance    = "clawbox.instance"
	// LabelPool names the warm pool a container was started for; it carries no
	// claimant's label (Docker labels are fixed at create).
	LabelPool = "clawbox.pool"
)

// MaxTaskLabel bounds the task a backend records beside a container (a label
// or an annotation), in bytes.
const MaxTaskLabel = 128

// TaskLabel is task cut to at most MaxTaskLabel bytes on a rune boundary.
func TaskLabel(task string) string {
	if len(task) <= MaxTaskLabel {
		return task
	}
	return strings.ToValidUTF8(task[:MaxTaskLabel], "") // drops a rune cut in two
}

// Spec is everything a Backend needs to create and start one hardened container.
// The Manager fills it from the config and the request; a backend applies every field.
type Spec struct {
	ID   string // sandbox id, used as the container name
	Task string // for the (truncated) task label
	// Labels are the caller's labels, put on the container beside clawbox's own
	// (validated: none starts with "clawbox.").
	Labels   map[string]string
	Image    string
	Policy   Policy
	Command  []string
	Env      []string // KEY=VALUE, already validated, clawbox variables included
	Instance string   // this server's instance id (label)
	// SocketDir is the host directory mounted read-only at ContainerSocketDir.
	SocketDir string
	// Supervisor is the host path of the supervisor binary, mounted read-only at
	// ContainerSupervisorPath; the container's entrypoint is then Entrypoint
	// (the supervisor's command line) followed by the main command: Command, or
	// else the image's own entrypoint and command. "" means no supervisor: the
	// engine's init runs Command (or the image's) instead.
	Supervisor string
	Entrypoint []string
	// WaitMain gives the container no main command at all, whatever Command
	// and the image say: its supervisor (Entrypoint from WaitMainSupervisorArgs)
	// waits for the server's. The mode of a pooled sandbox (docs/warm-pool.md).
	WaitMain bool
	// Pool is the warm pool the container is started for ("" for none): the
	// LabelPool label.
	Pool string
	// WorkspaceDir is the host directory bind-mounted read-write at
	// ContainerWorkspacePath; "" for none.
	WorkspaceDir string
	User         string // "uid:gid"
	// MemoryBytes is the memory limit; swap is set equal (no extra swap).
	MemoryBytes int64
	CPUShares   int64
	NanoCPUs    int64 // hard quota in 1e-9 CPUs; 0 means none
	PidsLimit   int64
	TmpfsMB     int
	Nofile      int64
	Runtime     string // "" for the engine's default
	// Lifetime is the sandbox's timeout at spawn (0 for a pooled sandbox, whose
	// lifetime starts at its claim). Clawbox enforces it itself; a backend may
	// set a backstop beyond it (the Kubernetes backend's activeDeadlineSeconds).
	Lifetime time.Duration
}

// Exit is how a container ended.
type Exit struct {
	Code      int
	OOMKilled bool
}

// Container is a backend's view of one container.
type Container struct {
	ID      string            // the engine's id
	Labels  map[string]string // includes LabelContainerID and LabelInstance
	Running bool
	Exit    Exit // meaningful when !Running
}

// Backend runs containers. internal/sandbox/docker implements it for the Docker
// Engine; a Kubernetes backend could implement it too. Every method is safe for
// concurrent use. Not-found errors satisfy errors.Is(err, errdefs.ErrNotFound).
type Backend interface {
	// Ping checks that the engine answers.
	Ping(ctx context.Context) error
	// Start creates and starts a hardened container for spec and returns its id. On
	// error nothing is left behind.
	Start(ctx context.Context, spec Spec) (string, error)
	// Wait blocks until the container is no longer running and says how it ended.
	Wait(ctx context.Context, id string) (Exit, error)
	// Stop sends SIGTERM, then SIGKILL after grace.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Logs copies the container's output, demultiplexed, to stdout and stderr; with
	// follow it streams until the container stops or ctx ends.
	Logs(ctx context.Context, id string, follow bool, stdout, stderr io.Writer) error
	// Remove force-removes the container and whatever the backend made for it. A
	// container that is already gone is not an error.
	Remove(ctx context.Context, id string) error
	// List returns every container, running or not, labelled with instance.
	List(ctx context.Context, instance string) ([]Container, error)
	// Inspect returns one container's state.
	Inspect(ctx context.Context, id string) (Container, error)
}

// ImageDefaulter is implemented by backends that can say what an image runs
// when a spawn names no command (Docker's image entrypoint and cmd). The warm
// pool needs it: a pooled container has no main command, so a claim resolves
// the one Docker would have run.
type ImageDefaulter interface {
	ImageDefaults(ctx context.Context, image string) (entrypoint, cmd []string, err error)
}

// RecordStore persists sandbox records (internal/store implements it). Not-found
// errors satisfy errors.Is(err, errdefs.ErrNotFound).
type RecordStore interface {
	// CreateSandbox inserts rec (status creating) only if fewer than maxActive
	// records are creating or running, atomically; otherwise it returns an error
	// satisfying errors.Is(err, errdefs.ErrResourceExhausted).
	CreateSandbox(ctx context.Context, rec *Record, maxActive int) error
	// UpdateSandbox writes rec if the stored status is still from; otherwise it
	// returns an error satisfying errors.Is(err, errdefs.ErrConflict).
	UpdateSandbox(ctx context.Context, rec *Record, from Status) error
	GetSandbox(ctx context.Context, id string) (*Record, error)
	// ListSandboxes returns records newest first (ties by id), all of them when
	// status is "".
	ListSandboxes(ctx context.Context, status Status) ([]*Record, error)
	DeleteSandbox(ctx context.Context, id string) error
	// CountSandboxes returns how many records are in each status.
	CountSandboxes(ctx context.Context) (map[Status]int, error)
	// DeleteExpiredSandboxes removes final records whose ExpiresAt is not after now
	// and returns their ids.
	DeleteExpiredSandboxes(ctx context.Context, now time.Time) ([]string, error)
}

// Redactor replaces known secret values in b (internal/secrets implements it); n is
// how many it replaced. Container logs pass through it before they are stored or
// returned.
type Redactor interface {
	Redact(b []byte) (redacted []byte, n int)
}

// DoorSpec is what the egress gateway needs to open a sandbox's door.
type DoorSpec struct {
	SandboxID  string
	SocketPath string // host path of the Unix socket to listen on (mode 0666)
	// Allowlist is the server's container network allowlist; Narrow, when not nil,
	// is the spawn's own list, which may only narrow it.
	Allowlist []string
	Narrow    []string
	// Credentials are the credential names granted to this sandbox.
	Credentials []string
	// Authenticate reports whether token is this sandbox's current token (constant
	// time; false once the sandbox has left running).
	Authenticate func(token string) bool
	// CA is the sandbox's own certificate authority: CONNECT tunnels are
	// terminated with leaves it mints. Nil refuses every CONNECT that would be
	// intercepted.
	CA *tlsca.Authority
}

// ContainerWorkspacePath is where a sandbox sees its workspace.
const ContainerWorkspacePath = "/workspace"

// Workspaces keeps the quota-bounded workspaces of sandboxes
// (internal/sandbox/workspace implements it). Not-found errors satisfy
// errors.Is(err, errdefs.ErrNotFound) or are *api.Error not_found.
type Workspaces interface {
	// Create makes, formats and mounts sandbox id's workspace of quota bytes,
	// owned by uid:gid, and returns the host directory to bind.
	Create(ctx context.Context, id string, quota int64, uid, gid int) (dir string, err error)
	// Open mounts a kept workspace again (or adopts a mounted one).
	Open(ctx context.Context, id string) (dir string, err error)
	// Release unmounts it and keeps it.
	Release(id string) error
	// Remove deletes it. Idempotent.
	Remove(id string) error
	// Usage reports the used and total bytes of a mounted workspace.
	Usage(id string) (used, total int64, err error)
}

// DoorOpener opens a sandbox's egress door (the gateway implements it).
type DoorOpener interface {
	OpenDoor(DoorSpec) (io.Closer, error)
}

// AuditSink receives lifecycle audit records.
type AuditSink interface {
	Record(audit.Record)
}

// CredentialEnv returns the environment placeholders for a sandbox's granted
// credentials (never the real values).
type CredentialEnv interface {
	CredentialEnv(sandboxID string, names []string) (map[string]string, error)
}

// Clock is the time source of deadlines, retention and the reaper.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a Clock's timer.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
