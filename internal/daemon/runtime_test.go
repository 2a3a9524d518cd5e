package daemon

import (
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/dockertest"
)

// useRuntime sets containers.runtime for a test that runs under each runtime. Under
// gVisor the pids limit counts the host threads of the sandbox kernel (the Sentry,
// the gofer and, on the ptrace platform, stub processes for the workload's), not the
// workload's processes: a limit of 40 does not even let runsc start (the spawn fails),
// and with 640 a Go program that starts 100 children is killed outright. So it is
// raised by runscPidsOverhead.
func useRuntime(cfg *config.Config, rt dockertest.Runtime) {
	cfg.Containers.Runtime = rt.Config
	if rt.GVisor() {
		cfg.Containers.PidsLimit += runscPidsOverhead
	}
}

// runscPidsOverhead is what runsc itself counts against a container's pids limit.
const runscPidsOverhead = 1000
