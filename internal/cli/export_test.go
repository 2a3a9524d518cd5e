package cli

import (
	"context"
	"io"
	"strings"
	"sync"
)

// runWithEnv runs the command line with only the given environment variables.
func runWithEnv(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	return runWithStdin(ctx, args, env, "", stdout, stderr)
}

// runWithStdin is runWithEnv with stdin content.
func runWithStdin(ctx context.Context, args []string, env map[string]string, stdin string, stdout, stderr io.Writer) int {
	a := &app{stdin: strings.NewReader(stdin), stdout: stdout, stderr: stderr,
		env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	return run(ctx, a, args)
}

// syncWriter serialises writes from the server goroutine and reads by the test.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
