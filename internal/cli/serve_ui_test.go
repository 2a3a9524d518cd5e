package cli

import "testing"

func TestDashboardURL(t *testing.T) {
	for _, tc := range []struct {
		addrs []string
		want  string
	}{
		{[]string{"http://127.0.0.1:9800"}, "http://127.0.0.1:9800/ui/"},
		{[]string{"http://0.0.0.0:9800", "unix:///x.sock"}, "http://127.0.0.1:9800/ui/"},
		{[]string{"http://[::]:9800"}, "http://127.0.0.1:9800/ui/"},
		{[]string{"http://[::1]:9800"}, "http://[::1]:9800/ui/"},
		{[]string{"unix:///x.sock"}, ""},
		{nil, ""},
	} {
		if got := dashboardURL(tc.addrs); got != tc.want {
			t.Errorf("dashboardURL(%q) = %q, want %q", tc.addrs, got, tc.want)
		}
	}
}
