package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/registrytest"
)

// TestImageCommands pulls an image pushed to a loopback registry with `clawbox image
// pull` (plain and --json output), lists it with `clawbox image ls`, and checks the
// exit codes of refused and failed pulls.
func TestImageCommands(t *testing.T) {
	if err := dockertest.Ping(); err != nil {
		t.Skipf("Docker daemon not reachable (%v): start dockerd or set DOCKER_HOST to run this test", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, err := registrytest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("local registry: %v", err)
	}
	t.Cleanup(func() { reg.Close() })
	ref := reg.Host + "/clawbox-test/cli:" + registrytest.RandomName()
	t.Cleanup(func() {
		if err := registrytest.RemoveImage(ref); err != nil {
			t.Errorf("remove %s: %v", ref, err)
		}
	})
	if err := reg.PushRandomImage(ctx, ref, 1<<20); err != nil {
		t.Fatal(err)
	}
	env, port := serveDir(t, func(cfg string) string {
		return strings.Replace(cfg, `allowed_images = ["alpine", "debian", "ubuntu", "python", "node", "clawbox/"]`,
			`allowed_images = ["clawbox/", "`+reg.Host+`/clawbox-test/"]`, 1)
	})

	r := clawbox(t, ctx, env, "image", "pull", "--port", port, ref)
	if r.code != 0 {
		t.Fatalf("image pull: %+v", r)
	}
	for _, want := range []string{"Pulling " + ref, ": Pull complete", "Pulled " + ref, "Image ID: sha256:", "Digest:   " + reg.Host + "/clawbox-test/cli@sha256:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("image pull output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "\r") {
		t.Errorf("progress bar drawn on a non-terminal:\n%q", r.stdout)
	}

	// Again with --json: every line is a frame, the last one done.
	r = clawbox(t, ctx, env, "image", "pull", "--port", port, "--json", ref)
	if r.code != 0 {
		t.Fatalf("image pull --json: %+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var last api.PullProgress
	for _, l := range lines {
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatalf("line %q is not a frame: %v", l, err)
		}
	}
	if len(lines) < 2 || !last.Done || !strings.HasPrefix(last.ImageID, "sha256:") {
		t.Errorf("image pull --json: %s", r.stdout)
	}

	r = clawbox(t, ctx, env, "image", "ls", "--port", port)
	if r.code != 0 || !strings.Contains(r.stdout, ref) || !strings.Contains(r.stdout, last.ImageID[len("sha256:"):][:12]) {
		t.Errorf("image ls: %+v", r)
	}
	r = clawbox(t, ctx, env, "image", "ls", "--port", port, "--json")
	var list api.ImageList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 {
		t.Fatalf("image ls --json: %+v %v", r, err)
	}
	found := false
	for _, im := range list.Images {
		found = found || im.ID == last.ImageID
	}
	if !found {
		t.Errorf("image ls --json lacks %s: %s", last.ImageID, r.stdout)
	}

	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"outside the policy", []string{reg.Host + "/other/cli:x"}, ExitError, "image_not_allowed"},
		{"missing tag", []string{reg.Host + "/clawbox-test/cli:no-such-tag"}, ExitError, "image_not_found"},
		{"missing tag as JSON", []string{"--json", reg.Host + "/clawbox-test/cli:no-such-tag"}, ExitError, "image_not_found"},
		{"no image", []string{}, ExitUsage, "takes one IMAGE"},
		{"two images", []string{"a", "b"}, ExitUsage, "takes one IMAGE"},
		{"unreachable", []string{"--port", "1", "alpine"}, ExitUnreachable, "cannot reach"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"image", "pull", "--port", port}, tc.args...)
			r := clawbox(t, ctx, env, args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
				t.Errorf("exit %d stderr %q; want %d containing %q", r.code, r.stderr, tc.code, tc.msg)
			}
		})
	}
}

// TestPullDisplay feeds the progress display the frames of a two-layer pull.
func TestPullDisplay(t *testing.T) {
	frames := []api.PullProgress{
		{Status: api.PullStatusStarted, Image: "docker.io/library/alpine:3.20"},
		{Status: "Pulling from library/alpine", ID: "3.20"},
		{Status: "Pulling fs layer", ID: "aaa"},
		{Status: "Pulling fs layer", ID: "bbb"},
		{Status: "Downloading", ID: "aaa", Current: 500, Total: 1000},
		{Status: "Downloading", ID: "aaa", Current: 1000, Total: 1000},
		{Status: "Downloading", ID: "bbb", Current: 1000, Total: 3000},
		{Status: "Download complete", ID: "aaa"},
		{Status: "Pull complete", ID: "aaa"},
		{Status: "Pull complete", ID: "bbb"},
		{Status: "Digest: sha256:0123"},
		{Status: api.PullStatusDone, Done: true, Image: "docker.io/library/alpine:3.20", ImageID: "sha256:feed", Digest: "alpine@sha256:0123"},
	}
	cases := []struct {
		name   string
		tty    bool
		want   []string
		absent []string
	}{
		{"plain", false, []string{
			"Pulling docker.io/library/alpine:3.20\n", "Pulling from library/alpine\n", "aaa: Pulling fs layer\n",
			"aaa: Downloading\n", "bbb: Pull complete\n", "Digest: sha256:0123\n",
			"Pulled docker.io/library/alpine:3.20\nImage ID: sha256:feed\nDigest:   alpine@sha256:0123\n",
		}, []string{"\r", "aaa: Downloading\naaa: Downloading"}},
		{"terminal", true, []string{
			"\r\x1b[Kdocker.io/library/alpine:3.20 [", "500 B/1.0 kB 0/2 layers", "1.0 kB/1.0 kB 0/2 layers",
			"2.0 kB/4.0 kB 0/2 layers", "4.0 kB/4.0 kB 2/2 layers\nPulled docker.io/library/alpine:3.20\n",
		}, []string{"aaa: Downloading"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			d := newPullDisplay(&out, "alpine:3.20")
			d.tty = tc.tty
			for _, f := range frames {
				d.frame(f)
			}
			d.end()
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%q", w, out.String())
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out.String(), a) {
					t.Errorf("output has %q:\n%q", a, out.String())
				}
			}
			if tc.tty {
				// The last bar is full.
				bars := strings.Split(out.String(), "\r\x1b[K")
				lastBar := bars[len(bars)-1]
				if !strings.Contains(lastBar, "[====") || strings.Contains(lastBar, ">") || strings.Contains(lastBar, "[ ") {
					t.Errorf("last bar is not full: %q", lastBar)
				}
			}
		})
	}
}
