package docker

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/sandbox/sandboxtest"
	"github.com/clawbox/clawbox/internal/sandbox/workspace"
	"github.com/clawbox/clawbox/internal/store"
)

// recordingAudit is an AuditSink that keeps what it gets.
type recordingAudit struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (a *recordingAudit) Record(r audit.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, r)
}

// events returns the lifecycle events recorded for sandbox id, in order.
func (a *recordingAudit) events(id string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, r := range a.recs {
		if r.ContainerID == id {
			out = append(out, r.Event)
		}
	}
	return out
}

// world is what survives a server restart: the store file, the instance id and the
// proxies dir.
type world struct {
	dbPath     string
	instance   string
	proxiesDir string
}

func newWorld(t *testing.T) world {
	// Not t.TempDir: its long names would overflow the Unix socket path limit.
	dir, err := os.MkdirTemp("", "cbx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	w := world{dbPath: filepath.Join(dir, "state.db"), instance: "clawbox-test-" + randHex(6), proxiesDir: filepath.Join(dir, "proxies")}
	t.Cleanup(func() { removeInstanceContainers(t, w.instance) })
	return w
}

// removeInstanceContainers force-removes every container of a test instance, even
// when the test failed.
func removeInstanceContainers(t *testing.T, instance string) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", sandbox.LabelInstance+"="+instance)})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, c := range res.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

type env struct {
	world
	m       *sandbox.Manager
	svc     *sandbox.Service // over m, redacting with the env's redactor
	db      *store.DB
	backend *Backend
	doors   *sandboxtest.Doors
	audit   *recordingAudit
	reg     *prometheus.Registry
	clock   *sandboxtest.Clock // nil: real clock
}

type envOptions struct {
	maxContainers  int
	killOnShutdown bool
	fakeClock      bool
	retention      time.Duration
	runtime        dockertest.Runtime // the OCI runtime (runc by default)
	redactor       sandbox.Redactor
	doorFail       error    // every door fails to open with it (from Start on)
	maxExecOutput  int64    // containers.max_exec_output_bytes (0: default)
	maxFileBytes   int64    // containers.max_file_bytes (0: default)
	workspaceMB    int64    // > 0: workspaces under the world's dir with this quota
	policies       []string // [container_policy].allowed_policies (nil: the default)
	// wrap, when set, puts a test wrapper around the real backend.
	wrap func(*Backend) sandbox.Backend
}

// runscPidsLimit is the pids limit of sandboxes under runsc, whose sandbox kernel's
// host threads count against it (see docs/SECURITY.md, "Under gVisor").
const runscPidsLimit = 1256

// newEnv starts a Manager over the real daemon for world w.
func newEnv(t *testing.T, w world, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, w.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{world: w, db: db, backend: b, doors: &sandboxtest.Doors{Fail: o.doorFail}, audit: &recordingAudit{}, reg: prometheus.NewRegistry()}
	opts := sandbox.Options{
		Config: sandbox.Config{
			InstanceID:     w.instance,
			ProxiesDir:     w.proxiesDir,
			AllowedImages:  []string{"clawbox-test/"},
			DefaultImage:   testImage,
			MaxContainers:  o.maxContainers,
			KillOnShutdown: o.killOnShutdown,
			StopGrace:      2 * time.Second,
			Retention:      o.retention,
			Runtime:        o.runtime.Config,

			MaxExecOutputBytes: o.maxExecOutput,
			MaxFileBytes:       o.maxFileBytes,
			MaxWorkspaceMB:     o.workspaceMB,
			AllowedPolicies:    o.policies,
		},
		Backend:    b,
		Redactor:   o.redactor,
		Store:      db,
		Doors:      e.doors,
		Audit:      e.audit,
		Logger:     testLogger(),
		Registerer: e.reg,
	}
	if o.runtime.GVisor() {
		opts.Config.PidsLimit = runscPidsLimit
	}
	if o.wrap != nil {
		opts.Backend = o.wrap(b)
	}
	if o.workspaceMB > 0 {
		opts.Workspaces = &workspace.Manager{Root: filepath.Join(filepath.Dir(w.dbPath), "workspaces")}
	}
	if o.fakeClock {
		e.clock = sandboxtest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		opts.Clock = e.clock
	}
	e.m, err = sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var redact func([]byte) []byte
	if o.redactor != nil {
		redact = func(b []byte) []byte { r, _ := o.redactor.Redact(b); return r }
	}
	e.svc = sandbox.NewService(func() (*sandbox.Manager, error) { return e.m, nil }, redact)
	if err := e.m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.close(t) })
	return e
}

// close shuts the manager down (leaving running sandboxes, as a restart would) and
// releases the backend and store. Idempotent.
func (e *env) close(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.m.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	e.backend.Close()
	e.db.Close()
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
