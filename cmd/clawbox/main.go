// Command clawbox runs untrusted agent code in WASM or hardened containers, with every
// byte of egress through its gateway. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/clawbox/clawbox/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
