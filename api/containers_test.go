package api

import (
	"encoding/json"
	"testing"
	"time"
)

func TestContainerSpawnRequestPartialResources(t *testing.T) {
	var req ContainerSpawnRequest
	body := `{"task":"t","capabilities":{"resources":{"timeout_ms":10000,"memory_mb":128}}}`
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	r := req.Capabilities.Resources
	if r == nil || *r.TimeoutMS != 10000 || *r.MemoryMB != 128 || r.CPUShares != nil || r.CPUs != nil || r.MaxOutputBytes != nil {
		t.Fatalf("resources %+v", r)
	}
}

func TestContainerWireNames(t *testing.T) {
	code := 3
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	out := "o"
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"info", ContainerInfo{ContainerID: "clawbox-x", Status: ContainerStatusFailed, Policy: SandboxPolicyContainer, Image: "i",
			CreatedAt: at, TaskSummary: "t", ProxySocket: "/run/clawbox/proxy.sock", ExitCode: &code, OOMKilled: true, FinishedAt: &at, ExpiresAt: &at},
			`{"container_id":"clawbox-x","status":"failed","policy":"container","image":"i","created_at":"2026-01-02T03:04:05Z","task_summary":"t","proxy_socket":"/run/clawbox/proxy.sock","exit_code":3,"oom_killed":true,"warm":false,"finished_at":"2026-01-02T03:04:05Z","expires_at":"2026-01-02T03:04:05Z"}`},
		{"logs", ContainerLogs{ContainerID: "clawbox-x", Stdout: "a", Stderr: "b", Truncated: true},
			`{"container_id":"clawbox-x","stdout":"a","stderr":"b","truncated":true}`},
		{"kill", KillResponse{ContainerID: "clawbox-x", Status: ContainerStatusKilled, ExitCode: &code, Output: &out},
			`{"container_id":"clawbox-x","status":"killed","exit_code":3,"output":"o"}`},
		{"kill without output", KillResponse{ContainerID: "clawbox-x", Status: ContainerStatusKilled},
			`{"container_id":"clawbox-x","status":"killed","output":null}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}
