package containers

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/poll"
	"github.com/clawbox/clawbox/internal/sandbox"
	"github.com/clawbox/clawbox/internal/secrets"
	"github.com/clawbox/clawbox/internal/store"
)

// shortTempDir is a temporary directory with a short path: sandbox socket paths
// under it must fit the 107 bytes of a Unix socket address.
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "cb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// testOptions are the options of a Side over a real store in a temporary
// directory, whose sandboxes would be killed on Close.
func testOptions(t *testing.T) Options {
	t.Helper()
	dir := shortTempDir(t)
	cfg := config.Default(dir)
	cfg.Containers.ProxiesDir = filepath.Join(dir, "p")
	if err := os.Mkdir(cfg.Containers.ProxiesDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg.Containers.KillOnShutdown = true
	db, err := store.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return Options{
		Config:     &cfg,
		InstanceID: uuid.NewString(),
		Store:      db,
		Redactor:   secrets.PatternsOnly(),
		Logger:     slog.New(slog.DiscardHandler),
		Retry:      20 * time.Millisecond,
	}
}

// noDocker points the Docker client at a socket nobody listens on.
func noDocker(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(shortTempDir(t), "docker.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	return sock
}

func startSide(t *testing.T, opts Options) *Side {
	t.Helper()
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func wantUnavailable(t *testing.T, what string, err error, reason string) {
	t.Helper()
	e, ok := api.AsError(err)
	if !ok || e.Code != api.CodeUnavailable || !strings.Contains(e.Message, reason) {
		t.Errorf("%s: %v, want 503 unavailable naming %q", what, err, reason)
	}
}

// TestUnavailableWithoutDocker: without a reachable engine Start succeeds, every
// caller gets a 503 with the reason, the health says so, and Close stops the retry
// loop (twice is harmless; TestMain checks that no goroutine is left).
func TestUnavailableWithoutDocker(t *testing.T) {
	noDocker(t)
	s := startSide(t, testOptions(t))
	ctx := context.Background()

	_, err := s.Manager()
	wantUnavailable(t, "Manager", err, "Docker is not reachable")
	_, err = s.Engine()
	wantUnavailable(t, "Engine", err, "Docker is not reachable")
	_, err = s.Policy(ctx, "clawbox-x")
	wantUnavailable(t, "Policy", err, "Docker is not reachable")
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Policy error %v does not satisfy errdefs.ErrUnavailable", err)
	}
	h := s.Health(ctx)
	if h.Status != api.StatusUnavailable || !strings.Contains(h.Detail.(string), "Docker is not reachable") {
		t.Errorf("health without Docker: %+v", h)
	}
	s.Close(ctx)
	s.Close(ctx)
}

// TestRecoversWhenDockerReturns: a Side started while Docker does not answer
// brings the sandboxes up by itself once it answers.
func TestRecoversWhenDockerReturns(t *testing.T) {
	requireDocker(t)
	sock := noDocker(t)
	s := startSide(t, testOptions(t))
	ctx := context.Background()
	if _, err := s.Manager(); err == nil {
		t.Fatal("a manager before Docker answers")
	}

	dockertest.StartRelay(t, sock)
	poll.Until(t, poll.Server, "the sandbox manager after Docker came back", func() (bool, error) {
		_, err := s.Manager()
		return err == nil, err
	})
	if _, err := s.Engine(); err != nil {
		t.Errorf("Engine after recovery: %v", err)
	}
	if h := s.Health(ctx); h.Status != api.StatusOK || !reflect.DeepEqual(h.Detail, api.ContainersHealth{ActiveContainers: 0}) {
		t.Errorf("health after recovery: %+v", h)
	}
	_, err := s.Policy(ctx, "clawbox-nope")
	if e, ok := api.AsError(err); !ok || e.Code != api.CodeNotFound {
		t.Errorf("policy of an unknown sandbox: %v, want not_found", err)
	}
	s.Close(ctx)
	s.Close(ctx)
}

// TestConfigurationErrorStopsStartWithoutDocker: an invalid sandbox config
// (here no instance id; a warm pool's refused image is another) is Start's
// error at once, even while Docker does not answer.
func TestConfigurationErrorStopsStartWithoutDocker(t *testing.T) {
	noDocker(t)
	opts := testOptions(t)
	opts.InstanceID = ""
	if s, err := Start(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "instance id") {
		if s != nil {
			s.Close(context.Background())
		}
		t.Fatalf("Start with no instance id and no Docker: %v", err)
	}
}

// TestRetryStopsOnAConfigurationError: when Docker answers at last but the
// manager cannot be built (its metrics clash with a collector already
// registered), the loop stops and the reason points at the log.
func TestRetryStopsOnAConfigurationError(t *testing.T) {
	requireDocker(t)
	sock := noDocker(t)
	opts := testOptions(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "clawbox_containers_active", Help: "taken"}))
	opts.Registerer = reg
	s := startSide(t, opts)

	dockertest.StartRelay(t, sock)
	poll.Until(t, poll.Server, "the retry loop to give up", func() (bool, error) {
		_, err := s.Manager()
		return strings.Contains(err.Error(), "failed to start"), err
	})
	s.Close(context.Background()) // returns: the loop has ended
}

