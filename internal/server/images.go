package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/clawbox/clawbox/api"
)

// Images is what the image routes need: the image policy, pulls through the engine
// and the local images. Spawn never pulls; these routes are the only way in.
type Images interface {
	// Resolve normalises an image reference and checks it against the image policy:
	// 400 invalid_request for a malformed reference, 403 image_not_allowed.
	Resolve(image string) (string, error)
	// Pull pulls a resolved reference, calling progress with each of the engine's
	// frames in order, and returns the final frame (Done, ImageID, Digest).
	Pull(ctx context.Context, ref string, progress func(api.PullProgress)) (api.PullProgress, error)
	// List returns the local images that the policy allows.
	List(ctx context.Context) ([]api.Image, error)
}

// RegisterImages adds POST /images/pull and GET /images. When there is no engine
// (no Docker), svc answers 503 unavailable with the reason.
func (s *Server) RegisterImages(svc Images) {
	s.Handle(Route{Method: http.MethodPost, Pattern: "/images/pull", Handler: func(w http.ResponseWriter, r *http.Request) error {
		var req api.ImagePullRequest
		if err := DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.Image == "" {
			return fieldError("image", "image is required")
		}
		ref, err := svc.Resolve(req.Image)
		if err != nil {
			if e, ok := api.AsError(err); ok && e.Code == api.CodeInvalidRequest && e.Details == nil {
				return fieldError("image", "%s", e.Message)
			}
			return err
		}
		return s.streamPull(w, r, svc, ref)
	}, Doc: Doc{
		Summary: "Pull an allowed image, streaming progress",
		Describe: "The image must be allowed by containers.allowed_images (403 image_not_allowed otherwise; " +
			"the registry is never contacted). Once the pull starts the answer is 200 with newline-delimited " +
			"PullProgress JSON: a started frame, the engine's progress frames (per layer, with byte counts), " +
			"then exactly one final frame: done (with image_id and digest) or error (with a stable code, " +
			"for example image_not_found).",
		Tags:    []string{"images"},
		Request: api.ImagePullRequest{},
		Responses: []Response{
			{Status: 200, Body: api.PullProgress{}, ContentType: "application/x-ndjson", Describe: "one PullProgress per line"},
		},
	}})
	s.Handle(Route{Method: http.MethodGet, Pattern: "/images", Handler: func(w http.ResponseWriter, r *http.Request) error {
		list, err := svc.List(r.Context())
		if err != nil {
			return err
		}
		if list == nil {
			list = []api.Image{}
		}
		writeJSON(w, http.StatusOK, api.ImageList{Images: list})
		return nil
	}, Doc: Doc{
		Summary:   "List the local images that containers.allowed_images allows",
		Describe:  "Only allowed tags and digests are shown; images with none are left out.",
		Tags:      []string{"images"},
		Responses: []Response{{Status: 200, Body: api.ImageList{}}},
	}})
}

// pullWriter writes PullProgress frames as NDJSON, flushing each. After a failed
// write (the client went away) it writes nothing more.
type pullWriter struct {
	mu  sync.Mutex // guards w and err
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

func (p *pullWriter) frame(f api.PullProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	b, err := json.Marshal(f)
	if err != nil {
		p.err = err
		return
	}
	if _, p.err = p.w.Write(append(b, '\n')); p.err == nil {
		p.err = p.rc.Flush()
	}
}

// streamPull runs a pull, answering 200 with its progress; failures after this
// point are the stream's final error frame.
func (s *Server) streamPull(w http.ResponseWriter, r *http.Request, im Images, ref string) error {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	pw := &pullWriter{w: w, rc: http.NewResponseController(w)}
	pw.frame(api.PullProgress{Status: api.PullStatusStarted, Image: ref})

	final, err := im.Pull(ctx, ref, pw.frame)
	if err == nil {
		final.Status, final.Done = api.PullStatusDone, true
		if final.Image == "" {
			final.Image = ref
		}
		pw.frame(final)
		return nil
	}
	if r.Context().Err() != nil {
		return nil // the client went away: nobody reads the answer
	}
	fr := api.PullProgress{Status: api.PullStatusError, Image: ref}
	switch e, ok := api.AsError(err); {
	case ok:
		fr.Error, fr.Code = e.Message, e.Code
	case ctx.Err() != nil:
		fr.Error, fr.Code = "the server is shutting down: pull again once it is back", api.CodeUnavailable
	default:
		s.log.Error("image pull failed", "request_id", RequestID(r.Context()), "image", ref, "err", err)
		fr.Error = "internal error (request id " + RequestID(r.Context()) + "); details are in the server log"
		fr.Code = api.CodeInternal
	}
	pw.frame(fr)
	return nil
}
