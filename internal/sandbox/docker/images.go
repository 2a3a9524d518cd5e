package docker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/sandbox"
)

// Images pulls and lists images through the Docker Engine API, within
// containers.allowed_images: the image routes' service. Pulls are anonymous:
// clawbox holds no registry credentials.
type Images struct {
	backend   func() (*Backend, error)
	allowed   []string
	log       *slog.Logger
	requestID func(context.Context) string
	// callTimeout bounds the list and inspect calls (not the pull itself, which
	// lasts as long as its request).
	callTimeout time.Duration
}

// ImagesConfig configures NewImages.
type ImagesConfig struct {
	// Backend returns the backend to use now, or the error every call answers with
	// while there is none (503 unavailable with the reason).
	Backend func() (*Backend, error)
	// Allowed is containers.allowed_images.
	Allowed []string
	// Logger; nil: slog.Default().
	Logger *slog.Logger
	// RequestID names the request of ctx in the logs; nil: none.
	RequestID func(context.Context) string
}

// NewImages returns the image service.
func NewImages(cfg ImagesConfig) *Images {
	s := &Images{backend: cfg.Backend, allowed: cfg.Allowed, log: cfg.Logger, requestID: cfg.RequestID, callTimeout: 30 * time.Second}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.requestID == nil {
		s.requestID = func(context.Context) string { return "" }
	}
	return s
}

// Resolve checks that there is an engine (so that a pull is refused with 503
// before its stream starts), normalises image and checks it against
// containers.allowed_images.
func (s *Images) Resolve(image string) (string, error) {
	if _, err := s.backend(); err != nil {
		return "", err
	}
	return sandbox.ImageAllowed(image, s.allowed)
}

// Pull pulls ref (checked against the policy again), passing on the engine's
// progress, and returns the final frame with the image's ID and digest.
func (s *Images) Pull(ctx context.Context, ref string, progress func(api.PullProgress)) (api.PullProgress, error) {
	b, err := s.backend()
	if err != nil {
		return api.PullProgress{}, err
	}
	ref, err = sandbox.ImageAllowed(ref, s.allowed)
	if err != nil {
		return api.PullProgress{}, err
	}
	resp, err := b.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return api.PullProgress{}, s.pullError(ctx, ref, err)
	}
	for m, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return api.PullProgress{}, s.pullError(ctx, ref, err)
		}
		if m.Error != nil {
			return api.PullProgress{}, s.pullError(ctx, ref, &streamError{code: m.Error.Code, msg: m.Error.Message})
		}
		p := api.PullProgress{Status: boundText(m.Status), ID: boundText(m.ID)}
		if m.Progress != nil {
			p.Current, p.Total = m.Progress.Current, m.Progress.Total
		}
		progress(p)
	}
	if ctx.Err() != nil {
		return api.PullProgress{}, ctx.Err()
	}
	ictx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	ins, err := b.cli.ImageInspect(ictx, ref)
	if err != nil {
		return api.PullProgress{}, s.pullError(ctx, ref, err)
	}
	return api.PullProgress{Done: true, Image: ref, ImageID: ins.ID, Digest: repoDigest(ref, ins.RepoDigests)}, nil
}

// List returns the local images with at least one allowed tag or digest, showing
// only those, sorted by their first tag (then ID).
func (s *Images) List(ctx context.Context) ([]api.Image, error) {
	b, err := s.backend()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	res, err := b.cli.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		if client.IsErrConnectionFailed(err) {
			s.log.Warn("list images", "request_id", s.requestID(ctx), "err", err)
			return nil, api.Errorf(api.CodeUnavailable, "Docker does not answer")
		}
		return nil, err
	}
	out := []api.Image{}
	for _, im := range res.Items {
		tags, digests := s.allowedRefs(im.RepoTags), s.allowedRefs(im.RepoDigests)
		if len(tags) == 0 && len(digests) == 0 {
			continue
		}
		out = append(out, api.Image{
			ID: im.ID, RepoTags: tags, RepoDigests: digests, Size: im.Size,
			Created: time.Unix(im.Created, 0).UTC(),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := firstOr(out[i].RepoTags, out[i].ID), firstOr(out[j].RepoTags, out[j].ID)
		if a != b {
			return a < b
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// allowedRefs keeps the references the policy allows ("<none>:<none>" never is).
func (s *Images) allowedRefs(refs []string) []string {
	out := []string{}
	for _, r := range refs {
		if _, err := sandbox.ImageAllowed(r, s.allowed); err == nil {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil
	}
	sort.Strings(out)
	return out
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}

// repoDigest picks the repository digest of ref's repository.
func repoDigest(ref string, digests []string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	for _, d := range digests {
		if n, err := reference.ParseNormalizedNamed(d); err == nil && n.Name() == named.Name() {
			return d
		}
	}
	return ""
}

// pullError turns an engine error into what the client may see: a stable code and
// a message of our choosing. The engine's own text goes to the log only.
func (s *Images) pullError(ctx context.Context, ref string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	reqID := s.requestID(ctx)
	s.log.Warn("image pull failed", "request_id", reqID, "image", ref, "err", err)
	switch {
	case errdefs.IsNotFound(err):
		return api.Errorf(api.CodeImageNotFound, "image %s was not found in its registry: check the repository name and the tag", ref)
	case errdefs.IsUnauthorized(err), errdefs.IsPermissionDenied(err):
		return api.Errorf(api.CodeUpstreamError, "the registry refused to serve %s anonymously (clawbox pulls without registry credentials)", ref)
	case errdefs.IsDeadlineExceeded(err), errors.Is(err, context.DeadlineExceeded):
		return api.Errorf(api.CodeUpstreamTimeout, "pulling %s timed out", ref)
	case client.IsErrConnectionFailed(err):
		return api.Errorf(api.CodeUnavailable, "Docker does not answer")
	default:
		return api.Errorf(api.CodeUpstreamError, "pulling %s failed: the registry could not be reached or answered with an error (request id %s; the details are in the server log)", ref, reqID)
	}
}

// streamError is an error frame of the engine's pull stream, classified by the
// HTTP status it carries.
type streamError struct {
	code int
	msg  string
}

func (e *streamError) Error() string { return e.msg }

func (e *streamError) Is(target error) bool {
	switch e.code {
	case http.StatusNotFound:
		return target == errdefs.ErrNotFound
	case http.StatusUnauthorized:
		return target == errdefs.ErrUnauthenticated
	case http.StatusForbidden:
		return target == errdefs.ErrPermissionDenied
	}
	return false
}

// boundText cuts the engine's status text to a sane length on a rune boundary.
func boundText(s string) string {
	const maxLen = 256
	if len(s) <= maxLen {
		return s
	}
	s = s[:maxLen]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