// TestStartRefusesAConfigurationError: with Docker up, a manager that cannot be
// built is an error of Start, and the backend it opened is closed (TestMain).
func TestStartRefusesAConfigurationError(t *testing.T) {
	requireDocker(t)
	opts := testOptions(t)
	opts.InstanceID = ""
	if s, err := Start(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "instance id") {
		if s != nil {
			s.Close(context.Background())
		}
		t.Fatalf("Start with no instance id: %v", err)
	}
}

// TestStartRequiresItsParts: a Side is never built without a redactor (its logs
// would be stored unredacted), a store, a config or a logger.
func TestStartRequiresItsParts(t *testing.T) {
	noDocker(t)
	for name, drop := range map[string]func(*Options){
		"config":   func(o *Options) { o.Config = nil },
		"store":    func(o *Options) { o.Store = nil },
		"redactor": func(o *Options) { o.Redactor = nil },
		"logger":   func(o *Options) { o.Logger = nil },
	} {
		t.Run(name, func(t *testing.T) {
			opts := testOptions(t)
			drop(&opts)
			if s, err := Start(context.Background(), opts); err == nil {
				s.Close(context.Background())
				t.Fatalf("Start without a %s: no error", name)
			}
		})
	}
}

// TestCredentialEnv: a sandbox gets the placeholder of a granted credential, never
// its value; a credential named like a reserved variable is refused, not set.
func TestCredentialEnv(t *testing.T) {
	key, err := secrets.ParseMasterKey(strings.Repeat("5a", secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	st, err := secrets.Open(secrets.Config{Path: filepath.Join(t.TempDir(), "credentials.enc"), Key: key, NoWatch: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const value = "sk-live0123456789abcdefghijklmnop"
	for _, name := range []string{"UPSTREAM", "HTTP_PROXY"} {
		if _, err := st.Put(name, api.PutCredentialRequest{Value: value, Host: "example.com", Placeholder: true}); err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
	}
	env, err := credentialEnv{st}.CredentialEnv("clawbox-x", []string{"UPSTREAM", "UNKNOWN"})
	if err != nil {
		t.Fatal(err)
	}
	if len(env) != 1 || env["UPSTREAM"] == "" || env["UPSTREAM"] == value {
		t.Errorf("env = %q, want the placeholder of UPSTREAM only", env)
	}
	_, err = credentialEnv{st}.CredentialEnv("clawbox-x", []string{"HTTP_PROXY"})
	if e, ok := api.AsError(err); !ok || e.Code != api.CodeInvalidRequest || !strings.Contains(e.Message, "reserved") {
		t.Errorf("a credential named HTTP_PROXY: %v, want invalid_request reserved", err)
	}
}

// TestSandboxConfigMapsEveryField: every field of the manager's config is set from
// the configuration; a field added to sandbox.Config and forgotten here fails.
func TestSandboxConfigMapsEveryField(t *testing.T) {
	var cfg config.Config
	fill(t, reflect.ValueOf(&cfg.Containers).Elem())
	fill(t, reflect.ValueOf(&cfg.ContainerPolicy).Elem())
	got := reflect.ValueOf(SandboxConfig(&cfg, "instance"))
	for i := range got.NumField() {
		if got.Field(i).IsZero() {
			t.Errorf("sandbox.Config.%s is not mapped", got.Type().Field(i).Name)
		}
	}
}

// fill sets every field of the struct v to a non-zero value.
func fill(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x")
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64, reflect.Int32:
			f.SetInt(7)
		case reflect.Float64:
			f.SetFloat(1.5)
		case reflect.Slice:
			if el := f.Type().Elem(); el.Kind() == reflect.Struct {
				one := reflect.New(el).Elem()
				fill(t, one)
				f.Set(reflect.Append(reflect.MakeSlice(f.Type(), 0, 1), one))
				continue
			}
			if f.Type().Elem().Kind() != reflect.String {
				t.Fatalf("fill: field %s: unsupported slice", v.Type().Field(i).Name)
			}
			f.Set(reflect.ValueOf([]string{"x"}).Convert(f.Type()))
		case reflect.Map, reflect.Struct, reflect.Pointer:
			// Not part of the sandbox mapping: leave it.
		default:
			t.Fatalf("fill: field %s: unsupported kind %s", v.Type().Field(i).Name, f.Kind())
		}
	}
}

// TestWarmPoolsFromTemplates: a pool naming a template takes its image and
// memory and is named after it; an image pool keeps its own profile.
func TestWarmPoolsFromTemplates(t *testing.T) {
	cfg := config.Default("/tmp/cb")
	cfg.Images.Templates = map[string]config.Template{"researcher": {Image: "python:3.12", MemoryMB: 256}}
	cfg.Containers.WarmPool = []config.WarmPool{{Template: "researcher", Size: 1}, {Image: "alpine", CPUShares: 512, CPUs: 0.5, Size: 2}}
	got := SandboxConfig(&cfg, "i").Pools
	want := []sandbox.PoolConfig{
		{Key: "containers.warm_pool[0]", Name: "researcher", Image: "python:3.12", MemoryMB: 256, Size: 1},
		{Key: "containers.warm_pool[1]", Image: "alpine", CPUShares: 512, CPUs: 0.5, Size: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pools %+v, want %+v", got, want)
	}
}
