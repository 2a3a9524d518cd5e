package supervisorbin

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// Package is the import path of the supervisor's main package.
const Package = "github.com/clawbox/clawbox/internal/supervisor/cmd/clawbox-supervisor"

// Build compiles the supervisor for linux/arch into out, reproducibly: the same
// source and Go version give the same bytes. dir is the module root; stderr
// gets the compiler's output (nil: discarded).
func Build(ctx context.Context, dir, arch, out string, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, Package)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=-mod=readonly")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build clawbox-supervisor for %s: %w", arch, err)
	}
	return nil
}
