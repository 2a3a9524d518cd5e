// Command clawbox-supervisor is the static program clawbox mounts into every
// container sandbox as PID 1. It runs the main command given after "--",
// reaps, forwards signals, and serves exec and file requests to the server
// over the socket given by -socket (see internal/supervisor). With
// -wait-main it takes no command and waits for the server's (a pooled
// sandbox), re-reads -token-file before every dial, and reads the door token
// only when that command arrives.
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
	proxySocket := fs.String("proxy-socket", "", "the sandbox's egress door socket: serve the proxy bridge to it (none: no bridge)")
	proxyTokenFile := fs.String("proxy-token-file", "", "file holding the door token the bridge presents (with -proxy-socket)")
	proxyListen := fs.String("proxy-listen", "127.0.0.1:3128", "address the proxy bridge listens on (with -proxy-socket)")
	waitMain := fs.Bool("wait-main", false, "take no command: wait for the server's (POST /v1/main); needs -token-file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *waitMain && (fs.NArg() > 0 || *tokenFile == "") {
		fmt.Fprintln(stderr, "clawbox-supervisor: -wait-main takes no command and needs -token-file")
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
	if *tokenFile != "" && !*waitMain {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "clawbox-supervisor: %v\n", err)
			return 2
		}
		token = strings.TrimSpace(string(b))
	}
	logf := func(f string, a ...any) { fmt.Fprintf(stderr, f+"\n", a...) }
	s := &supervisor.Supervisor{Socket: *socket, Token: token, Main: fs.Args(), Env: env, MaxFileBytes: *maxFile, Logf: logf, WaitMain: *waitMain}
	if *waitMain {
		s.TokenFile = *tokenFile
	}
	if *proxySocket != "" {
		s.BridgeListen = *proxyListen
		// Built when the main command starts: a pooled sandbox's door token
		// is written at claim. Without its token the bridge would only
		// collect 401s: the workload runs without it (and says so) rather
		// than not at all.
		s.MakeBridge = func() *supervisor.Bridge {
			b, err := os.ReadFile(*proxyTokenFile)
			if err != nil || strings.TrimSpace(string(b)) == "" {
				logf("clawbox-supervisor: proxy bridge disabled: no door token (%v)", err)
				return nil
			}
			return &supervisor.Bridge{DoorSocket: *proxySocket, Token: strings.TrimSpace(string(b)), Logf: logf}
		}
	}
	return s.Run(context.Background())
}
