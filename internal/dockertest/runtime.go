package dockertest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// EnvRunsc, set to "require" (scripts/test.sh does), makes the gVisor variants of the
// container tests fail instead of skip when the engine has no runsc runtime.
const EnvRunsc = "RUNSC_TESTS"

// Runtime is an OCI runtime a container test runs under.
type Runtime struct {
	Name string // for t.Run: "runc" or "runsc"
	// Config is the value of containers.runtime: "" (the engine's default) or "runsc".
	Config string
}

// GVisor reports whether the runtime is gVisor's runsc.
func (r Runtime) GVisor() bool { return r.Config == "runsc" }

// HasRuntime reports whether the engine has a runtime registered under name.
func HasRuntime(name string) (bool, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return false, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return false, err
	}
	_, ok := res.Info.Runtimes[name]
	return ok, nil
}

// ForEachRuntime runs test as a subtest under runc (the engine's default) and under
// gVisor's runsc. The runsc subtest skips, saying how to enable it, when the engine
// has no runsc runtime; with RUNSC_TESTS=require it fails instead.
func ForEachRuntime(t *testing.T, test func(t *testing.T, rt Runtime)) {
	t.Run("runc", func(t *testing.T) { test(t, Runtime{Name: "runc"}) })
	t.Run("runsc", func(t *testing.T) {
		ok, err := HasRuntime("runsc")
		if err == nil && !ok {
			err = fmt.Errorf("the engine has no runsc runtime")
		}
		if err != nil {
			msg := fmt.Sprintf("gVisor: %v: install runsc and register it in /etc/docker/daemon.json "+
				"(scripts/test.sh does both, then reloads dockerd with SIGHUP)", err)
			if os.Getenv(EnvRunsc) == "require" {
				t.Fatal(msg + "; " + EnvRunsc + "=require")
			}
			t.Skip(msg)
		}
		test(t, Runtime{Name: "runsc", Config: "runsc"})
	})
}
