// Package version reports the version of the running clawbox binary.
package version

import "runtime/debug"

// Version is set at link time with -ldflags "-X github.com/clawbox/clawbox/internal/version.Version=v1.2.3";
// otherwise it comes from the module's build information.
var Version = ""

// String returns the version, "dev" when unknown.
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
