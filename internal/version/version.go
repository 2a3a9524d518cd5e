// Package version reports the version of the running clawbox binary: the release
// version, the VCS commit it was built from and the Go toolchain.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at link time with -ldflags "-X github.com/clawbox/clawbox/internal/version.Version=v1.2.3";
// otherwise it comes from the module's build information.
var Version = ""

// String returns the version, "dev" when unknown.
func String() string { return Read().Version }

// Info describes a build.
type Info struct {
	// Version is the release version, "dev" when unknown.
	Version string
	// Commit is the VCS revision the binary was built from, "" when unknown
	// (built outside a checkout, or with -buildvcs=false).
	Commit string
	// Modified reports that the checkout had uncommitted changes.
	Modified bool
	// GoVersion is the toolchain that built the binary.
	GoVersion string
}

// Read returns the running binary's build information.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, Version)
}

// fromBuildInfo is Read on given build information (nil when there is none) and
// link-time version.
func fromBuildInfo(bi *debug.BuildInfo, linked string) Info {
	in := Info{Version: linked, GoVersion: runtime.Version()}
	if bi == nil {
		if in.Version == "" {
			in.Version = "dev"
		}
		return in
	}
	if bi.GoVersion != "" {
		in.GoVersion = bi.GoVersion
	}
	if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		in.Version = bi.Main.Version
	}
	if in.Version == "" {
		in.Version = "dev"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// Long is the one-line form `clawbox version` prints:
// "clawbox v1.2.3 (commit 0123abc…, modified) go1.26.8".
func (in Info) Long() string {
	commit := in.Commit
	if commit == "" {
		commit = "unknown"
	}
	if in.Modified {
		commit += ", modified"
	}
	return fmt.Sprintf("clawbox %s (commit %s) %s", in.Version, commit, in.GoVersion)
}
