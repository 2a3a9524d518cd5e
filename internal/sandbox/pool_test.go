package sandbox

import (
	"strings"
	"testing"
)

// TestPoolConfigChecks: a warm pool the spawn policy would refuse is an error
// naming its key; a valid one gets the spawn defaults.
func TestPoolConfigChecks(t *testing.T) {
	base := Config{InstanceID: "i", ProxiesDir: "/tmp/p", MaxContainers: 4}
	ok := base
	ok.Pools = []PoolConfig{{Image: "alpine", Size: 2}}
	c, err := ok.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Pools[0]; p.Image != "docker.io/library/alpine:latest" || p.Name != "alpine" || p.MemoryMB != 512 || p.CPUShares != 1024 || p.Key != "containers.warm_pool[0]" {
		t.Errorf("defaulted pool: %+v", p)
	}
	for _, tc := range []struct {
		name  string
		pools []PoolConfig
		edit  func(*Config)
		want  []string
	}{
		{"image not allowed", []PoolConfig{{Image: "evil.example/miner", Size: 1}}, nil, []string{"containers.warm_pool[0].image", "not allowed"}},
		{"bad image", []PoolConfig{{Image: "UPPER//x", Size: 1}}, nil, []string{"containers.warm_pool[0].image"}},
		{"memory above max", []PoolConfig{{Image: "alpine", MemoryMB: 9000, Size: 1}}, nil, []string{"containers.warm_pool[0].memory_mb", "max_memory_mb"}},
		{"cpu shares above max", []PoolConfig{{Image: "alpine", CPUShares: 9000, Size: 1}}, nil, []string{"containers.warm_pool[0].cpu_shares"}},
		{"cpus above max", []PoolConfig{{Image: "alpine", CPUs: 1000, Size: 1}}, nil, []string{"containers.warm_pool[0].cpus"}},
		{"another runtime", []PoolConfig{{Image: "alpine", Runtime: "runsc", Size: 1}}, nil, []string{"containers.warm_pool[0].runtime"}},
		{"size", []PoolConfig{{Image: "alpine", Size: 0}}, nil, []string{"containers.warm_pool[0].size"}},
		{"same name", []PoolConfig{{Image: "alpine", Size: 1}, {Image: "alpine", MemoryMB: 64, Size: 1}}, nil, []string{"containers.warm_pool[1].name", "containers.warm_pool[0]"}},
		{"same profile", []PoolConfig{{Image: "alpine", Size: 1}, {Name: "b", Image: "alpine:latest", Size: 1}}, nil, []string{"containers.warm_pool[1]", "same image"}},
		{"above max_containers", []PoolConfig{{Image: "alpine", Size: 3}, {Image: "debian", Size: 2}}, nil, []string{"max_containers"}},
		{"policy container not allowed", []PoolConfig{{Image: "alpine", Size: 1}}, func(c *Config) { c.AllowedPolicies = []string{"wasm_only"} }, []string{"containers.warm_pool[0]", "allowed_policies"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.Pools = tc.pools
			if tc.edit != nil {
				tc.edit(&c)
			}
			err := c.Check()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestValidSandboxID: only "clawbox-<canonical uuid>" may name a socket dir
// removed for an orphan (the id comes from a container label).
func TestValidSandboxID(t *testing.T) {
	for id, want := range map[string]bool{
		"clawbox-0597ec1a-ff29-45cd-aee7-c4adc6def7b9":    true,
		"clawbox-0597EC1A-ff29-45cd-aee7-c4adc6def7b9":    false,
		"clawbox-../../etc":                               false,
		"clawbox-0597ec1a-ff29-45cd-aee7-c4adc6def7b9/..": false,
		"0597ec1a-ff29-45cd-aee7-c4adc6def7b9":            false,
		"":                                                false,
	} {
		if got := validSandboxID(id); got != want {
			t.Errorf("validSandboxID(%q) = %v, want %v", id, got, want)
		}
	}
}
