package daemon

import (
	"context"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/clawbox/clawbox/internal/config"
)

func TestLimitMemory(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name     string
		mb       int
		preset   int64 // the limit before Run: math.MaxInt64 is none (GOMEMLIMIT unset)
		want     int64 // while serving
		restored int64 // after shutdown
	}{
		{"set from the config", 96, math.MaxInt64, 96 << 20, math.MaxInt64},
		{"GOMEMLIMIT wins", 96, 500 << 20, 500 << 20, 500 << 20},
		{"off", 0, math.MaxInt64, math.MaxInt64, math.MaxInt64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(tc.preset)
			cfg := config.Default(t.TempDir())
			cfg.Server.MemoryLimitMB = tc.mb
			p := &parts{cfg: &cfg, log: quiet}
			if err := p.limitMemory(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.want {
				t.Errorf("limit while serving = %d, want %d", got, tc.want)
			}
			p.shutdown(context.Background())
			p.shutdown(context.Background()) // a second shutdown does nothing
			if got := debug.SetMemoryLimit(-1); got != tc.restored {
				t.Errorf("limit after shutdown = %d, want %d", got, tc.restored)
			}
		})
	}
}
