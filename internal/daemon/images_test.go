package daemon

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/registrytest"
)

// startRegistry runs a loopback registry for the test. It fails (never skips) when
// the registry cannot run: CI must install Debian's docker-registry.
func startRegistry(t *testing.T) *registrytest.Registry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg, err := registrytest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("local registry: %v", err)
	}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Errorf("stop registry: %v", err)
		}
	})
	return reg
}

// pushTestImage pushes a fresh random image to reg and removes it locally; the
// test's cleanup removes whatever a pull brings back.
func pushTestImage(t *testing.T, reg *registrytest.Registry, repo string) string {
	t.Helper()
	ref := reg.Host + "/" + repo + ":" + registrytest.RandomName()
	t.Cleanup(func() {
		if err := registrytest.RemoveImage(ref); err != nil {
			t.Errorf("remove %s: %v", ref, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := reg.PushRandomImage(ctx, ref, 3<<20); err != nil {
		t.Fatal(err)
	}
	return ref
}

func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestImagePullFromLocalRegistry pulls a pushed image back through the API from a
// registry on loopback, and checks the policy: refused pulls never reach the
// registry, a missing tag ends the stream with image_not_found, and GET /images
// shows only allowed names.
func TestImagePullFromLocalRegistry(t *testing.T) {
	requireDocker(t)
	reg := startRegistry(t)
	ref := pushTestImage(t, reg, "clawbox-test/pull")
	docker := dockerClient(t)
	ctx := context.Background()
	if _, err := docker.ImageInspect(ctx, ref); !errdefs.IsNotFound(err) {
		t.Fatalf("the pushed image is still present locally (inspect: %v)", err)
	}

	cfg := testConfig(t)
	cfg.Containers.AllowedImages = []string{"clawbox-test/", reg.Host + "/clawbox-test/"}
	cfg.Containers.DefaultImage = testImage
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])

	t.Run("spawn does not pull", func(t *testing.T) {
		before := len(reg.Requests())
		_, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "t", Image: ref, Command: []string{"true"}})
		if e, ok := api.AsError(err); !ok || e.Code != api.CodeImageNotFound || !strings.Contains(e.Message, "pull") {
			t.Fatalf("spawn of a missing image: %v; want image_not_found naming the pull command", err)
		}
		if after := reg.Requests(); len(after) != before {
			t.Fatalf("spawn reached the registry: %v", after[before:])
		}
	})

	t.Run("pull streams progress", func(t *testing.T) {
		before := len(reg.Requests())
		var frames []api.PullProgress
		if err := c.PullImage(ctx, ref, func(p api.PullProgress) { frames = append(frames, p) }); err != nil {
			t.Fatalf("pull: %v (registry log: %s)", err, reg.Log())
		}
		if len(frames) < 3 || frames[0].Status != api.PullStatusStarted || frames[0].Image != ref {
			t.Fatalf("frames do not start with the started frame: %+v", frames)
		}
		sized := slices.ContainsFunc(frames, func(p api.PullProgress) bool { return p.ID != "" && p.Total > 0 && p.Current > 0 })
		if !sized {
			t.Errorf("no layer frame with byte counts: %+v", frames)
		}
		last := frames[len(frames)-1]
		if !last.Done || last.Status != api.PullStatusDone || last.Image != ref ||
			!strings.HasPrefix(last.ImageID, "sha256:") || !strings.HasPrefix(last.Digest, reg.Host+"/clawbox-test/pull@sha256:") {
			t.Fatalf("final frame: %+v", last)
		}
		ins, err := docker.ImageInspect(ctx, ref)
		if err != nil {
			t.Fatalf("the pulled image is not present: %v", err)
		}
		if ins.ID != last.ImageID {
			t.Errorf("engine has image %s, the final frame says %s", ins.ID, last.ImageID)
		}
		if !slices.ContainsFunc(reg.Requests()[before:], func(q string) bool { return strings.HasPrefix(q, "GET /v2/clawbox-test/pull/manifests/") }) {
			t.Errorf("the registry served no manifest: %v", reg.Requests()[before:])
		}
	})

	t.Run("list shows allowed names only", func(t *testing.T) {
		outside := "clawbox-outside/pull:" + registrytest.RandomName()
		if _, err := docker.ImageTag(ctx, client.ImageTagOptions{Source: ref, Target: outside}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { docker.ImageRemove(context.Background(), outside, client.ImageRemoveOptions{}) })
		list, err := c.Images(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var found *api.Image
		for i, im := range list {
			for _, tag := range slices.Concat(im.RepoTags, im.RepoDigests) {
				if strings.HasPrefix(tag, "clawbox-outside/") {
					t.Errorf("GET /images shows %s, which the policy does not allow", tag)
				}
			}
			if slices.Contains(im.RepoTags, ref) {
				found = &list[i]
			}
		}
		if found == nil {
			t.Fatalf("GET /images lacks %s: %+v", ref, list)
		}
		if !slices.Equal(found.RepoTags, []string{ref}) || found.Size < 3<<20 || found.Created.IsZero() || len(found.RepoDigests) != 1 {
			t.Errorf("listed image: %+v", *found)
		}
	})

	t.Run("refused pulls never reach the registry", func(t *testing.T) {
		cases := []struct {
			name, image, code string
		}{
			{"other repository on the same registry", reg.Host + "/other/pull:x", api.CodeImageNotAllowed},
			{"path prefix without a boundary", reg.Host + "/clawbox-test-evil/pull:x", api.CodeImageNotAllowed},
			{"default registry", "library/alpine", api.CodeImageNotAllowed},
			{"malformed reference", reg.Host + "/Clawbox-Test/UPPER:x", api.CodeInvalidRequest},
			{"empty", "", api.CodeInvalidRequest},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := len(reg.Requests())
				var frames int
				err := c.PullImage(ctx, tc.image, func(api.PullProgress) { frames++ })
				e, ok := api.AsError(err)
				if !ok || e.Code != tc.code {
					t.Fatalf("pull %q: %v; want %s", tc.image, err, tc.code)
				}
				if tc.code == api.CodeImageNotAllowed && !errors.Is(err, errdefs.ErrPermissionDenied) {
					t.Errorf("image_not_allowed is not a permission error: %v", err)
				}
				if frames != 0 {
					t.Errorf("a refused pull streamed %d frames", frames)
				}
				if after := reg.Requests(); len(after) != before {
					t.Errorf("a refused pull reached the registry: %v", after[before:])
				}
			})
		}
	})

	t.Run("missing tag ends with an error frame", func(t *testing.T) {
		missing := reg.Host + "/clawbox-test/pull:no-such-tag"
		t.Cleanup(func() { registrytest.RemoveImage(missing) })
		var last api.PullProgress
		err := c.PullImage(ctx, missing, func(p api.PullProgress) { last = p })
		e, ok := api.AsError(err)
		if !ok || e.Code != api.CodeImageNotFound || !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("pull of a missing tag: %v; want image_not_found", err)
		}
		if last.Status != api.PullStatusError || last.Code != api.CodeImageNotFound || !strings.Contains(last.Error, missing) {
			t.Errorf("final frame: %+v", last)
		}
		if !slices.Contains(reg.Requests(), "GET /v2/clawbox-test/pull/manifests/no-such-tag") {
			t.Errorf("the registry was not asked for the missing tag: %v", reg.Requests())
		}
	})
}

// TestImageRoutesWithoutDocker: without an engine the image routes answer 503
// unavailable saying why.
func TestImageRoutesWithoutDocker(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	cfg := testConfig(t)
	addrs, _ := runDaemon(t, cfg)
	c := apiClient(t, cfg, addrs[0])
	ctx := context.Background()
	err := c.PullImage(ctx, "alpine", nil)
	if e, ok := api.AsError(err); !ok || e.Code != api.CodeUnavailable || !strings.Contains(e.Message, "Docker") {
		t.Errorf("pull without Docker: %v", err)
	}
	_, err = c.Images(ctx)
	if e, ok := api.AsError(err); !ok || e.Code != api.CodeUnavailable {
		t.Errorf("list without Docker: %v", err)
	}
}
