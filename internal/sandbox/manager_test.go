package sandbox

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/clawbox/clawbox/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := Config{
		InstanceID:         "inst",
		ProxiesDir:         "/tmp/p",
		MaxCPUs:            2,
		AllowedCredentials: []string{"github"},
		AllowedPolicies:    []string{"container"},
	}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func ptr[T any](v T) *T { return &v }

func TestValidateSpawn(t *testing.T) {
	m := &Manager{cfg: testConfig(t)}
	res := func(r api.ContainerResources) *api.ContainerCapabilities {
		return &api.ContainerCapabilities{Resources: &r}
	}
	tests := []struct {
		name  string
		req   api.ContainerSpawnRequest
		code  string
		field string // named in the message when code is set
		check func(t *testing.T, p *plan)
	}{
		{name: "defaults", req: api.ContainerSpawnRequest{Task: "t"}, check: func(t *testing.T, p *plan) {
			if p.policy != PolicyContainer || p.image != "docker.io/library/alpine:latest" || p.memoryMB != 512 ||
				p.cpuShares != 1024 || p.nanoCPUs != 0 || p.timeout != 2*time.Minute || p.logLimit != 1<<20 || p.allowlist != nil {
				t.Errorf("plan %+v", p)
			}
		}},
		{name: "partial resources keep the other defaults", req: api.ContainerSpawnRequest{Task: "t", Capabilities: res(api.ContainerResources{TimeoutMS: ptr[int64](10000), MemoryMB: ptr[int64](128)})},
			check: func(t *testing.T, p *plan) {
				if p.timeout != 10*time.Second || p.memoryMB != 128 || p.cpuShares != 1024 {
					t.Errorf("plan %+v", p)
				}
			}},
		{name: "at the maxima", req: api.ContainerSpawnRequest{Task: "t", Capabilities: res(api.ContainerResources{MemoryMB: ptr[int64](4096), CPUShares: ptr[int64](4096), CPUs: ptr(2.0), TimeoutMS: ptr[int64](3600000)})},
			check: func(t *testing.T, p *plan) {
				if p.memoryMB != 4096 || p.nanoCPUs != 2e9 || p.timeout != time.Hour {
					t.Errorf("plan %+v", p)
				}
			}},
		{name: "narrowed network and granted credential", req: api.ContainerSpawnRequest{Task: "t", Capabilities: &api.ContainerCapabilities{
			Network: &api.ContainerNetwork{Allowlist: []string{}}, Credentials: []string{"github", "github"}}},
			check: func(t *testing.T, p *plan) {
				if p.allowlist == nil || len(p.allowlist) != 0 || len(p.credentials) != 1 {
					t.Errorf("plan %+v", p)
				}
			}},
		{name: "task is optional", req: api.ContainerSpawnRequest{}, check: func(t *testing.T, p *plan) {
			if p.labels != nil {
				t.Errorf("labels %v", p.labels)
			}
		}},
		{name: "labels kept", req: api.ContainerSpawnRequest{Labels: map[string]string{"team": "infra"}}, check: func(t *testing.T, p *plan) {
			if len(p.labels) != 1 || p.labels["team"] != "infra" {
				t.Errorf("labels %v", p.labels)
			}
		}},
		{name: "task too long", req: api.ContainerSpawnRequest{Task: strings.Repeat("t", 64<<10+1)}, code: api.CodeInvalidRequest, field: "task"},
		{name: "memory above max", req: api.ContainerSpawnRequest{Task: "t", Capabilities: res(api.ContainerResources{MemoryMB: ptr[int64](4097)})}, code: api.CodeInvalidRequest, field: "max_memory_mb"},
		{name: "memory zero is not unlimited", req: api.ContainerSpawnRequest{Task: "t", Capabilities: res(api.ContainerResources{MemoryMB: ptr[int64](0)})}, code: api.CodeInvalidRequest, field: "memory_mb"},
		{name: "cpu shares above max", req: api.ContainerSpawnRequest{Task: "t", Capabilities: res(api.ContainerResources{CPUShares: ptr[int64](5000)})}, code: api.CodeInvalidRequest, field: "max_cpu_shares"},
		{name: "cpus above max", req: api.ContainerSpawnRequest{Task: "t", Capabilities: res(api.ContainerResources{CPUs: ptr(2.5)})}, code: api.CodeInvalidRequest, field: "max_cpus"},
		{name: "negative cpus", req: api.ContainerSpawnRequest{Task: "t", Capabilities: res(api.ContainerResources{CPUs: ptr(-1.0)})}, code: api.CodeInvalidRequest, field: "cpus"},
		{name: "timeout above max", req: api.ContainerSpawnRequest{Task: "t", Capabilities: res(api.ContainerResources{TimeoutMS: ptr[int64](3600001)})}, code: api.CodeInvalidRequest, field: "max_timeout_ms"},
		{name: "timeout zero", req: api.ContainerSpawnRequest{Task: "t", Capabilities: res(api.ContainerResources{TimeoutMS: ptr[int64](0)})}, code: api.CodeInvalidRequest, field: "timeout_ms"},
		{name: "log cap above max", req: api.ContainerSpawnRequest{Task: "t", Capabilities: res(api.ContainerResources{MaxOutputBytes: ptr[int64](2 << 20)})}, code: api.CodeInvalidRequest, field: "max_log_bytes"},
		{name: "policy not allowed", req: api.ContainerSpawnRequest{Task: "t", Policy: "container_direct"}, code: api.CodePolicyDenied, field: "container_direct"},
		{name: "wasm policy", req: api.ContainerSpawnRequest{Task: "t", Policy: "wasm_only"}, code: api.CodeInvalidRequest, field: "wasm_only"},
		{name: "unknown policy", req: api.ContainerSpawnRequest{Task: "t", Policy: "vm"}, code: api.CodeInvalidRequest, field: "vm"},
		{name: "image not allowed", req: api.ContainerSpawnRequest{Task: "t", Image: "evil/img"}, code: api.CodeImageNotAllowed, field: "evil/img"},
		{name: "reserved env", req: api.ContainerSpawnRequest{Task: "t", Env: map[string]string{"https_proxy": "x"}}, code: api.CodeInvalidRequest, field: "https_proxy"},
		{name: "credential not allowed", req: api.ContainerSpawnRequest{Task: "t", Capabilities: &api.ContainerCapabilities{Credentials: []string{"aws"}}}, code: api.CodePolicyDenied, field: "aws"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := m.validate(&tc.req)
			if tc.code != "" {
				if errCode(err) != tc.code || !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("validate = %v, want %s naming %q", err, tc.code, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
		})
	}
}

// TestValidateSpawnGVisorMemoryMinimum: under gVisor the runtime's own processes
// share the sandbox's memory limit, so a limit it cannot start in is refused up
// front instead of failing at the engine.
func TestValidateSpawnGVisorMemoryMinimum(t *testing.T) {
	cfg := testConfig(t)
	cfg.Runtime = "runsc"
	m := &Manager{cfg: cfg}
	req := api.ContainerSpawnRequest{Task: "t", Capabilities: &api.ContainerCapabilities{Resources: &api.ContainerResources{MemoryMB: ptr[int64](32)}}}
	if _, err := m.validate(&req); errCode(err) != api.CodeInvalidRequest || !strings.Contains(err.Error(), "gVisor") {
		t.Errorf("32 MB under runsc: %v, want invalid_request naming gVisor", err)
	}
	req.Capabilities.Resources.MemoryMB = ptr[int64](64)
	if _, err := m.validate(&req); err != nil {
		t.Errorf("64 MB under runsc: %v", err)
	}
	cfg.Runtime = ""
	m = &Manager{cfg: cfg}
	req.Capabilities.Resources.MemoryMB = ptr[int64](16)
	if _, err := m.validate(&req); err != nil {
		t.Errorf("16 MB under runc: %v", err)
	}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"minimal", Config{InstanceID: "i", ProxiesDir: "/p"}, ""},
		{"no instance", Config{ProxiesDir: "/p"}, "instance id"},
		{"no proxies dir", Config{InstanceID: "i"}, "proxies dir"},
		{"proxies dir too long for sockets", Config{InstanceID: "i", ProxiesDir: "/" + strings.Repeat("d", 60)}, "too long"},
		{"root user", Config{InstanceID: "i", ProxiesDir: "/p", User: "0:0"}, "root"},
		{"root user allowed", Config{InstanceID: "i", ProxiesDir: "/p", User: "0", AllowRoot: true}, ""},
		{"named user", Config{InstanceID: "i", ProxiesDir: "/p", User: "nobody"}, "numeric"},
		{"default above max", Config{InstanceID: "i", ProxiesDir: "/p", DefaultMemoryMB: 8192}, "default_memory_mb"},
		{"bad default image", Config{InstanceID: "i", ProxiesDir: "/p", DefaultImage: "Bad Image"}, "default_image"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.cfg.withDefaults()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.PidsLimit != 256 || cfg.TmpfsSizeMB != 256 || cfg.Nofile != 1024 || cfg.StopGrace != 5*time.Second ||
				cfg.Retention != time.Hour || cfg.ReaperInterval != 30*time.Second || cfg.MaxContainers != 10 ||
				len(cfg.AllowedImages) != 6 || cfg.KillOnShutdown {
				t.Errorf("defaults %+v", cfg)
			}
		})
	}
	// An explicit empty image list stays empty (deny all).
	cfg, err := Config{InstanceID: "i", ProxiesDir: "/p", AllowedImages: []string{}}.withDefaults()
	if err != nil || cfg.AllowedImages == nil || len(cfg.AllowedImages) != 0 {
		t.Errorf("empty allowlist: %v %v", cfg.AllowedImages, err)
	}
}

func TestMakeSocketDir(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir() + "/clawbox-x"
	if err := makeSocketDir(dir, "tok"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o755, dir + "/token": 0o444} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", path, err, st.Mode().Perm(), want)
		}
	}
	if b, _ := os.ReadFile(dir + "/token"); string(b) != "tok" {
		t.Errorf("token file %q", b)
	}
	if err := makeSocketDir(dir, "tok"); err == nil {
		t.Error("an existing dir was reused")
	}
}
