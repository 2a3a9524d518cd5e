package cli

import (
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
)

// TestPrintPools: `clawbox status` prints one line per warm pool from the
// docker component's detail, with a failing pool's last error.
func TestPrintPools(t *testing.T) {
	detail := map[string]any{"active_containers": 1, "pools": []any{
		map[string]any{"name": "alpine", "image": "docker.io/library/alpine:latest", "size": 2, "ready": 1, "filling": 1, "hits": 5, "misses": 1},
		map[string]any{"name": "py", "image": "py", "size": 1, "consecutive_failures": 3, "last_error": "image not present"},
	}}
	var b strings.Builder
	printPools(&b, &api.HealthResponse{Components: map[string]api.ComponentHealth{"docker": {Detail: detail}}})
	want := "  pool alpine:\t1/2 ready, 1 starting, 5 hits, 1 misses (docker.io/library/alpine:latest)\n" +
		"  pool py:\t0/1 ready, 0 starting, 0 hits, 0 misses; 3 failed fills, last: image not present\n"
	if b.String() != want {
		t.Errorf("printPools:\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	printPools(&b, &api.HealthResponse{})
	printPools(&b, &api.HealthResponse{Components: map[string]api.ComponentHealth{"docker": {Detail: "not an object"}}})
	if b.Len() != 0 {
		t.Errorf("no pools: %q", b.String())
	}
}
