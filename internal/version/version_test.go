package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/clawbox/clawbox", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "CGO_ENABLED", Value: "0"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	cases := []struct {
		name   string
		bi     *debug.BuildInfo
		linked string
		want   string
	}{
		{"checkout", bi, "", "clawbox dev (commit 0123456789abcdef0123456789abcdef01234567, modified) go1.26.8"},
		{"linked version", bi, "v1.2.3", "clawbox v1.2.3 (commit 0123456789abcdef0123456789abcdef01234567, modified) go1.26.8"},
		{"module version", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.4.0"}}, "", "clawbox v0.4.0 (commit unknown) go1.26.8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromBuildInfo(tc.bi, tc.linked).Long(); got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
	if in := fromBuildInfo(nil, ""); in.Version != "dev" || in.GoVersion == "" {
		t.Errorf("no build info: %+v", in)
	}
}
