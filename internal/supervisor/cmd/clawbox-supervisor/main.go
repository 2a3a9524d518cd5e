// Command clawbox-supervisor is the static program clawbox mounts into every
// container sandbox as PID 1. It runs the main command given after "--",
// reaps, forwards signals, and serves exec and file requests to the server
// over the socket given by -socket (see internal/supervisor).
//
// Build it with CGO_ENABLED=0.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/clawbox/clawbox/internal/supervisor"
)

func main() { os.Exit(run(os.Args[1:], os.Environ(), os.Stderr)) }

func run(args, environ []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("clawbox-supervisor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", "/run/clawbox/supervisor.sock", "server socket to dial")
	tokenFile := fs.String("token-file", "", "file holding the per-sandbox token (else $CLAWBOX_SUPERVISOR_TOKEN)")
	maxFile := fs.Int64("max-file-bytes", 0, "cap on one file write (0: 1 GiB)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var env []string
	token := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "CLAWBOX_SUPERVISOR_TOKEN="); ok {
			token = v
			continue // never passed to the workload
		}
		env = append(env, kv)
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "clawbox-supervisor: %v\n", err)
			return 2
		}
		token = strings.TrimSpace(string(b))
	}
	s := &supervisor.Supervisor{Socket: *socket, Token: token, Main: fs.Args(), Env: env, MaxFileBytes: *maxFile,
		Logf: func(f string, a ...any) { fmt.Fprintf(stderr, f+"\n", a...) }}
	return s.Run(context.Background())
}
